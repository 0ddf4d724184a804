//! Assignment commands. Creating one reads the role, the subject (user, group or service
//! account) and the workspace from the write side; the same role for the same subject in the
//! same scope is claimed once. The claim is keyed by subject, so it doubles as the write
//! side's index of a subject's roles (`command::context::permissions_of`).

use charter_events::assignment::{AssignmentEvent, SubjectType};
use charter_events::streams::{
    assignment_claim, assignment_stream, group_stream, role_stream, service_account_stream,
    user_stream, workspace_stream,
};
use deadpool_postgres::Transaction;
use uuid::Uuid;

use super::context::{status_for_update, workspace_is_live};
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
                    Some(id) => Some((*id, workspace_is_live(tx, self.tenant_id, *id).await?)),
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
