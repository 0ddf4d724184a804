//! `charter keys rotate`: activates a new signing key.

use charter::config::Config;
use clap::Subcommand;

/// The subcommands of `charter keys`.
#[derive(Subcommand)]
pub enum KeysCommand {
    /// Activate a new signing key; the previous one verifies until its tokens expire.
    Rotate,
}

/// Makes sure a key exists, rotates to a new one and prints its id.
pub async fn rotate(config: Config) -> Result<(), String> {
    let master = charter::startup::master_key(&config).map_err(|e| e.to_string())?;
    let writer = super::writer(&config).await?;
    let ttl = chrono::Duration::seconds(config.auth.access_token_ttl_s as i64);
    charter::command::keyring::ensure_key(&writer, &master)
        .await
        .map_err(|e| e.to_string())?;
    charter::command::keyring::rotate_key(&writer, &master, ttl)
        .await
        .map_err(|e| e.to_string())?;
    let client = writer.pool.get().await.map_err(|e| e.to_string())?;
    let keys = charter::token::KeyStore::load(&client, master)
        .await
        .map_err(|e| e.to_string())?;
    println!("active signing key: {}", keys.current().signing_kid);
    Ok(())
}
