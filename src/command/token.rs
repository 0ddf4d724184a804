//! Token commands: revoking one access token by its `jti`.

use charter_events::streams::token_stream;
use charter_events::token::TokenRevoked;
use deadpool_postgres::Transaction;

use super::{CommandError, CommandHandler};
use crate::domain::token::{Revoke, Token};

pub struct RevokeTokenHandler(pub TokenRevoked);

impl RevokeTokenHandler {
    /// Revokes the token these claims came from.
    pub fn of(claims: &crate::token::Claims) -> Self {
        RevokeTokenHandler(TokenRevoked {
            jti: claims.jti,
            tenant_id: claims.tenant_id,
            subject: claims.sub,
            expires_at: chrono::DateTime::from_timestamp(claims.exp, 0).unwrap_or_default(),
        })
    }
}

impl CommandHandler for RevokeTokenHandler {
    type Aggregate = Token;

    fn stream_id(&self) -> String {
        token_stream(self.0.jti)
    }

    async fn prepare(&self, _tx: &Transaction<'_>) -> Result<Vec<Revoke>, CommandError> {
        Ok(vec![Revoke(self.0.clone())])
    }
}
