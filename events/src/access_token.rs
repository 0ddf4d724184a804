//! The claims of a Charter access token: what Charter mints and what a consuming service
//! verifies (the `charter-client` SDK). `schemas/jwt-claims.json` is generated from
//! [`Claims`]; a contract test keeps the two identical.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What kind of principal `sub` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PrincipalKind {
    User,
    ServiceAccount,
}

/// The claims of a Charter access token (an ES256 JWT whose header carries `kid`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[schemars(title = "Charter access token claims")]
pub struct Claims {
    /// The issuer (`auth.issuer`).
    pub iss: String,
    /// The audience (`auth.audience`).
    pub aud: String,
    /// The user or service account id.
    pub sub: Uuid,
    pub principal: PrincipalKind,
    pub tenant_id: Uuid,
    /// Present when the token is scoped to one workspace of the tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_id: Option<Uuid>,
    /// Ids of the roles the subject holds in the token's scope.
    pub roles: Vec<Uuid>,
    /// The permissions those roles grant in the token's scope, sorted.
    pub permissions: Vec<String>,
    /// Permission patterns granted in every tenant (`iam.*` for the bootstrap administrator).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub platform_permissions: Vec<String>,
    /// The scope's effective policy version when the token was minted: the tenant's counter,
    /// plus the workspace's counter when the token is scoped to a workspace. A token below its
    /// scope's current effective version is stale.
    pub policy_version: i64,
    /// What `policy_version` means: contract 2 (tenant counter + workspace counter). A token
    /// without it was minted under contract 1, before the upgrade to 2, and is refused.
    pub policy_contract: u32,
    /// The principal's account version at minting. A user's is raised by logout-all, a
    /// password change and an MFA reset; a service account's counts its secret's rotations.
    /// A token below the principal's current value is refused.
    pub account_version: i64,
    /// The login session the token belongs to (absent for client credentials).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<Uuid>,
    pub jti: Uuid,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
}

impl Claims {
    /// Whether the token carries `permission` in its own scope.
    pub fn has_permission(&self, permission: &str) -> bool {
        self.permissions
            .binary_search_by(|p| p.as_str().cmp(permission))
            .is_ok()
    }

    /// Whether a platform-wide grant covers `permission` (`iam.*` covers `iam.users.write`).
    pub fn has_platform_permission(&self, permission: &str) -> bool {
        self.platform_permissions
            .iter()
            .any(|pattern| matches(pattern, permission))
    }

    /// How the event log names this principal: `user:<id>` or `service_account:<id>`.
    pub fn actor(&self) -> String {
        let kind = match self.principal {
            PrincipalKind::User => "user",
            PrincipalKind::ServiceAccount => "service_account",
        };
        format!("{kind}:{}", self.sub)
    }
}

/// `pattern` is a permission name, or a prefix ending in `.*`.
pub fn matches(pattern: &str, permission: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => prefix.ends_with('.') && permission.starts_with(prefix),
        None => pattern == permission,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_cover_only_their_namespace() {
        assert!(matches("iam.*", "iam.users.write"));
        assert!(matches("iam.users.write", "iam.users.write"));
        assert!(!matches("iam.*", "billing.read"));
        assert!(!matches("iam*", "iamx.read"));
        assert!(!matches("iam.users.read", "iam.users.write"));
    }
}
