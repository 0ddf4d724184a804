//! `charter`: the service binary. Parses the command line, loads configuration, dispatches.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use charter::auth::bootstrap;
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
    /// Administration.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Signing keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Rebuild read models from position 0 into a shadow schema and compare them with the
    /// live ones, table by table. Exits 0 only when they are identical (or, with --swap, when
    /// the shadow was promoted). Never writes to the outbox; safe while the service runs.
    Replay(ReplayArgs),
    /// The auditors' tools.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the tamper-evident hash chain over every sealed event. Exits 1 and names the
    /// first broken position and the kind of break (changed, missing or inserted row).
    Verify,
    /// Write the log as NDJSON (one event a line, in the global order, secrets redacted),
    /// streaming in constant memory. Filters as GET /v1/audit/events.
    Export(ExportArgs),
}

#[derive(clap::Args)]
struct ExportArgs {
    #[arg(long)]
    tenant_id: Option<uuid::Uuid>,
    #[arg(long)]
    stream_id: Option<String>,
    #[arg(long)]
    stream_type: Option<String>,
    #[arg(long)]
    event_type: Option<String>,
    #[arg(long)]
    actor: Option<String>,
    #[arg(long)]
    correlation_id: Option<uuid::Uuid>,
    /// Inclusive lower bound of recorded_at (RFC 3339).
    #[arg(long)]
    from: Option<chrono::DateTime<chrono::Utc>>,
    /// Exclusive upper bound of recorded_at (RFC 3339).
    #[arg(long)]
    to: Option<chrono::DateTime<chrono::Utc>>,
    /// Write here instead of standard output.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(clap::Args)]
struct ReplayArgs {
    /// Rebuild only this projection (repeatable); all of them by default.
    #[arg(long = "projection", value_name = "NAME")]
    projections: Vec<String>,
    /// Promote the shadow: replace the live rows with the rebuilt ones in one transaction
    /// (for a fixed or new projection version). The differences replaced are printed.
    #[arg(long)]
    swap: bool,
    /// Keep the shadow schema afterwards, for inspection.
    #[arg(long)]
    keep: bool,
    /// Events per read and per shadow transaction.
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(i64).range(1..=100_000))]
    batch_size: i64,
    /// How long to wait for the live projections to reach the replayed head before comparing.
    #[arg(long, default_value_t = 60)]
    wait_seconds: u64,
    /// Print the report as JSON on standard output.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create (idempotently) the root tenant and its first administrator, who holds
    /// `tenant_admin` there and a platform-wide `iam.*` grant.
    Bootstrap {
        /// Slug of the root tenant.
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        username: String,
        /// Defaults to <username>@<tenant>.invalid.
        #[arg(long)]
        email: Option<String>,
        /// Read the password from the first line of standard input.
        #[arg(long, required = true)]
        password_stdin: bool,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Activate a new signing key; the previous one verifies until its tokens expire.
    Rotate,
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
        Command::Admin {
            command:
                AdminCommand::Bootstrap {
                    tenant,
                    username,
                    email,
                    password_stdin: _,
                },
        } => admin_bootstrap(config, tenant, username, email).await,
        Command::Keys {
            command: KeysCommand::Rotate,
        } => keys_rotate(config).await,
        Command::Replay(args) => match replay(config, args).await {
            Ok(true) => Ok(()),
            Ok(false) => return ExitCode::FAILURE,
            Err(e) => Err(e),
        },
        Command::Audit {
            command: AuditCommand::Export(args),
        } => audit_export(config, args).await,
        Command::Audit {
            command: AuditCommand::Verify,
        } => match audit_verify(config).await {
            Ok(true) => Ok(()),
            Ok(false) => return ExitCode::FAILURE,
            Err(e) => Err(e),
        },
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

/// A writer on the configured database, after migrations (for one-shot commands).
async fn writer(config: &Config) -> Result<charter::command::Writer, String> {
    db::migrate(&config.database)
        .await
        .map_err(|e| e.to_string())?;
    let pool = db::pool(&config.database).map_err(|e| e.to_string())?;
    let (appended, _) = charter_log::listener::Signal::local();
    Ok(charter::command::Writer { pool, appended })
}

async fn admin_bootstrap(
    config: Config,
    tenant: String,
    username: String,
    email: Option<String>,
) -> Result<(), String> {
    let mut password = String::new();
    std::io::stdin()
        .read_line(&mut password)
        .map_err(|e| format!("reading the password from stdin: {e}"))?;
    let password = password.trim_end_matches(['\r', '\n']).to_owned();
    let writer = writer(&config).await?;
    let request = bootstrap::Bootstrap {
        email: email.unwrap_or_else(|| format!("{username}@{tenant}.invalid")),
        tenant_slug: tenant,
        username,
        password,
    };
    let done = bootstrap::bootstrap(&writer, config.auth.pbkdf2_iterations, &request)
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "tenant {} ({}), administrator {} ({}): ready",
        request.tenant_slug, done.tenant_id, request.username, done.user_id
    );
    Ok(())
}

