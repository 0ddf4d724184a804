//! `charter replay`: rebuilds the read models into a shadow schema and compares them with the
//! live ones (or promotes the shadow).

use std::io::IsTerminal;

use charter::config::Config;
use charter::db;
use charter_projections::replay::{self, Replay};

// The arguments of `charter replay` (no doc comment: it would replace the help the
// subcommand's own comment gives).
#[derive(clap::Args)]
pub struct ReplayArgs {
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

/// Replays into a shadow schema and prints the comparison; `Ok(false)` when the shadow
/// differs from live (and was not promoted).
pub async fn run(config: Config, args: ReplayArgs) -> Result<bool, String> {
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
