//! The `assignment` aggregate: a role given to a user or a group, tenant-wide or in one
//! workspace.

use charter_events::assignment::{
    AssignmentCreated, AssignmentDeleted, AssignmentEvent, SubjectType,
};
use uuid::Uuid;

use std::collections::BTreeSet;

use super::delegation::{Authority, Escalation};
use super::tenant::{require_active, TenantGate, TenantStatus};
use super::{Aggregate, Rejection, RejectionKind};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssignmentState {
    pub created: AssignmentCreated,
    pub deleted: bool,
}

/// The write model of one assignment stream. `None` until `assignment.created`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assignment(pub Option<AssignmentState>);

/// A role as loaded for the decision: its tenant, its workspace scope, whether it is live,
/// and the permissions an assignment of it hands out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleFacts {
    pub tenant_id: Uuid,
    pub workspace_id: Option<Uuid>,
    pub live: bool,
    pub permissions: BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssignmentCommand {
    pub tenant_id: Uuid,
    pub tenant_status: Option<TenantStatus>,
    /// Who decides: an assignment hands out its role's permissions, so a caller assigns only
    /// roles whose every permission it holds.
    pub authority: Authority,
    pub action: AssignmentAction,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssignmentAction {
    Create {
        assignment_id: Uuid,
        role_id: Uuid,
        /// `None` when no such role exists.
        role: Option<RoleFacts>,
        subject_type: SubjectType,
        subject_id: Uuid,
        /// The subject's tenant, when it exists and is live.
        subject_tenant: Option<Uuid>,
        /// The requested workspace and whether it is a live workspace of the tenant.
        workspace: Option<(Uuid, bool)>,
    },
    Delete,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssignmentError {
    #[error("assignment not found")]
    NotFound,
    #[error("assignment already exists")]
    AlreadyExists,
    #[error("tenant not found")]
    TenantNotFound,
    #[error("tenant is blocked")]
    TenantBlocked,
    #[error("role {0} is not a role of this tenant")]
    RoleNotFound(Uuid),
    #[error("{0:?} {1} is not a member of this tenant")]
    SubjectNotFound(SubjectType, Uuid),
    #[error("workspace {0} is not a workspace of this tenant")]
    WorkspaceNotFound(Uuid),
    #[error(
        "role {role} only exists in workspace {role_workspace}; it cannot be assigned elsewhere"
    )]
    RoleWorkspaceMismatch { role: Uuid, role_workspace: Uuid },
    #[error(transparent)]
    Escalation(#[from] Escalation),
}

impl From<AssignmentError> for Rejection {
    fn from(e: AssignmentError) -> Self {
        use RejectionKind::*;
        let (kind, code) = match &e {
            AssignmentError::NotFound | AssignmentError::TenantNotFound => (NotFound, "not-found"),
            AssignmentError::AlreadyExists => (Conflict, "already-exists"),
            AssignmentError::TenantBlocked => (Conflict, "tenant-blocked"),
            AssignmentError::RoleNotFound(_) => (Invalid, "role-not-found"),
            AssignmentError::SubjectNotFound(..) => (Invalid, "subject-not-found"),
            AssignmentError::WorkspaceNotFound(_) => (Invalid, "workspace-not-found"),
            AssignmentError::RoleWorkspaceMismatch { .. } => (Invalid, "role-workspace-mismatch"),
            AssignmentError::Escalation(e) => return e.clone().into(),
        };
        Rejection::new(kind, code, e)
    }
}

impl Aggregate for Assignment {
    type Command = AssignmentCommand;
    type Event = AssignmentEvent;
    type Error = AssignmentError;

    fn apply(self, event: &AssignmentEvent) -> Self {
        match (self.0, event) {
            (None, AssignmentEvent::Created(c)) => Assignment(Some(AssignmentState {
                created: c.clone(),
                deleted: false,
            })),
            (Some(mut a), AssignmentEvent::Deleted(_)) => {
                a.deleted = true;
                Assignment(Some(a))
            }
            (state, _) => Assignment(state),
        }
    }

    fn decide(&self, command: &AssignmentCommand) -> Result<Vec<AssignmentEvent>, AssignmentError> {
        require_active(command.tenant_status).map_err(|gate| match gate {
            TenantGate::NotFound => AssignmentError::TenantNotFound,
            TenantGate::Blocked => AssignmentError::TenantBlocked,
        })?;
        let tenant_id = command.tenant_id;
        match &command.action {
            AssignmentAction::Create {
                assignment_id,
                role_id,
                role,
                subject_type,
                subject_id,
                subject_tenant,
                workspace,
            } => {
                if self.0.is_some() {
                    return Err(AssignmentError::AlreadyExists);
                }
                let role = match role {
                    Some(r) if r.live && r.tenant_id == tenant_id => r,
                    _ => return Err(AssignmentError::RoleNotFound(*role_id)),
                };
                if *subject_tenant != Some(tenant_id) {
                    return Err(AssignmentError::SubjectNotFound(*subject_type, *subject_id));
                }
                if let Some((id, false)) = workspace {
                    return Err(AssignmentError::WorkspaceNotFound(*id));
                }
                // A workspace role is assigned in its workspace (the default when none is named).
                let workspace_id = match (role.workspace_id, workspace.map(|(id, _)| id)) {
                    (Some(rw), Some(w)) if rw != w => {
                        return Err(AssignmentError::RoleWorkspaceMismatch {
                            role: *role_id,
                            role_workspace: rw,
                        })
                    }
                    (Some(rw), _) => Some(rw),
                    (None, w) => w,
                };
                command
                    .authority
                    .may_hand_out(|| format!("assigning role {role_id}"), &role.permissions)?;
                Ok(vec![AssignmentCreated {
                    assignment_id: *assignment_id,
                    tenant_id,
                    workspace_id,
                    role_id: *role_id,
                    subject_type: *subject_type,
                    subject_id: *subject_id,
                }
                .into()])
            }
            AssignmentAction::Delete => match &self.0 {
                Some(a) if !a.deleted && a.created.tenant_id == tenant_id => {
                    let c = &a.created;
                    Ok(vec![AssignmentDeleted {
                        assignment_id: c.assignment_id,
                        tenant_id,
                        workspace_id: c.workspace_id,
                        role_id: c.role_id,
                        subject_type: c.subject_type,
                        subject_id: c.subject_id,
                    }
                    .into()])
                }
                _ => Err(AssignmentError::NotFound),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testing::given;

    const T: Uuid = Uuid::from_u128(1);
    const A: Uuid = Uuid::from_u128(4);
    const R: Uuid = Uuid::from_u128(5);
    const U: Uuid = Uuid::from_u128(7);
    const W: Uuid = Uuid::from_u128(9);
    const W2: Uuid = Uuid::from_u128(10);

    fn role(workspace_id: Option<Uuid>, live: bool) -> RoleFacts {
        RoleFacts {
            tenant_id: T,
            workspace_id,
            live,
            permissions: ["iam.users.read", "iam.users.write"]
                .map(String::from)
                .into(),
        }
    }

    fn create(role_ws: Option<Uuid>, ws: Option<(Uuid, bool)>) -> AssignmentCommand {
        AssignmentCommand {
            tenant_id: T,
            tenant_status: Some(TenantStatus::Active),
            authority: Authority::Platform,
            action: AssignmentAction::Create {
                assignment_id: A,
                role_id: R,
                role: Some(role(role_ws, true)),
                subject_type: SubjectType::User,
                subject_id: U,
                subject_tenant: Some(T),
                workspace: ws,
            },
        }
    }

    fn created(ws: Option<Uuid>) -> AssignmentEvent {
        AssignmentCreated {
            assignment_id: A,
            tenant_id: T,
            workspace_id: ws,
            role_id: R,
            subject_type: SubjectType::User,
            subject_id: U,
        }
        .into()
    }

    #[test]
    fn assigns_tenant_wide_or_in_a_workspace() {
        given::<Assignment>([])
            .when(create(None, None))
            .then([created(None)]);
        given::<Assignment>([])
            .when(create(None, Some((W, true))))
            .then([created(Some(W))]);
    }

    #[test]
    fn a_workspace_role_stays_in_its_workspace() {
        given::<Assignment>([])
            .when(create(Some(W), None))
            .then([created(Some(W))]);
        given::<Assignment>([])
            .when(create(Some(W), Some((W2, true))))
            .then_error(AssignmentError::RoleWorkspaceMismatch {
                role: R,
                role_workspace: W,
            });
    }

    #[test]
    fn everything_named_must_belong_to_the_tenant() {
        let mut c = create(None, None);
        if let AssignmentAction::Create { subject_tenant, .. } = &mut c.action {
            *subject_tenant = Some(Uuid::from_u128(2));
        }
        given::<Assignment>([])
            .when(c)
            .then_error(AssignmentError::SubjectNotFound(SubjectType::User, U));
        let mut c = create(None, None);
        if let AssignmentAction::Create { role: r, .. } = &mut c.action {
            *r = Some(role(None, false));
        }
        given::<Assignment>([])
            .when(c)
            .then_error(AssignmentError::RoleNotFound(R));
        given::<Assignment>([])
            .when(create(None, Some((W, false))))
            .then_error(AssignmentError::WorkspaceNotFound(W));
    }

    #[test]
    fn a_delegate_assigns_only_roles_it_holds_whole() {
        // A helpdesk with iam.assignments.write and half the role: refused, whoever the
        // subject is (itself included) and whatever the scope.
        for ws in [None, Some((W, true))] {
            let c = AssignmentCommand {
                authority: Authority::holding(["iam.assignments.write", "iam.users.read"]),
                ..create(None, ws)
            };
            given::<Assignment>([])
                .when(c)
                .then_error(AssignmentError::Escalation(Escalation {
                    what: format!("assigning role {R}"),
                    missing: vec!["iam.users.write".into()],
                }));
        }
        let c = AssignmentCommand {
            authority: Authority::holding(["iam.users.read", "iam.users.write"]),
            ..create(None, None)
        };
        given::<Assignment>([]).when(c).then([created(None)]);
        // Removing an assignment hands out nothing.
        let delete = AssignmentCommand {
            authority: Authority::holding::<&str>([]),
            ..create(None, None)
        };
        let delete = AssignmentCommand {
            action: AssignmentAction::Delete,
            ..delete
        };
        given::<Assignment>([created(None)])
            .when(delete)
            .then([AssignmentDeleted {
                assignment_id: A,
                tenant_id: T,
                workspace_id: None,
                role_id: R,
                subject_type: SubjectType::User,
                subject_id: U,
            }
            .into()]);
    }

    #[test]
    fn deletes_once() {
        let delete = AssignmentCommand {
            tenant_id: T,
            tenant_status: Some(TenantStatus::Active),
            authority: Authority::Platform,
            action: AssignmentAction::Delete,
        };
        let deleted: AssignmentEvent = AssignmentDeleted {
            assignment_id: A,
            tenant_id: T,
            workspace_id: None,
            role_id: R,
            subject_type: SubjectType::User,
            subject_id: U,
        }
        .into();
        given::<Assignment>([created(None)])
            .when(delete.clone())
            .then([deleted.clone()]);
        given::<Assignment>([created(None), deleted])
            .when(delete)
            .then_error(AssignmentError::NotFound);
    }
}
