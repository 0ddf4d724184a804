//! Login: one command on the user's stream that records the attempt (and any lock), and, when
//! it succeeds, starts the session in the same transaction.

use charter_events::session::SessionStarted;
use charter_events::streams::{session_stream, user_stream};
use charter_events::user::{LoginFailure, UserEvent, UserLoginFailed};
use charter_events::{DomainEvent, Metadata};
use deadpool_postgres::Transaction;
use uuid::Uuid;

use super::context::status_for_update;
use super::{CommandError, CommandHandler};
use crate::domain::session::{Session, SessionCommand};
use crate::domain::user::{LoginAttempt, User, UserAction, UserCommand};
use crate::domain::Aggregate;
use crate::store::events::{self, Appended, NewEvent};

pub struct LoginHandler {
    pub tenant_id: Uuid,
    pub user_id: Uuid,
    pub attempt: LoginAttempt,
    pub workspace_id: Option<Uuid>,
    pub refresh_token_hash: String,
    pub refresh_ttl: chrono::Duration,
    /// The user's `account_version` as read before the attempt. A logout-all racing the
    /// login only makes the session's value older, and an older session cannot refresh.
    pub account_version: i64,
}

impl CommandHandler for LoginHandler {
    type Aggregate = User;

    fn stream_id(&self) -> String {
        user_stream(self.user_id)
    }

    async fn prepare(&self, tx: &Transaction<'_>) -> Result<Vec<UserCommand>, CommandError> {
        Ok(vec![UserCommand {
            tenant_id: self.tenant_id,
            tenant_status: status_for_update(tx, self.tenant_id).await?,
            action: UserAction::Login(self.attempt.clone()),
        }])
    }

    async fn after_append(
        &self,
        tx: &Transaction<'_>,
        decided: &[UserEvent],
        metadata: &Metadata,
    ) -> Result<Vec<Appended>, CommandError> {
        let Some(UserEvent::LoginSucceeded(ok)) = decided.first() else {
            return Ok(vec![]);
        };
        let started = SessionStarted {
            session_id: ok.session_id,
            tenant_id: self.tenant_id,
            user_id: self.user_id,
            workspace_id: self.workspace_id,
            account_version: self.account_version,
            refresh_token_hash: self.refresh_token_hash.clone(),
            expires_at: self.attempt.now + self.refresh_ttl,
        };
        let events = Session::default()
            .decide(&SessionCommand::Start(started))
            .map_err(|e| CommandError::Rejected(e.into()))?;
        let new: Vec<NewEvent> = events.iter().map(NewEvent::of).collect();
        let appended = events::append_new_stream(
            tx,
            "session",
            &session_stream(ok.session_id),
            &new,
            metadata,
        )
        .await?;
        Ok(vec![appended])
    }
}

/// What a failed login of a known user costs the database, paid by an attempt on an unknown
/// one, so that the two cannot be told apart by their timing: the same transaction shape (the
/// tenant's lock and stream, a user stream read, the append of a `user.login_failed` with its
/// outbox row) ending in a durable commit. The append runs in a savepoint that is rolled back:
/// its rows never become visible and never reach a reader, so a username spray cannot grow
/// the log, but their WAL is written and the commit waits for its flush, as the real
/// failure's does. (The position it draws from the sequence is a gap, like any aborted
/// append's; readers follow transaction ids, not gap-free positions.)
pub async fn decoy(
    writer: &super::Writer,
    tenant_id: Option<Uuid>,
    metadata: &Metadata,
) -> Result<(), CommandError> {
    let mut client = writer.pool.get().await?;
    let mut tx = client.transaction().await?;
    if let Some(tenant_id) = tenant_id {
        status_for_update(&tx, tenant_id).await?;
    }
    let stream_id = user_stream(Uuid::nil());
    events::load::<User>(&tx, &stream_id).await?;
    let failed = UserEvent::LoginFailed(UserLoginFailed {
        user_id: Uuid::nil(),
        tenant_id: tenant_id.unwrap_or_default(),
        reason: LoginFailure::BadPassword,
        consecutive_failures: 1,
    });
    let savepoint = tx.savepoint("decoy").await?;
    events::append(
        &savepoint,
        UserEvent::STREAM_TYPE,
        &stream_id,
        0,
        &[NewEvent::of(&failed)],
        metadata,
    )
    .await?;
    savepoint.rollback().await?;
    tx.commit().await?;
    Ok(())
}
