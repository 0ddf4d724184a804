//! Session commands: refresh-token rotation and logout. A refresh reads the user's current
//! status and account version from the write side, so a logout-all or a disabled user stops
//! refreshes at once (no projection lag).

use charter_events::streams::{session_stream, user_stream};
use deadpool_postgres::Transaction;
use uuid::Uuid;

use super::{CommandError, CommandHandler};
use crate::domain::session::{Holder, Session, SessionCommand};
use crate::domain::user::{User, UserStatus};
use crate::store::events;

pub struct RefreshHandler {
    pub session_id: Uuid,
    pub presented_hash: String,
    pub new_hash: String,
    pub now: chrono::DateTime<chrono::Utc>,
}

impl CommandHandler for RefreshHandler {
    type Aggregate = Session;

    fn stream_id(&self) -> String {
        session_stream(self.session_id)
    }

    async fn prepare(&self, tx: &Transaction<'_>) -> Result<Vec<SessionCommand>, CommandError> {
        let session = events::load::<Session>(tx, &self.stream_id()).await?.state;
        let holder = match session.0 {
            None => Holder {
                active: false,
                account_version: i64::MAX,
            },
            Some(s) => {
                let user = events::load::<User>(tx, &user_stream(s.user_id))
                    .await?
                    .state;
                match user.0 {
                    Some(u) => Holder {
                        active: u.status == UserStatus::Active,
                        account_version: u.account_version,
                    },
                    None => Holder {
                        active: false,
                        account_version: i64::MAX,
                    },
                }
            }
        };
        Ok(vec![SessionCommand::Refresh {
            presented_hash: self.presented_hash.clone(),
            new_hash: self.new_hash.clone(),
            now: self.now,
            holder,
        }])
    }
}

pub struct EndSessionHandler {
    pub session_id: Uuid,
    pub user_id: Uuid,
}

impl CommandHandler for EndSessionHandler {
    type Aggregate = Session;

    fn stream_id(&self) -> String {
        session_stream(self.session_id)
    }

    async fn prepare(&self, _tx: &Transaction<'_>) -> Result<Vec<SessionCommand>, CommandError> {
        Ok(vec![SessionCommand::End {
            user_id: self.user_id,
        }])
    }
}
