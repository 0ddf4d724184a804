//! The `keyring` aggregate: the platform's ES256 signing keys. A rotation activates a new key
//! and keeps the previous one published until every token it signed has expired.

use charter_events::keyring::{KeyringEvent, SigningKeyActivated, SigningKeyRotated};
use chrono::{DateTime, Duration, Utc};

use super::{Aggregate, Rejection, RejectionKind};

/// A public signing key as the JWKS publishes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub kid: String,
    pub x: String,
    pub y: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveKey {
    pub public: PublicKey,
    pub sealed_private_key: String,
    pub activated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Keyring {
    pub active: Option<ActiveKey>,
    /// Retired keys, each with the moment its last token expires.
    pub retired: Vec<(PublicKey, DateTime<Utc>)>,
}

/// A freshly generated key, sealed by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewKey {
    pub public: PublicKey,
    pub sealed_private_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyringCommand {
    /// Activates `key` unless a key is already active (first start of any instance).
    Ensure { key: NewKey, now: DateTime<Utc> },
    /// Activates `key`; the active one stays published for `token_ttl`.
    Rotate {
        key: NewKey,
        now: DateTime<Utc>,
        token_ttl: Duration,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyringError {
    #[error("key id {0} is already in use")]
    DuplicateKid(String),
}

impl From<KeyringError> for Rejection {
    fn from(e: KeyringError) -> Self {
        Rejection::new(RejectionKind::Conflict, "duplicate-key", e)
    }
}

impl Keyring {
    /// The public keys a verifier accepts at `now`: the active one, and the previous one
    /// until its tokens have expired.
    pub fn verification_keys(&self, now: DateTime<Utc>) -> Vec<PublicKey> {
        let mut keys: Vec<PublicKey> = self.active.iter().map(|a| a.public.clone()).collect();
        keys.extend(
            self.retired
                .iter()
                .filter(|(_, until)| now < *until)
                .map(|(key, _)| key.clone()),
        );
        keys
    }

    fn activate(
        &self,
        key: &NewKey,
        now: DateTime<Utc>,
        token_ttl: Duration,
    ) -> Result<Vec<KeyringEvent>, KeyringError> {
        let known = self
            .active
            .iter()
            .map(|a| &a.public.kid)
            .chain(self.retired.iter().map(|(p, _)| &p.kid));
        for kid in known {
            if *kid == key.public.kid {
                return Err(KeyringError::DuplicateKid(kid.clone()));
            }
        }
        let previous_kid = self.active.as_ref().map(|a| a.public.kid.clone());
        Ok(vec![
            SigningKeyActivated {
                kid: key.public.kid.clone(),
                x: key.public.x.clone(),
                y: key.public.y.clone(),
                sealed_private_key: key.sealed_private_key.clone(),
                activated_at: now,
                previous_kid: previous_kid.clone(),
                previous_valid_until: previous_kid.as_ref().map(|_| now + token_ttl),
            }
            .into(),
            SigningKeyRotated {
                kid: key.public.kid.clone(),
                previous_kid,
            }
            .into(),
        ])
    }
}

impl Aggregate for Keyring {
    type Command = KeyringCommand;
    type Event = KeyringEvent;
    type Error = KeyringError;

    fn apply(mut self, event: &KeyringEvent) -> Self {
        if let KeyringEvent::Activated(e) = event {
            let old = self.active.take();
            if let (Some(old), Some(until)) = (old, e.previous_valid_until) {
                self.retired.push((old.public, until));
            }
            self.active = Some(ActiveKey {
                public: PublicKey {
                    kid: e.kid.clone(),
                    x: e.x.clone(),
                    y: e.y.clone(),
                },
                sealed_private_key: e.sealed_private_key.clone(),
                activated_at: e.activated_at,
            });
        }
        self
    }

    fn decide(&self, command: &KeyringCommand) -> Result<Vec<KeyringEvent>, KeyringError> {
        match command {
            KeyringCommand::Ensure { .. } if self.active.is_some() => Ok(vec![]),
            KeyringCommand::Ensure { key, now } => self.activate(key, *now, Duration::zero()),
            KeyringCommand::Rotate {
                key,
                now,
                token_ttl,
            } => self.activate(key, *now, *token_ttl),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testing::given;

    fn key(kid: &str) -> NewKey {
        NewKey {
            public: PublicKey {
                kid: kid.into(),
                x: "x".into(),
                y: "y".into(),
            },
            sealed_private_key: format!("sealed-{kid}"),
        }
    }

    fn t(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + seconds, 0).unwrap()
    }

    fn activated(kid: &str, at: i64, previous: Option<(&str, i64)>) -> Vec<KeyringEvent> {
        vec![
            SigningKeyActivated {
                kid: kid.into(),
                x: "x".into(),
                y: "y".into(),
                sealed_private_key: format!("sealed-{kid}"),
                activated_at: t(at),
                previous_kid: previous.map(|(k, _)| k.to_owned()),
                previous_valid_until: previous.map(|(_, until)| t(until)),
            }
            .into(),
            SigningKeyRotated {
                kid: kid.into(),
                previous_kid: previous.map(|(k, _)| k.to_owned()),
            }
            .into(),
        ]
    }

    #[test]
    fn the_first_start_creates_a_key_once() {
        given::<Keyring>([])
            .when(KeyringCommand::Ensure {
                key: key("k1"),
                now: t(0),
            })
            .then(activated("k1", 0, None));
        given::<Keyring>(activated("k1", 0, None))
            .when(KeyringCommand::Ensure {
                key: key("k2"),
                now: t(5),
            })
            .then([]);
    }

    #[test]
    fn rotation_keeps_the_previous_key_until_its_tokens_expire() {
        let state = given::<Keyring>(activated("k1", 0, None))
            .when(KeyringCommand::Rotate {
                key: key("k2"),
                now: t(100),
                token_ttl: Duration::seconds(900),
            })
            .then(activated("k2", 100, Some(("k1", 1000))));
        let kids = |now| -> Vec<String> {
            state
                .verification_keys(t(now))
                .into_iter()
                .map(|k| k.kid)
                .collect()
        };
        assert_eq!(kids(999), ["k2", "k1"]);
        assert_eq!(kids(1000), ["k2"]);
        given::<Keyring>(activated("k1", 0, None))
            .when(KeyringCommand::Rotate {
                key: key("k1"),
                now: t(1),
                token_ttl: Duration::seconds(900),
            })
            .then_error(KeyringError::DuplicateKid("k1".into()));
    }
}
