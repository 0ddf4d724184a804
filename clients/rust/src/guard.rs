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
    /// The route names no tenant and did not opt into the token's scope: a misconfiguration
    /// (see [`crate::actix`]).
    #[error("the route names no tenant to check the token against")]
    Unscoped,
}

impl Refusal {
    /// The HTTP status to answer with: 401, 403, 503, or 500 for a misconfigured route.
    pub fn status(&self) -> u16 {
        match self {
            Refusal::NoToken | Refusal::Token(_) | Refusal::Stale { .. } => match self {
                Refusal::Token(TokenError::KeysUnavailable(_)) => 503,
                _ => 401,
            },
            Refusal::Missing(_) | Refusal::OtherScope(_) => 403,
            Refusal::Unavailable(_) => 503,
            Refusal::Unscoped => 500,
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
            Refusal::Unscoped => "internal",
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
            Refusal::Unscoped => "unscoped_route",
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
        in_scope(claims, permission, resource)
    }

    /// Waits for the policy cache to be ready (see [`PolicyCache::wait_ready`]).
    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        self.policy.wait_ready(timeout).await
    }
}

/// The checks that need neither keys nor the cache: the token is of the resource's tenant and
/// workspace, and carries `permission` in its own scope. Platform-wide grants are not
/// honoured.
fn in_scope(claims: &Claims, permission: &str, resource: Resource) -> Result<(), Refusal> {
    if resource.tenant_id.is_some_and(|t| t != claims.tenant_id) {
        return Err(Refusal::OtherScope("tenant"));
    }
    match (resource.workspace_id, claims.workspace_id) {
        (Some(w), token) if Some(w) != token => return Err(Refusal::OtherScope("workspace")),
        // A workspace's grants do not reach its tenant's own resources.
        (None, Some(_)) if resource.tenant_id.is_some() => {
            return Err(Refusal::OtherScope("workspace"))
        }
        _ => {}
    }
    if !claims.has_permission(permission) {
        return Err(Refusal::Missing(permission.to_owned()));
    }
    Ok(())
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
        assert_eq!(Refusal::Unscoped.status(), 500);
    }

    fn claims(tenant: u128, workspace: Option<u128>, permissions: &[&str]) -> Claims {
        serde_json::from_value(serde_json::json!({
            "iss": "https://iam.example.com", "aud": "charter",
            "sub": Uuid::from_u128(99), "principal": "user",
            "tenant_id": Uuid::from_u128(tenant),
            "workspace_id": workspace.map(Uuid::from_u128),
            "roles": [], "permissions": permissions, "platform_permissions": ["connections.*", "iam.*"],
            "policy_version": 3, "policy_contract": 2, "account_version": 0,
            "jti": Uuid::from_u128(7), "iat": 0, "nbf": 0, "exp": 0,
        }))
        .expect("claims")
    }

    fn at(tenant: u128, workspace: Option<u128>) -> Resource {
        Resource {
            tenant_id: Some(Uuid::from_u128(tenant)),
            workspace_id: workspace.map(Uuid::from_u128),
        }
    }

    #[test]
    fn a_token_is_good_only_in_its_own_scope_and_for_what_it_carries() {
        let ws = claims(1, Some(10), &["connections.read"]);
        assert_eq!(in_scope(&ws, "connections.read", at(1, Some(10))), Ok(()));
        assert_eq!(
            in_scope(&ws, "connections.create", at(1, Some(10))),
            Err(Refusal::Missing("connections.create".into()))
        );
        // Another tenant, another workspace of its tenant, the tenant itself.
        assert_eq!(
            in_scope(&ws, "connections.read", at(2, Some(10))),
            Err(Refusal::OtherScope("tenant"))
        );
        assert_eq!(
            in_scope(&ws, "connections.read", at(1, Some(11))),
            Err(Refusal::OtherScope("workspace"))
        );
        assert_eq!(
            in_scope(&ws, "connections.read", at(1, None)),
            Err(Refusal::OtherScope("workspace"))
        );
        // A tenant-wide token on a tenant route; not on a workspace route.
        let tenant = claims(1, None, &["connections.read"]);
        assert_eq!(in_scope(&tenant, "connections.read", at(1, None)), Ok(()));
        assert_eq!(
            in_scope(&tenant, "connections.read", at(1, Some(10))),
            Err(Refusal::OtherScope("workspace"))
        );
    }

    #[test]
    fn platform_grants_are_not_honoured() {
        // `platform_permissions` covers connections.* in every tenant: the guard ignores it.
        let admin = claims(1, Some(10), &[]);
        assert_eq!(
            in_scope(&admin, "connections.read", at(1, Some(10))),
            Err(Refusal::Missing("connections.read".into()))
        );
    }
}