async fn keys_rotate(config: Config) -> Result<(), String> {
    let master = charter::startup::master_key(&config).map_err(|e| e.to_string())?;
    let writer = writer(&config).await?;
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

/// Replays into a shadow schema and prints the comparison; `Ok(false)` when the shadow
/// differs from live (and was not promoted).
async fn replay(config: Config, args: ReplayArgs) -> Result<bool, String> {
    use charter_projections::replay::{self, Replay};
    use std::io::IsTerminal;
    let projections = replay::select(&args.projections).map_err(|e| e.to_string())?;
    let pool =
        db::owner_pool(&config.database, projections.len() + 3).map_err(|e| e.to_string())?;
    let run = Replay::new(pool, projections, args.batch_size);
    eprintln!("charter: replaying into schema {}", run.schema());
    // A bar with events/s and an ETA on a terminal; a log line every 5 s otherwise.
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} events  {per_sec}  ETA {eta}  {elapsed}",
            )
            .expect("a valid template"),
        );
        bar
    });
    let mut last_line = std::time::Instant::now();
    let progress = |p: replay::Progress| match &bar {
        Some(bar) => {
            bar.set_length(p.total);
            bar.set_position(p.applied);
        }
        None if last_line.elapsed() >= std::time::Duration::from_secs(5) => {
            last_line = std::time::Instant::now();
            tracing::info!(applied = p.applied, total = p.total, "replaying");
            eprintln!("charter: replayed {}/{} events", p.applied, p.total);
        }
        None => {}
    };
    let wait = std::time::Duration::from_secs(args.wait_seconds);
    let report = run.run(args.swap, args.keep, wait, progress).await;
    if let Some(bar) = bar {
        bar.finish();
    }
    let report = report.map_err(|e| e.to_string())?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?
        );
    } else {
        for t in &report.tables {
            let verdict = if t.identical() {
                "identical"
            } else {
                "DIFFERS"
            };
            println!(
                "{:<16} live {:>9} rows  shadow {:>9} rows  checksum {:>22} / {:<22} {verdict}",
                t.table, t.live_rows, t.shadow_rows, t.live_checksum, t.shadow_checksum
            );
            for row in &t.live_only {
                println!("    live only:   {row}");
            }
            for row in &t.shadow_only {
                println!("    shadow only: {row}");
            }
        }
    }
    let mut finished = report.projection_seconds.clone();
    finished.sort_by(|a, b| b.1.total_cmp(&a.1));
    eprintln!(
        "charter: rebuild finished per projection (s): {}",
        finished
            .iter()
            .map(|(name, s)| format!("{name} {s:.1}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let identical = report.identical();
    eprintln!(
        "charter: replayed {} events in {:.1} s ({:.0} events/s) up to {}; {}{}",
        report.events,
        report.rebuild_seconds,
        report.events_per_second,
        report.target,
        if identical {
            "shadow and live are identical"
        } else {
            "shadow and live DIFFER"
        },
        if report.promoted {
            "; the shadow was promoted to live"
        } else {
            ""
        }
    );
    Ok(identical || report.promoted)
}

/// Prints the verification as JSON; `Ok(false)` when the chain is broken.
async fn audit_verify(config: Config) -> Result<bool, String> {
    let pool = db::pool(&config.database).map_err(|e| e.to_string())?;
    let client = pool.get().await.map_err(|e| e.to_string())?;
    let report = charter_projections::audit_chain::verify(&client, 10_000, |n| {
        tracing::info!(verified = n, "verifying the audit chain")
    })
    .await
    .map_err(|e| e.to_string())?;
    println!(
        "{}",
        serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?
    );
    match &report.first_break {
        None => Ok(true),
        Some(b) => {
            eprintln!(
                "charter: the audit chain is broken at position {}: {:?} row",
                b.position, b.kind
            );
            Ok(false)
        }
    }
}

async fn audit_export(config: Config, args: ExportArgs) -> Result<(), String> {
    use charter::store::audit::{export, AuditFilter};
    use std::io::IsTerminal;
    let pool = db::pool(&config.database).map_err(|e| e.to_string())?;
    let client = pool.get().await.map_err(|e| e.to_string())?;
    let filter = AuditFilter {
        tenants: args.tenant_id.map(|t| vec![t]),
        stream_id: args.stream_id,
        stream_type: args.stream_type,
        event_type: args.event_type,
        actor: args.actor,
        correlation_id: args.correlation_id,
        from: args.from,
        to: args.to,
    };
    // A live counter with the rate on a terminal; plain log lines otherwise.
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {pos} events  {per_sec}  {elapsed}")
                .expect("a valid template"),
        );
        bar
    });
    let progress = |n: u64| match &bar {
        Some(bar) => bar.set_position(n),
        None if n > 0 && n % 100_000 < 5_000 => tracing::info!(exported = n, "exporting"),
        None => {}
    };
    let written = match &args.out {
        Some(path) => {
            let file =
                std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
            export(
                &client,
                &filter,
                &mut std::io::BufWriter::new(file),
                progress,
            )
            .await
        }
        None => {
            let stdout = std::io::stdout();
            export(
                &client,
                &filter,
                &mut std::io::BufWriter::new(stdout.lock()),
                progress,
            )
            .await
        }
    }
    .map_err(|e| e.to_string())?;
    if let Some(bar) = bar {
        bar.finish();
    }
    eprintln!("charter: exported {written} event(s)");
    Ok(())
}
