//! Group commands: create, delete, and membership. Adding a member reads the user's stream to
//! check that it is a live user of the same tenant.

use charter_events::envelope::stream_id;
use charter_events::group::GroupEvent;
use charter_events::DomainEvent;
use deadpool_postgres::Transaction;
use uuid::Uuid;

use super::tenant::status_for_update;
use super::user::user_stream;
use super::{CommandError, CommandHandler};
use crate::domain::group::{Group, GroupAction, GroupCommand};
use crate::domain::user::User;
use crate::store::claims::ClaimChange;
use crate::store::events;

pub fn group_stream(id: Uuid) -> String {
    stream_id(GroupEvent::STREAM_TYPE, id)
}

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
            action,
        }])
    }

    fn claims(&self, before: &Group, events: &[GroupEvent]) -> Vec<ClaimChange> {
        let scope = format!("group.name:{}", self.tenant_id);
        events
            .iter()
            .filter_map(|e| match e {
                GroupEvent::Created(c) => Some(ClaimChange::Claim {
                    scope: scope.clone(),
                    value: c.name.clone(),
                }),
                GroupEvent::Deleted(_) => before.0.as_ref().map(|g| ClaimChange::Release {
                    scope: scope.clone(),
                    value: g.name.clone(),
                }),
                _ => None,
            })
            .collect()
    }
}
