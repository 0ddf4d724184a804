//! The `workspace` aggregate: a partition of one tenant's resources.

use charter_events::workspace::{
    WorkspaceCreated, WorkspaceDeleted, WorkspaceEvent, WorkspaceRenamed,
};
use serde::Serialize;
use uuid::Uuid;

use super::tenant::{require_active, TenantGate, TenantStatus};
use super::{Aggregate, Rejection, RejectionKind};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkspaceState {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    #[serde(skip)]
    pub deleted: bool,
}

/// The write model of one workspace stream. `None` until `workspace.created`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Workspace(pub Option<WorkspaceState>);

/// A workspace command, with the owning tenant's status read under the tenant's lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceCommand {
    /// The tenant named in the request path.
    pub tenant_id: Uuid,
    /// That tenant's status; `None` when it does not exist.
    pub tenant_status: Option<TenantStatus>,
    pub action: WorkspaceAction,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkspaceAction {
    Create { workspace_id: Uuid, name: String },
    Rename { name: String },
    Delete,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkspaceError {
    #[error("workspace not found")]
    NotFound,
    #[error("workspace already exists")]
    AlreadyExists,
    #[error("tenant not found")]
    TenantNotFound,
    #[error("tenant is blocked")]
    TenantBlocked,
}

impl From<WorkspaceError> for Rejection {
    fn from(e: WorkspaceError) -> Self {
        use RejectionKind::*;
        let (kind, code) = match &e {
            WorkspaceError::NotFound | WorkspaceError::TenantNotFound => (NotFound, "not-found"),
            WorkspaceError::AlreadyExists => (Conflict, "already-exists"),
            WorkspaceError::TenantBlocked => (Conflict, "tenant-blocked"),
        };
        Rejection::new(kind, code, e)
    }
}

impl Aggregate for Workspace {
    type Command = WorkspaceCommand;
    type Event = WorkspaceEvent;
    type Error = WorkspaceError;

    fn apply(self, event: &WorkspaceEvent) -> Self {
        let Some(mut w) = self.0 else {
            return match event {
                WorkspaceEvent::Created(e) => Workspace(Some(WorkspaceState {
                    id: e.workspace_id,
                    tenant_id: e.tenant_id,
                    name: e.name.clone(),
                    deleted: false,
                })),
                _ => Workspace(None),
            };
        };
        match event {
            WorkspaceEvent::Created(_) => {}
            WorkspaceEvent::Renamed(e) => w.name = e.name.clone(),
            WorkspaceEvent::Deleted(_) => w.deleted = true,
        }
        Workspace(Some(w))
    }

    fn decide(&self, command: &WorkspaceCommand) -> Result<Vec<WorkspaceEvent>, WorkspaceError> {
        require_active(command.tenant_status).map_err(|gate| match gate {
            TenantGate::NotFound => WorkspaceError::TenantNotFound,
            TenantGate::Blocked => WorkspaceError::TenantBlocked,
        })?;
        let tenant_id = command.tenant_id;
        if let WorkspaceAction::Create { workspace_id, name } = &command.action {
            if self.0.is_some() {
                return Err(WorkspaceError::AlreadyExists);
            }
            return Ok(vec![WorkspaceCreated {
                workspace_id: *workspace_id,
                tenant_id,
                name: name.clone(),
            }
            .into()]);
        }
        // A workspace of another tenant is indistinguishable from a missing one.
        let w = match &self.0 {
            Some(w) if !w.deleted && w.tenant_id == tenant_id => w,
            _ => return Err(WorkspaceError::NotFound),
        };
        let workspace_id = w.id;
        Ok(match &command.action {
            WorkspaceAction::Create { .. } => unreachable!("handled above"),
            WorkspaceAction::Rename { name } if *name == w.name => vec![],
            WorkspaceAction::Rename { name } => vec![WorkspaceRenamed {
                workspace_id,
                tenant_id,
                name: name.clone(),
            }
            .into()],
            WorkspaceAction::Delete => vec![WorkspaceDeleted {
                workspace_id,
                tenant_id,
            }
            .into()],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testing::given;

    const T: Uuid = Uuid::from_u128(1);
    const OTHER: Uuid = Uuid::from_u128(2);
    const W: Uuid = Uuid::from_u128(10);

    fn cmd(action: WorkspaceAction) -> WorkspaceCommand {
        WorkspaceCommand {
            tenant_id: T,
            tenant_status: Some(TenantStatus::Active),
            action,
        }
    }

    fn created() -> WorkspaceEvent {
        WorkspaceCreated {
            workspace_id: W,
            tenant_id: T,
            name: "production".into(),
        }
        .into()
    }

    fn create() -> WorkspaceAction {
        WorkspaceAction::Create {
            workspace_id: W,
            name: "production".into(),
        }
    }

    #[test]
    fn creates_in_an_active_tenant() {
        given::<Workspace>([]).when(cmd(create())).then([created()]);
    }

    #[test]
    fn no_command_touches_a_workspace_of_a_blocked_or_missing_tenant() {
        let actions = [
            create(),
            WorkspaceAction::Rename { name: "x".into() },
            WorkspaceAction::Delete,
        ];
        for action in actions {
            for (status, error) in [
                (Some(TenantStatus::Blocked), WorkspaceError::TenantBlocked),
                (Some(TenantStatus::Deleted), WorkspaceError::TenantNotFound),
                (None, WorkspaceError::TenantNotFound),
            ] {
                given::<Workspace>([created()])
                    .when(WorkspaceCommand {
                        tenant_id: T,
                        tenant_status: status,
                        action: action.clone(),
                    })
                    .then_error(error);
            }
        }
    }

    #[test]
    fn renames_and_deletes() {
        given::<Workspace>([created()])
            .when(cmd(WorkspaceAction::Rename {
                name: "prod".into(),
            }))
            .then([WorkspaceRenamed {
                workspace_id: W,
                tenant_id: T,
                name: "prod".into(),
            }
            .into()]);
        given::<Workspace>([created()])
            .when(cmd(WorkspaceAction::Rename {
                name: "production".into(),
            }))
            .then([]);
        let state = given::<Workspace>([created()])
            .when(cmd(WorkspaceAction::Delete))
            .then([WorkspaceDeleted {
                workspace_id: W,
                tenant_id: T,
            }
            .into()]);
        assert!(state.0.unwrap().deleted);
    }

    #[test]
    fn a_deleted_workspace_is_gone() {
        let history = [
            created(),
            WorkspaceDeleted {
                workspace_id: W,
                tenant_id: T,
            }
            .into(),
        ];
        given::<Workspace>(history.clone())
            .when(cmd(WorkspaceAction::Delete))
            .then_error(WorkspaceError::NotFound);
        given::<Workspace>(history)
            .when(cmd(create()))
            .then_error(WorkspaceError::AlreadyExists);
    }

    #[test]
    fn a_workspace_of_another_tenant_is_not_found() {
        given::<Workspace>([created()])
            .when(WorkspaceCommand {
                tenant_id: OTHER,
                tenant_status: Some(TenantStatus::Active),
                action: WorkspaceAction::Delete,
            })
            .then_error(WorkspaceError::NotFound);
    }
}
