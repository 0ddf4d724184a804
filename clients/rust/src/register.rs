//! Registering a service's permissions with Charter at start-up.
//!
//! A service declares the permissions it enforces (`connections.read`, ...) in Charter's
//! registry, so that administrators can grant them through roles. [`register_permissions`]
//! gets a token with the service account's client credentials (RFC 6749 §4.4, at the
//! discovered `token_endpoint`) and calls `POST /v1/permissions/register`. Registration is
//! idempotent: the same set again changes nothing. The service account needs platform
//! access `iam.permissions.write` (`PUT /v1/tenants/{tenant_id}/service-accounts/{id}/platform-access`).
//!
//! Charter being unreachable or answering 5xx is retried with backoff until the deadline;
//! a 4xx (bad credentials, a name another service holds, an invalid name) is not.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::verifier::Discovery;

/// A service account's client credentials.
#[derive(Clone)]
pub struct ClientCredentials {
    /// The service account id.
    pub client_id: String,
    /// Its secret.
    pub client_secret: String,
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .finish()
    }
}

/// One permission the service enforces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permission {
    /// `<service>.<resource>.<action>`-style name, lower case, dotted.
    pub name: String,
    /// What administrators see.
    pub label: String,
}

impl Permission {
    /// A permission named `name`, labelled `label`.
    pub fn new(name: impl Into<String>, label: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            label: label.into(),
        }
    }
}

/// Why registration failed.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// Charter refused (a 4xx): its problem `type` and `detail`.
    #[error("Charter refused ({status}, {problem_type}): {detail}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The problem's `type`.
        problem_type: String,
        /// The problem's `detail`.
        detail: String,
    },
    /// Charter could not be reached, or kept failing, until the deadline.
    #[error("Charter unavailable until the deadline: {0}")]
    Unavailable(String),
}

/// What was registered: the events Charter appended (none when nothing changed).
#[derive(Debug, Clone)]
pub struct Registered {
    /// The number of events appended.
    pub changes: usize,
}

/// Gets a client-credentials token and registers `permissions` under `service`, retrying
/// transient failures until `deadline` has passed.
pub async fn register_permissions(
    discovery: &Discovery,
    credentials: &ClientCredentials,
    service: &str,
    permissions: &[Permission],
    deadline: Duration,
) -> Result<Registered, RegisterError> {
    let http = reqwest::Client::builder()
        // The secret goes to the token endpoint discovery named (on the issuer's origin,
        // checked by the verifier), and nowhere a redirect would take it.
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| RegisterError::Unavailable(e.to_string()))?;
    let until = Instant::now() + deadline;
    let mut backoff = Duration::from_millis(100);
    loop {
        match attempt(&http, discovery, credentials, service, permissions).await {
            Ok(done) => return Ok(done),
            Err(Attempt::Final(e)) => return Err(e),
            Err(Attempt::Retry(cause)) => {
                if Instant::now() + backoff > until {
                    return Err(RegisterError::Unavailable(cause));
                }
                tracing::warn!(%cause, "registering permissions with Charter; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

enum Attempt {
    Retry(String),
    Final(RegisterError),
}

async fn attempt(
    http: &reqwest::Client,
    discovery: &Discovery,
    credentials: &ClientCredentials,
    service: &str,
    permissions: &[Permission],
) -> Result<Registered, Attempt> {
    #[derive(Deserialize)]
    struct Token {
        access_token: String,
    }
    let token: Token = answer(
        http.post(&discovery.token_endpoint)
            .basic_auth(&credentials.client_id, Some(&credentials.client_secret))
            .form(&[("grant_type", "client_credentials")]),
    )
    .await?;
    let register = format!(
        "{}/v1/permissions/register",
        discovery.issuer.trim_end_matches('/')
    );
    #[derive(Deserialize)]
    struct Response {
        events: Vec<serde_json::Value>,
    }
    let done: Response = answer(
        http.post(register)
            .bearer_auth(&token.access_token)
            .json(&serde_json::json!({"service": service, "permissions": permissions})),
    )
    .await?;
    Ok(Registered {
        changes: done.events.len(),
    })
}

async fn answer<T: serde::de::DeserializeOwned>(
    request: reqwest::RequestBuilder,
) -> Result<T, Attempt> {
    let response = request
        .send()
        .await
        .map_err(|e| Attempt::Retry(e.to_string()))?;
    let status = response.status();
    if status.is_success() {
        return response
            .json()
            .await
            .map_err(|e| Attempt::Retry(e.to_string()));
    }
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    let text = |key: &str| body[key].as_str().unwrap_or_default().to_owned();
    if status.is_server_error() || status.as_u16() == 429 {
        return Err(Attempt::Retry(format!("HTTP {status}: {}", text("detail"))));
    }
    Err(Attempt::Final(RegisterError::Refused {
        status: status.as_u16(),
        problem_type: text("type"),
        // The token endpoint answers RFC 6749 errors.
        detail: [text("detail"), text("error_description"), text("error")]
            .into_iter()
            .find(|s| !s.is_empty())
            .unwrap_or_default(),
    }))
}
