//! Events of the `token` aggregate: one stream per revoked access token (`token-<jti>`).

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// An access token was revoked before it expired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRevoked {
    pub jti: Uuid,
    pub tenant_id: Uuid,
    /// The token's subject (a user or a service account).
    pub subject: Uuid,
    /// The token's own expiry: the revocation need not be remembered after it.
    pub expires_at: DateTime<Utc>,
}

crate::event_family! {
    /// Every event of the `token` aggregate.
    pub enum TokenEvent for "token" {
        Revoked(TokenRevoked) = "token.revoked" v 1,
    }
}

impl crate::Scoped for TokenEvent {
    fn tenant_id(&self) -> Uuid {
        match self {
            Self::Revoked(e) => e.tenant_id,
        }
    }
}
