//! `charter`: the service binary. Parses the command line, loads configuration, initialises
//! tracing and dispatches to the subcommand (one module each under `cli/`).
#![forbid(unsafe_code)]

mod cli;

use std::process::ExitCode;

use charter::config::Config;
use charter::telemetry;
use clap::Parser;

use cli::admin::AdminCommand;
use cli::audit::AuditCommand;
use cli::keys::KeysCommand;
use cli::{Cli, Command};

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
    // `Ok(false)`: a verdict the subcommand has already reported (exit 1, no error line).
    let result = match cli.command {
        Command::Serve => cli::serve::run(config).await.map(|()| true),
        Command::Migrate => cli::migrate::run(config).await.map(|()| true),
        Command::Config => cli::config::run(&config).map(|()| true),
        Command::Admin {
            command: AdminCommand::Bootstrap(args),
        } => cli::admin::bootstrap(config, args).await.map(|()| true),
        Command::Keys {
            command: KeysCommand::Rotate,
        } => cli::keys::rotate(config).await.map(|()| true),
        Command::Replay(args) => cli::replay::run(config, args).await,
        Command::Audit {
            command: AuditCommand::Export(args),
        } => cli::audit::export(config, args).await.map(|()| true),
        Command::Audit {
            command: AuditCommand::Verify,
        } => cli::audit::verify(config).await,
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            tracing::error!(error = %e, "charter failed");
            eprintln!("charter: {e}");
            ExitCode::FAILURE
        }
    }
}
