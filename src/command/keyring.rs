//! Keyring commands: make sure a signing key exists, rotate it.

use charter_events::streams::keyring_stream;
use deadpool_postgres::Transaction;

use super::{CommandError, CommandHandler};
use crate::crypto::MasterKey;
use crate::domain::keyring::{Keyring, KeyringCommand};

pub struct KeyringHandler(pub KeyringCommand);

impl CommandHandler for KeyringHandler {
    type Aggregate = Keyring;

    fn stream_id(&self) -> String {
        keyring_stream()
    }

    async fn prepare(&self, _tx: &Transaction<'_>) -> Result<Vec<KeyringCommand>, CommandError> {
        Ok(vec![self.0.clone()])
    }
}

/// Makes sure a signing key is active (the first start of the first instance creates it).
pub async fn ensure_key(
    writer: &super::Writer,
    master: &MasterKey,
) -> Result<(), KeyringCommandError> {
    let key = crate::token::keys::generate(master)?;
    let command = KeyringCommand::Ensure {
        key,
        now: chrono::Utc::now(),
    };
    run(writer, command).await
}

/// Activates a new signing key. The previous one verifies until its last token expires:
/// `token_ttl`, plus two keyring reloads during which other instances may still sign with it.
pub async fn rotate_key(
    writer: &super::Writer,
    master: &MasterKey,
    token_ttl: chrono::Duration,
) -> Result<(), KeyringCommandError> {
    let key = crate::token::keys::generate(master)?;
    let command = KeyringCommand::Rotate {
        key,
        now: chrono::Utc::now(),
        token_ttl: token_ttl
            + chrono::Duration::from_std(2 * crate::token::keys::RELOAD_INTERVAL)
                .expect("a small duration"),
    };
    run(writer, command).await
}

#[derive(Debug, thiserror::Error)]
pub enum KeyringCommandError {
    #[error(transparent)]
    Key(#[from] crate::token::keys::KeyError),
    #[error(transparent)]
    Command(#[from] CommandError),
}

async fn run(writer: &super::Writer, command: KeyringCommand) -> Result<(), KeyringCommandError> {
    let request = super::system_request("system:keys");
    super::run(writer, &KeyringHandler(command), &request).await?;
    Ok(())
}
