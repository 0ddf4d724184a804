//! Events of the `role` aggregate: a named set of permissions, scoped to a tenant or to one
//! of its workspaces. System roles (`template` set) are seeded with every tenant.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleCreated {
    pub role_id: Uuid,
    pub tenant_id: Uuid,
    /// Set when the role only exists in one workspace.
    pub workspace_id: Option<Uuid>,
    pub name: String,
    pub permissions: Vec<String>,
    /// The system template this role was seeded from (`tenant_admin`, `auditor`, `viewer`).
    pub template: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleRenamed {
    pub role_id: Uuid,
    pub tenant_id: Uuid,
    pub workspace_id: Option<Uuid>,
    pub name: String,
}

/// Permissions were added to a role (only those it did not have).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RolePermissionsGranted {
    pub role_id: Uuid,
    pub tenant_id: Uuid,
    pub workspace_id: Option<Uuid>,
    pub permissions: Vec<String>,
}

/// Permissions were taken from a role (only those it had).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RolePermissionsRevoked {
    pub role_id: Uuid,
    pub tenant_id: Uuid,
    pub workspace_id: Option<Uuid>,
    pub permissions: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleDeleted {
    pub role_id: Uuid,
    pub tenant_id: Uuid,
    pub workspace_id: Option<Uuid>,
}

crate::event_family! {
    /// Every event of the `role` aggregate.
    pub enum RoleEvent for "role" {
        Created(RoleCreated) = "role.created" v 1,
        Renamed(RoleRenamed) = "role.renamed" v 1,
        PermissionsGranted(RolePermissionsGranted) = "role.permissions_granted" v 1,
        PermissionsRevoked(RolePermissionsRevoked) = "role.permissions_revoked" v 1,
        Deleted(RoleDeleted) = "role.deleted" v 1,
    }
}

impl crate::Scoped for RoleEvent {
    fn tenant_id(&self) -> Uuid {
        match self {
            Self::Created(e) => e.tenant_id,
            Self::Renamed(e) => e.tenant_id,
            Self::PermissionsGranted(e) => e.tenant_id,
            Self::PermissionsRevoked(e) => e.tenant_id,
            Self::Deleted(e) => e.tenant_id,
        }
    }

    fn workspace_id(&self) -> Option<Uuid> {
        match self {
            Self::Created(e) => e.workspace_id,
            Self::Renamed(e) => e.workspace_id,
            Self::PermissionsGranted(e) => e.workspace_id,
            Self::PermissionsRevoked(e) => e.workspace_id,
            Self::Deleted(e) => e.workspace_id,
        }
    }
}
