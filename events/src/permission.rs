//! Events of the permission registry. Each service registers the permissions it enforces;
//! roles can only grant registered permissions. One stream per service,
//! `permission_registry-<service>`, in the platform scope (tenant id nil).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The tenant id of platform-wide streams (the registry): the nil UUID.
pub const PLATFORM: Uuid = Uuid::nil();

/// A service registered a permission it enforces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PermissionRegistered {
    pub service: String,
    /// Dotted, lower-case, e.g. `connections.create`.
    pub name: String,
    pub label: String,
}

/// A registered permission's human-readable label changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PermissionLabelChanged {
    pub service: String,
    pub name: String,
    pub label: String,
    pub previous_label: String,
}

crate::event_family! {
    /// Every event of the `permission_registry` aggregate.
    pub enum PermissionEvent for "permission_registry" {
        Registered(PermissionRegistered) = "permission.registered" v 1,
        LabelChanged(PermissionLabelChanged) = "permission.label_changed" v 1,
    }
}

impl crate::Scoped for PermissionEvent {
    fn tenant_id(&self) -> Uuid {
        PLATFORM
    }
}
