//! Group commands: create, delete, and membership. Adding a member reads the user's stream to
//! check that it is a live user of the same tenant, and what the group's roles grant (a new
//! member receives all of it, so the caller must hold all of it).

use charter_events::assignment::SubjectType;
use charter_events::group::GroupEvent;
use charter_events::streams::{group_name_scope, group_stream, membership_claim, user_stream};
use deadpool_postgres::Transaction;
use uuid::Uuid;

use super::context::{permissions_of, status_for_update};
use super::{CommandError, CommandHandler};
use crate::domain::delegation::Authority;
use crate::domain::group::{Group, GroupAction, GroupCommand};
use crate::domain::user::User;
use crate::store::claims::ClaimChange;
use crate::store::events;

/// What the request asks; the user's state is filled in by `prepare`.
#[derive(Debug, Clone)]
pub enum GroupRequest {
    Create { name: String },
    AddMember { user_id: Uuid },
    RemoveMember { user_id: Uuid },
    Delete,
}

pub struct GroupHandler {
    pub tenant_id: Uuid,
    pub group_id: Uuid,
    /// The caller's; a new member receives everything the group's roles grant.
    pub authority: Authority,
    pub request: GroupRequest,
}

impl CommandHandler for GroupHandler {
    type Aggregate = Group;

    fn stream_id(&self) -> String {
        group_stream(self.group_id)
    }

    async fn prepare(&self, tx: &Transaction<'_>) -> Result<Vec<GroupCommand>, CommandError> {
        let tenant_status = status_for_update(tx, self.tenant_id).await?;
        let action = match &self.request {
            GroupRequest::Create { name } => GroupAction::Create {
                group_id: self.group_id,
                name: name.clone(),
            },
            GroupRequest::AddMember { user_id } => {
                let user = events::load::<User>(tx, &user_stream(*user_id)).await?;
                GroupAction::AddMember {
                    user_id: *user_id,
                    user: user.state.0.map(|u| (u.tenant_id, u.status)),
                    confers: permissions_of(tx, self.tenant_id, SubjectType::Group, self.group_id)
                        .await?,
                }
            }
            GroupRequest::RemoveMember { user_id } => {
                GroupAction::RemoveMember { user_id: *user_id }
            }
            GroupRequest::Delete => GroupAction::Delete,
        };
        Ok(vec![GroupCommand {
            tenant_id: self.tenant_id,
            tenant_status,
            authority: self.authority.clone(),
            action,
        }])
    }

    /// The group's name, and one claim per member.
    fn claims(&self, before: &Group, events: &[GroupEvent]) -> Vec<ClaimChange> {
        let (t, g) = (self.tenant_id, self.group_id);
        let name_scope = group_name_scope(t);
        let member = |user_id: Uuid| membership_claim(t, user_id, g);
        let mut changes = Vec::new();
        for e in events {
            match e {
                GroupEvent::Created(c) => changes.push(ClaimChange::Claim {
                    scope: name_scope.clone(),
                    value: c.name.clone(),
                }),
                GroupEvent::MemberAdded(m) => {
                    let (scope, value) = member(m.user_id);
                    changes.push(ClaimChange::Claim { scope, value });
                }
                GroupEvent::MemberRemoved(m) => {
                    let (scope, value) = member(m.user_id);
                    changes.push(ClaimChange::Release { scope, value });
                }
                GroupEvent::Deleted(_) => {
                    let Some(group) = &before.0 else { continue };
                    changes.push(ClaimChange::Release {
                        scope: name_scope.clone(),
                        value: group.name.clone(),
                    });
                    changes.extend(group.members.iter().map(|u| {
                        let (scope, value) = member(*u);
                        ClaimChange::Release { scope, value }
                    }));
                }
            }
        }
        changes
    }
}
