//! The `session` aggregate: one login's family of refresh tokens. Each refresh rotates the
//! token; presenting a superseded token ends the family (it has been stolen or replayed).

use charter_events::session::{
    SessionEndReason, SessionEnded, SessionEvent, SessionRefreshed, SessionStarted,
};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Aggregate, Rejection, RejectionKind};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionState {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub user_id: Uuid,
    pub workspace_id: Option<Uuid>,
    pub account_version: i64,
    pub current_hash: String,
    /// Digests of every superseded refresh token of the family.
    pub superseded: Vec<String>,
    pub generation: u32,
    pub expires_at: DateTime<Utc>,
    pub ended: Option<SessionEndReason>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Session(pub Option<SessionState>);

/// What the refreshing caller's user looks like now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holder {
    pub active: bool,
    pub account_version: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionCommand {
    Start(SessionStarted),
    Refresh {
        presented_hash: String,
        new_hash: String,
        now: DateTime<Utc>,
        holder: Holder,
    },
    /// Logout: by the session's own user (`user_id`).
    End {
        user_id: Uuid,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// Unknown, expired, ended, or not the current token. One error for all of them.
    #[error("the refresh token is invalid or expired")]
    Invalid,
    #[error("session already exists")]
    AlreadyExists,
}

impl From<SessionError> for Rejection {
    fn from(e: SessionError) -> Self {
        let (kind, code) = match &e {
            SessionError::Invalid => (RejectionKind::Invalid, "invalid-grant"),
            SessionError::AlreadyExists => (RejectionKind::Conflict, "already-exists"),
        };
        Rejection::new(kind, code, e)
    }
}

impl Aggregate for Session {
    type Command = SessionCommand;
    type Event = SessionEvent;
    type Error = SessionError;

    fn apply(self, event: &SessionEvent) -> Self {
        let Some(mut s) = self.0 else {
            return match event {
                SessionEvent::Started(e) => Session(Some(SessionState {
                    id: e.session_id,
                    tenant_id: e.tenant_id,
                    user_id: e.user_id,
                    workspace_id: e.workspace_id,
                    account_version: e.account_version,
                    current_hash: e.refresh_token_hash.clone(),
                    superseded: vec![],
                    generation: 0,
                    expires_at: e.expires_at,
                    ended: None,
                })),
                _ => Session(None),
            };
        };
        match event {
            SessionEvent::Started(_) => {}
            SessionEvent::Refreshed(e) => {
                let old = std::mem::replace(&mut s.current_hash, e.refresh_token_hash.clone());
                s.superseded.push(old);
                s.generation = e.generation;
            }
            SessionEvent::Ended(e) => s.ended = Some(e.reason),
        }
        Session(Some(s))
    }

    fn decide(&self, command: &SessionCommand) -> Result<Vec<SessionEvent>, SessionError> {
        let s = match (&self.0, command) {
            (None, SessionCommand::Start(started)) => return Ok(vec![started.clone().into()]),
            (Some(_), SessionCommand::Start(_)) => return Err(SessionError::AlreadyExists),
            (None, _) => return Err(SessionError::Invalid),
            (Some(s), _) => s,
        };
        let end = |reason| {
            vec![SessionEnded {
                session_id: s.id,
                tenant_id: s.tenant_id,
                user_id: s.user_id,
                reason,
            }
            .into()]
        };
        match command {
            SessionCommand::Start(_) => unreachable!("handled above"),
            SessionCommand::End { user_id } if *user_id != s.user_id => Err(SessionError::Invalid),
            SessionCommand::End { .. } if s.ended.is_some() => Ok(vec![]),
            SessionCommand::End { .. } => Ok(end(SessionEndReason::Logout)),
            SessionCommand::Refresh {
                presented_hash,
                new_hash,
                now,
                holder,
            } => {
                if s.ended.is_some() || *now >= s.expires_at {
                    return Err(SessionError::Invalid);
                }
                if s.superseded.iter().any(|h| h == presented_hash) {
                    return Ok(end(SessionEndReason::RefreshTokenReused));
                }
                // Digests, not secrets: comparing them leaks nothing useful about the token.
                let current = *presented_hash == s.current_hash;
                if !current || !holder.active || holder.account_version > s.account_version {
                    return Err(SessionError::Invalid);
                }
                Ok(vec![SessionRefreshed {
                    session_id: s.id,
                    tenant_id: s.tenant_id,
                    generation: s.generation + 1,
                    refresh_token_hash: new_hash.clone(),
                }
                .into()])
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testing::given;
    use chrono::Duration;

    const T: Uuid = Uuid::from_u128(1);
    const U: Uuid = Uuid::from_u128(2);
    const S: Uuid = Uuid::from_u128(3);

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).unwrap()
    }

    fn started() -> SessionEvent {
        SessionStarted {
            session_id: S,
            tenant_id: T,
            user_id: U,
            workspace_id: None,
            account_version: 1,
            refresh_token_hash: "h0".into(),
            expires_at: now() + Duration::days(1),
        }
        .into()
    }

    fn refreshed(generation: u32, hash: &str) -> SessionEvent {
        SessionRefreshed {
            session_id: S,
            tenant_id: T,
            generation,
            refresh_token_hash: hash.into(),
        }
        .into()
    }

    fn refresh(presented: &str, new: &str) -> SessionCommand {
        SessionCommand::Refresh {
            presented_hash: presented.into(),
            new_hash: new.into(),
            now: now(),
            holder: Holder {
                active: true,
                account_version: 1,
            },
        }
    }

    fn ended(reason: SessionEndReason) -> SessionEvent {
        SessionEnded {
            session_id: S,
            tenant_id: T,
            user_id: U,
            reason,
        }
        .into()
    }

    #[test]
    fn every_refresh_rotates_the_token() {
        given::<Session>([started()])
            .when(refresh("h0", "h1"))
            .then([refreshed(1, "h1")]);
        given::<Session>([started(), refreshed(1, "h1")])
            .when(refresh("h1", "h2"))
            .then([refreshed(2, "h2")]);
    }

    #[test]
    fn reusing_a_superseded_token_ends_the_family() {
        let state = given::<Session>([started(), refreshed(1, "h1")])
            .when(refresh("h0", "hx"))
            .then([ended(SessionEndReason::RefreshTokenReused)]);
        // ...and the legitimate holder's current token is dead too.
        given::<Session>([
            started(),
            refreshed(1, "h1"),
            ended(SessionEndReason::RefreshTokenReused),
        ])
        .when(refresh("h1", "h2"))
        .then_error(SessionError::Invalid);
        assert!(state.0.unwrap().ended.is_some());
    }

    #[test]
    fn unknown_expired_and_outdated_tokens_are_invalid() {
        given::<Session>([started()])
            .when(refresh("nope", "h1"))
            .then_error(SessionError::Invalid);
        given::<Session>([started()])
            .when(SessionCommand::Refresh {
                presented_hash: "h0".into(),
                new_hash: "h1".into(),
                now: now() + Duration::days(2),
                holder: Holder {
                    active: true,
                    account_version: 1,
                },
            })
            .then_error(SessionError::Invalid);
        given::<Session>([started()])
            .when(SessionCommand::Refresh {
                presented_hash: "h0".into(),
                new_hash: "h1".into(),
                now: now(),
                holder: Holder {
                    active: true,
                    account_version: 2,
                },
            })
            .then_error(SessionError::Invalid);
        given::<Session>([])
            .when(refresh("h0", "h1"))
            .then_error(SessionError::Invalid);
    }

    #[test]
    fn logout_ends_the_session_once_and_only_for_its_user() {
        given::<Session>([started()])
            .when(SessionCommand::End { user_id: U })
            .then([ended(SessionEndReason::Logout)]);
        given::<Session>([started(), ended(SessionEndReason::Logout)])
            .when(SessionCommand::End { user_id: U })
            .then([]);
        given::<Session>([started()])
            .when(SessionCommand::End {
                user_id: Uuid::from_u128(9),
            })
            .then_error(SessionError::Invalid);
    }
}
