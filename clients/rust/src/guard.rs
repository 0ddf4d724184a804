//! One call per request: verify the token, check its policy version, check the permission.

use std::time::Duration;

use charter_events::access_token::Claims;
use uuid::Uuid;

use crate::policy::{PolicyCache, PolicyError};
use crate::verifier::{TokenError, Verifier};

/// The base of Charter's problem `type` URIs; the SDK answers with Charter's slugs.
pub const PROBLEM_TYPE_BASE: &str = "https://charter.dev/problems/";

/// Why a request was refused, or could not be judged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No bearer token.
    #[error("this route needs a bearer token")]
    NoToken,
    /// The token failed verification.
    #[error(transparent)]
    Token(TokenError),
    /// The token was minted under an older policy version than its scope's current one.
    #[error("the token is stale: its policy version {token} is older than the current {current}")]
    Stale {
        /// The token's `policy_version`.
        token: i64,
        /// The scope's effective version.
        current: i64,
    },
    /// The token does not carry the permission in its scope.
    #[error("this requires {0}")]
    Missing(String),
    /// The token is of another tenant or workspace than the resource.
    #[error("the token is scoped to another {0}")]
    OtherScope(&'static str),
    /// The check could not be made: the policy cache is not ready or past its budget, or the
    /// keys could not be fetched.
    #[error("{0}")]
    Unavailable(String),
}

impl Refusal {
    /// The HTTP status to answer with: 401, 403 or 503.
    pub fn status(&self) -> u16 {
        match self {
            Refusal::NoToken | Refusal::Token(_) | Refusal::Stale { .. } => match self {
                Refusal::Token(TokenError::KeysUnavailable(_)) => 503,
                _ => 401,
            },
            Refusal::Missing(_) | Refusal::OtherScope(_) => 403,
            Refusal::Unavailable(_) => 503,
        }
    }

    /// The problem type's slug, Charter's where Charter has one.
    pub fn slug(&self) -> &'static str {
        match self {
            Refusal::NoToken => "unauthorized",
            Refusal::Token(TokenError::KeysUnavailable(_)) | Refusal::Unavailable(_) => {
                "policy-unavailable"
            }
            Refusal::Token(_) | Refusal::Stale { .. } => "invalid-token",
            Refusal::Missing(_) | Refusal::OtherScope(_) => "forbidden",
        }
    }

    /// A short label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::NoToken => "no_token",
            Refusal::Token(TokenError::KeysUnavailable(_)) | Refusal::Unavailable(_) => {
                "unavailable"
            }
            Refusal::Token(_) => "invalid_token",
            Refusal::Stale { .. } => "stale",
            Refusal::Missing(_) => "missing_permission",
            Refusal::OtherScope(_) => "other_scope",
        }
    }
}

impl From<PolicyError> for Refusal {
    fn from(e: PolicyError) -> Self {
        match e {
            PolicyError::StaleToken { token, current } => Refusal::Stale { token, current },
            other => Refusal::Unavailable(other.to_string()),
        }
    }
}

/// The resource a request touches, when the route names it: the token must be of its
/// tenant, and of its workspace when it names one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resource {
    /// The resource's tenant.
    pub tenant_id: Option<Uuid>,
    /// The resource's workspace.
    pub workspace_id: Option<Uuid>,
}

/// A [`Verifier`] and a [`PolicyCache`]: everything a request is judged by. Cheap to clone.
#[derive(Clone)]
pub struct Guard {
    verifier: Verifier,
    policy: PolicyCache,
}

impl Guard {
    /// Judges requests with these keys and this cache.
    pub fn new(verifier: Verifier, policy: PolicyCache) -> Self {
        Self { verifier, policy }
    }

    /// The verifier.
    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    /// The policy cache.
    pub fn policy(&self) -> &PolicyCache {
        &self.policy
    }

    /// Verifies `token`, checks its policy version, that it is of `resource`'s tenant and
    /// workspace, and that it carries `permission` in its own scope. Platform-wide grants
    /// (`platform_permissions`) are Charter's administration and are not honoured here.
    pub async fn authorize(
        &self,
        token: &str,
        permission: &str,
        resource: Resource,
    ) -> Result<Claims, Refusal> {
        let claims = self.verifier.verify(token).await.map_err(Refusal::Token)?;
        self.check(&claims, permission, resource)?;
        Ok(claims)
    }

    /// The checks after verification, for claims verified already.
    pub fn check(
        &self,
        claims: &Claims,
        permission: &str,
        resource: Resource,
    ) -> Result<(), Refusal> {
        self.policy.check(claims)?;
        if resource.tenant_id.is_some_and(|t| t != claims.tenant_id) {
            return Err(Refusal::OtherScope("tenant"));
        }
        if resource
            .workspace_id
            .is_some_and(|w| Some(w) != claims.workspace_id)
        {
            return Err(Refusal::OtherScope("workspace"));
        }
        if !claims.has_permission(permission) {
            return Err(Refusal::Missing(permission.to_owned()));
        }
        Ok(())
    }

    /// Waits for the policy cache to be ready (see [`PolicyCache::wait_ready`]).
    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        self.policy.wait_ready(timeout).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_map_to_charters_statuses_and_types() {
        assert_eq!(Refusal::NoToken.status(), 401);
        assert_eq!(
            Refusal::Token(TokenError::Signature).slug(),
            "invalid-token"
        );
        assert_eq!(
            Refusal::Stale {
                token: 1,
                current: 2
            }
            .status(),
            401
        );
        assert_eq!(Refusal::Missing("a.b".into()).status(), 403);
        assert_eq!(Refusal::OtherScope("tenant").slug(), "forbidden");
        assert_eq!(
            Refusal::Token(TokenError::KeysUnavailable("down".into())).status(),
            503
        );
        assert_eq!(
            Refusal::from(PolicyError::NotReady).slug(),
            "policy-unavailable"
        );
    }
}
