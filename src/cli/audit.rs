//! `charter audit verify` and `charter audit export`: the auditors' tools.

use std::io::IsTerminal;
use std::path::PathBuf;

use charter::config::Config;
use charter::store::audit::AuditFilter;
use clap::Subcommand;

/// The subcommands of `charter audit`.
#[derive(Subcommand)]
pub enum AuditCommand {
    /// Check the tamper-evident hash chain over every sealed event. Exits 1 and names the
    /// first broken position and the kind of break (changed, missing or inserted row).
    Verify,
    /// Write the log as NDJSON (one event a line, in the global order, secrets redacted),
    /// streaming in constant memory. Filters as GET /v1/audit/events.
    Export(ExportArgs),
}

// The arguments of `charter audit export` (no doc comment: it would replace the help the
// subcommand's own comment gives).
#[derive(clap::Args)]
pub struct ExportArgs {
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

/// Prints the verification as JSON; `Ok(false)` when the chain is broken.
pub async fn verify(config: Config) -> Result<bool, String> {
    let client = super::service_client(&config).await?;
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

/// Streams the events `args` selects as NDJSON to `--out` or standard output.
pub async fn export(config: Config, args: ExportArgs) -> Result<(), String> {
    let client = super::service_client(&config).await?;
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
            charter::store::audit::export(
                &client,
                &filter,
                &mut std::io::BufWriter::new(file),
                progress,
            )
            .await
        }
        None => {
            let stdout = std::io::stdout();
            charter::store::audit::export(
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
