//! Events of the `session` aggregate: one login's refresh-token family. Every refresh rotates
//! the token; presenting a superseded one revokes the whole family (reuse detection).

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A session started. Internal: carries the hash of its first refresh token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionStarted {
    pub session_id: Uuid,
    pub tenant_id: Uuid,
    pub user_id: Uuid,
    /// The workspace the session's access tokens are scoped to, if any.
    pub workspace_id: Option<Uuid>,
    /// The user's `account_version` at login: a later logout-all ends the session.
    pub account_version: i64,
    /// SHA-256 (hex) of the refresh token.
    pub refresh_token_hash: String,
    pub expires_at: DateTime<Utc>,
}

/// The refresh token was rotated. Internal: carries the new token's hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionRefreshed {
    pub session_id: Uuid,
    pub tenant_id: Uuid,
    pub generation: u32,
    pub refresh_token_hash: String,
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SessionEndReason {
    Logout,
    /// A superseded refresh token was presented: the family is presumed stolen.
    RefreshTokenReused,
}

/// The session ended; none of its refresh tokens works any more.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionEnded {
    pub session_id: Uuid,
    pub tenant_id: Uuid,
    pub user_id: Uuid,
    pub reason: SessionEndReason,
}

crate::event_family! {
    /// Every event of the `session` aggregate.
    pub enum SessionEvent for "session" {
        Started(SessionStarted) = "session.started" v 1 internal,
        Refreshed(SessionRefreshed) = "session.refreshed" v 1 internal,
        Ended(SessionEnded) = "session.ended" v 1,
    }
}

impl crate::Scoped for SessionEvent {
    fn tenant_id(&self) -> Uuid {
        match self {
            Self::Started(e) => e.tenant_id,
            Self::Refreshed(e) => e.tenant_id,
            Self::Ended(e) => e.tenant_id,
        }
    }
}
