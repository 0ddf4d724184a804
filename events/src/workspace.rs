//! Events of the `workspace` aggregate. A workspace partitions one tenant's resources
//! (for example `production` and `staging`); roles and assignments can be scoped to one.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A workspace was created inside a tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceCreated {
    pub workspace_id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
}

/// A workspace's name changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceRenamed {
    pub workspace_id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
}

/// A workspace was deleted. Its name becomes free again inside the tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceDeleted {
    pub workspace_id: Uuid,
    pub tenant_id: Uuid,
}

crate::event_family! {
    /// Every event of the `workspace` aggregate.
    pub enum WorkspaceEvent for "workspace" {
        Created(WorkspaceCreated) = "workspace.created" v 1,
        Renamed(WorkspaceRenamed) = "workspace.renamed" v 1,
        Deleted(WorkspaceDeleted) = "workspace.deleted" v 1,
    }
}

impl crate::Scoped for WorkspaceEvent {
    fn tenant_id(&self) -> Uuid {
        match self {
            Self::Created(e) => e.tenant_id,
            Self::Renamed(e) => e.tenant_id,
            Self::Deleted(e) => e.tenant_id,
        }
    }

    fn workspace_id(&self) -> Option<Uuid> {
        Some(match self {
            Self::Created(e) => e.workspace_id,
            Self::Renamed(e) => e.workspace_id,
            Self::Deleted(e) => e.workspace_id,
        })
    }
}
