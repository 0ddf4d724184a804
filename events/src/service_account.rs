//! Events of the `service_account` aggregate: a non-human principal of one tenant that
//! authenticates with client credentials (RFC 6749 §4.4).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A service account was created. Its `client_id` is its id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceAccountCreated {
    pub service_account_id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
}

/// A client secret was issued (at creation, or by rotation). Internal: carries the SHA-256
/// hash of the secret, which is 256 random bits and so needs no slow hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceAccountSecretIssued {
    pub service_account_id: Uuid,
    pub tenant_id: Uuid,
    pub secret_hash: String,
}

/// The client secret was rotated (the public trace of the internal issue event).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceAccountSecretRotated {
    pub service_account_id: Uuid,
    pub tenant_id: Uuid,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceAccountDisabled {
    pub service_account_id: Uuid,
    pub tenant_id: Uuid,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceAccountEnabled {
    pub service_account_id: Uuid,
    pub tenant_id: Uuid,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceAccountDeleted {
    pub service_account_id: Uuid,
    pub tenant_id: Uuid,
}

/// The service account's platform-wide grants were set by a platform administrator: what
/// its client credentials tokens carry as `platform_permissions`, in every tenant. The list
/// is the whole new set (empty: none), sorted and without duplicates. `account_version` is
/// the account's new version: tokens minted before the change carry a lower one and are
/// refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceAccountPlatformAccessSet {
    pub service_account_id: Uuid,
    pub tenant_id: Uuid,
    /// Permission patterns: a permission name, or a prefix ending in `.*` (`iam.*`).
    pub permissions: Vec<String>,
    pub account_version: i64,
}

crate::event_family! {
    /// Every event of the `service_account` aggregate.
    pub enum ServiceAccountEvent for "service_account" {
        Created(ServiceAccountCreated) = "service_account.created" v 1,
        SecretIssued(ServiceAccountSecretIssued) = "service_account.secret_issued" v 1 internal,
        SecretRotated(ServiceAccountSecretRotated) = "service_account.secret_rotated" v 1,
        Disabled(ServiceAccountDisabled) = "service_account.disabled" v 1,
        Enabled(ServiceAccountEnabled) = "service_account.enabled" v 1,
        Deleted(ServiceAccountDeleted) = "service_account.deleted" v 1,
        PlatformAccessSet(ServiceAccountPlatformAccessSet) =
            "service_account.platform_access_set" v 1,
    }
}

impl ServiceAccountEvent {
    /// `(service_account_id, tenant_id)`.
    pub fn ids(&self) -> (Uuid, Uuid) {
        macro_rules! ids {
            ($($v:ident),+) => {
                match self { $(Self::$v(e) => (e.service_account_id, e.tenant_id)),+ }
            };
        }
        ids!(
            Created,
            SecretIssued,
            SecretRotated,
            Disabled,
            Enabled,
            Deleted,
            PlatformAccessSet
        )
    }
}

impl crate::Scoped for ServiceAccountEvent {
    fn tenant_id(&self) -> Uuid {
        self.ids().1
    }
}
