//! Assignment commands. Creating one reads the role, the subject (user, group or service
//! account) and the workspace from the write side; the same role for the same subject in the
//! same scope is claimed once. The claim is keyed by subject, so it doubles as the write
//! side's index of a subject's roles (`command::delegation`).

use charter_events::assignment::{AssignmentEvent, SubjectType};
use charter_events::envelope::stream_id;
use charter_events::DomainEvent;
use deadpool_postgres::Transaction;
use uuid::Uuid;

use super::group::group_stream;
use super::role::role_stream;
use super::service_account::service_account_stream;
use super::tenant::status_for_update;
use super::user::user_stream;
use super::workspace::workspace_stream;
use super::{CommandError, CommandHandler};
use crate::domain::assignment::{Assignment, AssignmentAction, AssignmentCommand, RoleFacts};
use crate::domain::delegation::Authority;
use crate::domain::group::Group;
use crate::domain::role::Role;
use crate::domain::service_account::ServiceAccount;
use crate::domain::user::{User, UserStatus};
use crate::domain::workspace::Workspace;
use crate::store::claims::ClaimChange;
use crate::store::events;

pub fn assignment_stream(id: Uuid) -> String {
    stream_id(AssignmentEvent::STREAM_TYPE, id)
}

/// The claim scope of a subject's assignments: `assignment:<tenant>:<type>:<subject>`.
pub fn subject_claim_scope(tenant_id: Uuid, subject_type: SubjectType, subject_id: Uuid) -> String {
    let kind = match subject_type {
        SubjectType::User => "user",
        SubjectType::Group => "group",
        SubjectType::ServiceAccount => "serviceaccount",
    };
    format!("assignment:{tenant_id}:{kind}:{subject_id}")
}

/// The uniqueness claim of an assignment, `(scope, value)`: one per role, subject and scope,
/// the value `<role>:<workspace or "tenant">` under [`subject_claim_scope`].
pub fn assignment_claim(
    tenant_id: Uuid,
    role_id: Uuid,
    subject_type: SubjectType,
    subject_id: Uuid,
    workspace_id: Option<Uuid>,
) -> (String, String) {
    let ws = workspace_id.map_or_else(|| "tenant".to_owned(), |w| w.to_string());
    (
        subject_claim_scope(tenant_id, subject_type, subject_id),
        format!("{role_id}:{ws}"),
    )
}

#[derive(Debug, Clone)]
pub enum AssignmentRequest {
    Create {
        role_id: Uuid,
        subject_type: SubjectType,
        subject_id: Uuid,
        workspace_id: Option<Uuid>,
    },
    Delete,
}

pub struct AssignmentHandler {
    pub tenant_id: Uuid,
    pub assignment_id: Uuid,
    /// The caller's; an assignment hands out its role's permissions.
    pub authority: Authority,
    pub request: AssignmentRequest,
}

impl CommandHandler for AssignmentHandler {
    type Aggregate = Assignment;

    fn stream_id(&self) -> String {
        assignment_stream(self.assignment_id)
    }

    async fn prepare(&self, tx: &Transaction<'_>) -> Result<Vec<AssignmentCommand>, CommandError> {
        let tenant_status = status_for_update(tx, self.tenant_id).await?;
        let action = match &self.request {
            AssignmentRequest::Delete => AssignmentAction::Delete,
            AssignmentRequest::Create {
                role_id,
                subject_type,
                subject_id,
                workspace_id,
            } => {
                let role = events::load::<Role>(tx, &role_stream(*role_id)).await?;
                let role = match role.state.0 {
                    None => None,
                    Some(r) => {
                        // A role of a deleted workspace can no longer be assigned anywhere.
                        let workspace_live = match r.workspace_id {
                            None => true,
                            Some(w) => events::load::<Workspace>(tx, &workspace_stream(w))
                                .await?
                                .state
                                .0
                                .is_some_and(|w| !w.deleted),
                        };
                        Some(RoleFacts {
                            tenant_id: r.tenant_id,
                            workspace_id: r.workspace_id,
                            live: !r.deleted && workspace_live,
                            permissions: r.permissions,
                        })
                    }
                };
                let subject_tenant = match subject_type {
                    SubjectType::User => events::load::<User>(tx, &user_stream(*subject_id))
                        .await?
                        .state
                        .0
                        .filter(|u| u.status != UserStatus::Deleted)
                        .map(|u| u.tenant_id),
                    SubjectType::Group => events::load::<Group>(tx, &group_stream(*subject_id))
                        .await?
                        .state
                        .0
                        .filter(|g| !g.deleted)
                        .map(|g| g.tenant_id),
                    SubjectType::ServiceAccount => {
                        events::load::<ServiceAccount>(tx, &service_account_stream(*subject_id))
                            .await?
                            .state
                            .0
                            .filter(|s| !s.deleted)
                            .map(|s| s.tenant_id)
                    }
                };
                let workspace = match workspace_id {
                    None => None,
                    Some(id) => {
                        let w = events::load::<Workspace>(tx, &workspace_stream(*id)).await?;
                        let live = w
                            .state
                            .0
                            .is_some_and(|w| w.tenant_id == self.tenant_id && !w.deleted);
                        Some((*id, live))
                    }
                };
                AssignmentAction::Create {
                    assignment_id: self.assignment_id,
                    role_id: *role_id,
                    role,
                    subject_type: *subject_type,
                    subject_id: *subject_id,
                    subject_tenant,
                    workspace,
                }
            }
        };
        Ok(vec![AssignmentCommand {
            tenant_id: self.tenant_id,
            tenant_status,
            authority: self.authority.clone(),
            action,
        }])
    }

    fn claims(&self, _: &Assignment, events: &[AssignmentEvent]) -> Vec<ClaimChange> {
        let t = self.tenant_id;
        events
            .iter()
            .map(|e| match e {
                AssignmentEvent::Created(c) => {
                    let (scope, value) = assignment_claim(
                        t,
                        c.role_id,
                        c.subject_type,
                        c.subject_id,
                        c.workspace_id,
                    );
                    ClaimChange::Claim { scope, value }
                }
                AssignmentEvent::Deleted(d) => {
                    let (scope, value) = assignment_claim(
                        t,
                        d.role_id,
                        d.subject_type,
                        d.subject_id,
                        d.workspace_id,
                    );
                    ClaimChange::Release { scope, value }
                }
            })
            .collect()
    }
}
