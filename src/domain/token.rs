//! The `token` aggregate: the revocation of one access token, in stream `token-<jti>`.
//! Revoking twice changes nothing.

use charter_events::token::{TokenEvent, TokenRevoked};

use super::{Aggregate, Rejection};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Token {
    pub revoked: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revoke(pub TokenRevoked);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {}

impl From<TokenError> for Rejection {
    fn from(e: TokenError) -> Self {
        match e {}
    }
}

impl Aggregate for Token {
    type Command = Revoke;
    type Event = TokenEvent;
    type Error = TokenError;

    fn apply(self, event: &TokenEvent) -> Self {
        match event {
            TokenEvent::Revoked(_) => Token { revoked: true },
        }
    }

    fn decide(&self, command: &Revoke) -> Result<Vec<TokenEvent>, TokenError> {
        if self.revoked {
            return Ok(vec![]);
        }
        Ok(vec![command.0.clone().into()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testing::given;
    use uuid::Uuid;

    #[test]
    fn revokes_once() {
        let revoked = TokenRevoked {
            jti: Uuid::from_u128(1),
            tenant_id: Uuid::from_u128(2),
            subject: Uuid::from_u128(3),
            expires_at: chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
        };
        given::<Token>([])
            .when(Revoke(revoked.clone()))
            .then([revoked.clone().into()]);
        given::<Token>([revoked.clone().into()])
            .when(Revoke(revoked))
            .then([]);
    }
}
