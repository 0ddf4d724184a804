//! The first administrator: a root tenant, a user holding its `tenant_admin` role, and a
//! platform-wide `iam.*` grant. Idempotent: every step first looks for what it would create,
//! so running it again (or from several instances at once) changes nothing. An existing
//! user's password is never changed by a bootstrap.

use charter_events::assignment::SubjectType;
use charter_events::Metadata;
use charter_projections::LogPosition;
use deadpool_postgres::GenericClient;
use uuid::Uuid;

use super::password;
use crate::command::assignment::{AssignmentHandler, AssignmentRequest};
use crate::command::role::role_name_scope;
use crate::command::tenant::{CreateTenant, SLUG_SCOPE};
use crate::command::user::UserHandler;
use crate::command::{self, CommandError, CommandHandler, CommandRequest, Writer};
use crate::domain::user::UserAction;
use crate::domain::validate::{self, FieldError};
use crate::store::idempotency::StoredResponse;

pub const PLATFORM_GRANT: &str = "iam.*";

#[derive(Debug, Clone)]
pub struct Bootstrap {
    pub tenant_slug: String,
    pub username: String,
    pub email: String,
    pub password: String,
}

#[derive(Debug, Clone, Copy)]
pub struct Bootstrapped {
    pub tenant_id: Uuid,
    pub user_id: Uuid,
    /// Wait for this position before logging in: the grant must be projected.
    pub token: LogPosition,
}

#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("invalid bootstrap settings: {}", .0.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldError>),
    #[error(transparent)]
    Command(#[from] CommandError),
    #[error("password hashing: {0}")]
    Hash(String),
}

async fn claimed(
    client: &impl GenericClient,
    scope: &str,
    value: &str,
) -> Result<Option<Uuid>, CommandError> {
    let row = client
        .query_opt(
            "SELECT stream_id FROM unique_claims WHERE claim_scope = $1 AND claim_value = lower($2)",
            &[&scope, &value],
        )
        .await?;
    Ok(row.and_then(|r| {
        let stream: String = r.get(0);
        stream
            .split_once('-')
            .and_then(|(_, id)| Uuid::parse_str(id).ok())
    }))
}

fn request() -> CommandRequest {
    CommandRequest {
        metadata: Metadata {
            actor: "system:bootstrap".into(),
            correlation_id: Uuid::now_v7(),
            ..Metadata::default()
        },
        if_match: None,
        idempotency: None,
    }
}

/// Runs `handler`; a value someone else claimed first counts as done.
async fn run<H: CommandHandler>(
    writer: &Writer,
    handler: &H,
) -> Result<Option<LogPosition>, CommandError> {
    let token = std::sync::Mutex::new(None);
    let result = command::execute(writer, handler, &request(), |o| {
        *token.lock().expect("token slot") = Some(o.token);
        StoredResponse {
            status: 200,
            etag: None,
            location: None,
            body: serde_json::Value::Null,
        }
    })
    .await;
    match result {
        Ok(_) => Ok(token.into_inner().expect("token slot")),
        Err(CommandError::Taken { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

pub async fn bootstrap(
    writer: &Writer,
    iterations: std::num::NonZeroU32,
    b: &Bootstrap,
) -> Result<Bootstrapped, BootstrapError> {
    let mut errors = Vec::new();
    let slug = validate::slug("tenant", &b.tenant_slug, &mut errors);
    let username = validate::username("username", &b.username, &mut errors);
    let email = validate::email("email", &b.email, &mut errors);
    password::check_policy("password", &b.password, &username, &email, &mut errors);
    if !errors.is_empty() {
        return Err(BootstrapError::Invalid(errors));
    }
    let mut last = LogPosition::START;
    let mut note = |t: Option<LogPosition>| {
        if let Some(t) = t {
            last = last.max(t);
        }
    };
    let client = writer.pool.get().await.map_err(CommandError::from)?;

    if claimed(&client, SLUG_SCOPE, &slug).await?.is_none() {
        let create = CreateTenant {
            tenant_id: Uuid::now_v7(),
            name: slug.clone(),
            slug: slug.clone(),
            parent_id: None,
        };
        note(run(writer, &create).await?);
    }
    let tenant_id = claimed(&client, SLUG_SCOPE, &slug)
        .await?
        .ok_or_else(|| CommandError::Internal("bootstrap tenant vanished".into()))?;

    let user_scope = format!("user.username:{tenant_id}");
    if claimed(&client, &user_scope, &username).await?.is_none() {
        let pw = b.password.clone();
        let hash = tokio::task::spawn_blocking(move || password::hash(&pw, iterations))
            .await
            .map_err(|e| BootstrapError::Hash(e.to_string()))?
            .map_err(|e| BootstrapError::Hash(e.to_string()))?;
        let user_id = Uuid::now_v7();
        let create = UserHandler {
            tenant_id,
            user_id,
            action: UserAction::Create {
                user_id,
                username: username.clone(),
                email,
                display_name: Some("Administrator".into()),
                password_hash: Some(hash),
            },
        };
        note(run(writer, &create).await?);
    }
    let user_id = claimed(&client, &user_scope, &username)
        .await?
        .ok_or_else(|| CommandError::Internal("bootstrap user vanished".into()))?;

    let role_id = claimed(&client, &role_name_scope(tenant_id, None), "tenant_admin")
        .await?
        .ok_or_else(|| CommandError::Internal("the tenant has no tenant_admin role".into()))?;
    let assign = AssignmentHandler {
        tenant_id,
        assignment_id: Uuid::now_v7(),
        request: AssignmentRequest::Create {
            role_id,
            subject_type: SubjectType::User,
            subject_id: user_id,
            workspace_id: None,
        },
    };
    note(run(writer, &assign).await?);
    let grant = UserHandler {
        tenant_id,
        user_id,
        action: UserAction::GrantPlatformAccess {
            permissions: vec![PLATFORM_GRANT.into()],
        },
    };
    note(run(writer, &grant).await?);
    Ok(Bootstrapped {
        tenant_id,
        user_id,
        token: last,
    })
}
