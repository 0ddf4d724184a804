//! User commands. They hold the tenant's lock shared, and claim usernames and emails
//! (unique per tenant, ignoring case) in the command's transaction.

use charter_events::streams::{email_scope, user_stream, username_scope};
use charter_events::user::UserEvent;
use deadpool_postgres::Transaction;
use uuid::Uuid;

use super::context::{permissions_of, status_for_update};
use super::{CommandError, CommandHandler};
use crate::domain::delegation::Authority;
use crate::domain::user::{User, UserAction, UserCommand};
use crate::store::claims::ClaimChange;

pub struct UserHandler {
    pub tenant_id: Uuid,
    pub user_id: Uuid,
    pub action: UserAction,
}

impl CommandHandler for UserHandler {
    type Aggregate = User;

    fn stream_id(&self) -> String {
        user_stream(self.user_id)
    }

    async fn prepare(&self, tx: &Transaction<'_>) -> Result<Vec<UserCommand>, CommandError> {
        Ok(vec![UserCommand {
            tenant_id: self.tenant_id,
            tenant_status: status_for_update(tx, self.tenant_id).await?,
            action: self.action.clone(),
        }])
    }

    fn claims(&self, before: &User, events: &[UserEvent]) -> Vec<ClaimChange> {
        user_claims(self.tenant_id, before, events)
    }
}

/// An administrator's reset of a user's second factor. What the user holds is read in the
/// command's transaction: the caller must hold all of it.
pub struct ResetMfaHandler {
    pub tenant_id: Uuid,
    pub user_id: Uuid,
    pub authority: Authority,
}

impl CommandHandler for ResetMfaHandler {
    type Aggregate = User;

    fn stream_id(&self) -> String {
        user_stream(self.user_id)
    }

    async fn prepare(&self, tx: &Transaction<'_>) -> Result<Vec<UserCommand>, CommandError> {
        let tenant_status = status_for_update(tx, self.tenant_id).await?;
        let holds = permissions_of(
            tx,
            self.tenant_id,
            charter_events::assignment::SubjectType::User,
            self.user_id,
        )
        .await?;
        Ok(vec![UserCommand {
            tenant_id: self.tenant_id,
            tenant_status,
            action: UserAction::ResetMfa {
                authority: self.authority.clone(),
                holds,
            },
        }])
    }
}

/// Usernames and emails, unique per tenant ignoring case.
fn user_claims(tenant_id: Uuid, before: &User, events: &[UserEvent]) -> Vec<ClaimChange> {
    let username = username_scope(tenant_id);
    let email = email_scope(tenant_id);
    let claim = |scope: &str, value: &str| ClaimChange::Claim {
        scope: scope.to_owned(),
        value: value.to_owned(),
    };
    let release = |scope: &str, value: &str| ClaimChange::Release {
        scope: scope.to_owned(),
        value: value.to_owned(),
    };
    let mut current = before
        .0
        .as_ref()
        .map(|u| (u.username.clone(), u.email.clone()));
    let mut changes = Vec::new();
    for event in events {
        match event {
            UserEvent::Created(c) => {
                changes.push(claim(&username, &c.username));
                changes.push(claim(&email, &c.email));
                current = Some((c.username.clone(), c.email.clone()));
            }
            UserEvent::EmailChanged(c) => {
                if let Some((_, old)) = &current {
                    changes.push(release(&email, old));
                }
                changes.push(claim(&email, &c.email));
                if let Some((_, old)) = current.as_mut() {
                    *old = c.email.clone();
                }
            }
            UserEvent::Deleted(_) => {
                if let Some((name, mail)) = current.take() {
                    changes.push(release(&username, &name));
                    changes.push(release(&email, &mail));
                }
            }
            _ => {}
        }
    }
    changes
}
