//! `charter`: the service binary. Parses the command line, loads configuration, dispatches.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use charter::config::Config;
use charter::startup::Application;
use charter::{db, telemetry};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "charter",
    version,
    about = "Event-sourced identity and access management"
)]
struct Cli {
    /// YAML configuration file; CHARTER_* environment variables override it.
    #[arg(long, global = true, env = "CHARTER_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Apply migrations, then serve the API, the projectors and the outbox relay.
    Serve,
    /// Apply pending migrations and exit.
    Migrate,
    /// Print the effective configuration (secrets redacted) and exit.
    Config,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("charter: invalid configuration: {e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init_tracing(&config.log);
    let result = match cli.command {
        Command::Serve => serve(config).await,
        Command::Migrate => db::migrate(&config.database)
            .await
            .map(|applied| println!("applied {} migration(s): {applied:?}", applied.len()))
            .map_err(|e| e.to_string()),
        Command::Config => serde_yaml_ng::to_string(&config)
            .map(|yaml| print!("{yaml}"))
            .map_err(|e| e.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "charter failed");
            eprintln!("charter: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> Result<(), String> {
    let app = Application::build(config)
        .await
        .map_err(|e| e.to_string())?;
    app.run_until_stopped().await.map_err(|e| e.to_string())
}
