//! Events of the `assignment` aggregate: a role given to a user or a group, in the whole
//! tenant or in one workspace.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Who holds an assignment.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SubjectType {
    User,
    Group,
    /// A service account: a principal like a user, that logs in with client credentials.
    ServiceAccount,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignmentCreated {
    pub assignment_id: Uuid,
    pub tenant_id: Uuid,
    /// `None`: the whole tenant (every workspace).
    pub workspace_id: Option<Uuid>,
    pub role_id: Uuid,
    pub subject_type: SubjectType,
    pub subject_id: Uuid,
}

/// An assignment was removed. Carries what it removed, so consumers need no lookup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignmentDeleted {
    pub assignment_id: Uuid,
    pub tenant_id: Uuid,
    pub workspace_id: Option<Uuid>,
    pub role_id: Uuid,
    pub subject_type: SubjectType,
    pub subject_id: Uuid,
}

crate::event_family! {
    /// Every event of the `assignment` aggregate.
    pub enum AssignmentEvent for "assignment" {
        Created(AssignmentCreated) = "assignment.created" v 1,
        Deleted(AssignmentDeleted) = "assignment.deleted" v 1,
    }
}

impl crate::Scoped for AssignmentEvent {
    fn tenant_id(&self) -> Uuid {
        match self {
            Self::Created(e) => e.tenant_id,
            Self::Deleted(e) => e.tenant_id,
        }
    }

    fn workspace_id(&self) -> Option<Uuid> {
        match self {
            Self::Created(e) => e.workspace_id,
            Self::Deleted(e) => e.workspace_id,
        }
    }
}
