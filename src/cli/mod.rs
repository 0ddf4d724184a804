//! The command line: the `charter` parser and one module a subcommand, each with its
//! arguments and its body.

pub mod admin;
pub mod audit;
pub mod config;
pub mod keys;
pub mod migrate;
pub mod replay;
pub mod serve;

use std::path::PathBuf;

use charter::config::Config;
use charter::db;
use clap::{Parser, Subcommand};

// What `charter` parses: the global `--config` and the subcommand (no doc comment: it
// would become the long help).
#[derive(Parser)]
#[command(
    name = "charter",
    version,
    about = "Event-sourced identity and access management"
)]
pub struct Cli {
    /// YAML configuration file; CHARTER_* environment variables override it.
    #[arg(long, global = true, env = "CHARTER_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand)]
pub enum Command {
    /// Apply migrations, then serve the API, the projectors and the outbox relay.
    Serve,
    /// Apply pending migrations and exit.
    Migrate,
    /// Print the effective configuration (secrets redacted) and exit.
    Config,
    /// Administration.
    Admin {
        #[command(subcommand)]
        command: admin::AdminCommand,
    },
    /// Signing keys.
    Keys {
        #[command(subcommand)]
        command: keys::KeysCommand,
    },
    /// Rebuild read models from position 0 into a shadow schema and compare them with the
    /// live ones, table by table. Exits 0 only when they are identical (or, with --swap, when
    /// the shadow was promoted). Never writes to the outbox; safe while the service runs.
    Replay(replay::ReplayArgs),
    /// The auditors' tools.
    Audit {
        #[command(subcommand)]
        command: audit::AuditCommand,
    },
}

/// A writer on the configured database, after migrations (for one-shot commands).
pub async fn writer(config: &Config) -> Result<charter::command::Writer, String> {
    db::migrate(&config.database)
        .await
        .map_err(|e| e.to_string())?;
    let pool = db::pool(&config.database).map_err(|e| e.to_string())?;
    let (appended, _) = charter_log::listener::Signal::local();
    Ok(charter::command::Writer { pool, appended })
}

/// A connection as the service's role, for the read-only tools.
pub async fn service_client(config: &Config) -> Result<deadpool_postgres::Object, String> {
    let pool = db::pool(&config.database).map_err(|e| e.to_string())?;
    pool.get().await.map_err(|e| e.to_string())
}
