//! `charter migrate`: applies the pending migrations and exits.

use charter::config::Config;
use charter::db;

/// Applies the embedded migrations not applied yet and prints which.
pub async fn run(config: Config) -> Result<(), String> {
    let applied = db::migrate(&config.database)
        .await
        .map_err(|e| e.to_string())?;
    println!("applied {} migration(s): {applied:?}", applied.len());
    Ok(())
}
