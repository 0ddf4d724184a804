//! `seed-log`: a realistic, domain-valid history of N events written straight into the event
//! store with COPY (`charter_seed`), for the replay benchmark. Progress on stderr, one
//! summary line on stderr and one JSON line on stdout.

use std::time::Instant;

use clap::Args;
use serde_json::json;

/// Write N events of a realistic IAM history straight into the event store (COPY), fast.
///
/// The history is one the command side could have produced: every command passes the same
/// checks `decide` makes against the facts `prepare` would load (tenants active, names and
/// emails free in their scope, live users, groups, roles and workspaces of the same tenant,
/// no duplicate membership or assignment, the lockout policy, session state), stream
/// versions run 1, 2, 3… in the global (tx_id, position) order, and `unique_claims` and
/// `tenant_hierarchy` are kept as the commands would have kept them. Events are built from
/// the typed structs of charter-events, so every row validates against
/// `schemas/events/<type>.v<N>.json`.
///
/// Mix per 1,000,000 events (scaled to --events; small runs keep one of every kind):
///   tenants 40 (each with its 3 system roles, a first admin user and its assignment; the
///     first has two subsidiaries, ~1 in 8 others nest too), renames 8, moves 2, blocks 3
///     (unblocked later), deletions 1;
///   workspaces 320 (30 renamed, 15 deleted); custom roles 300 (250 grants, 80 revokes,
///     40 renames, 25 deletions); 57 registered permissions (Charter's own + 5 services);
///   users 100,000 (92% with a password), 8,000 email and 12,000 display-name changes,
///     4,000 disabled (1,200 re-enabled), 2,500 deleted;
///   groups 10,000 (150 deleted), memberships 200,000 (12,000 removed);
///   assignments 50,000 (70% to users, 30% to groups; half tenant-wide; 4,000 removed);
///   credentials: 165,000 logins (user.login_succeeded + session.started), 40,000 failed
///     logins (typos, brute-force bursts locking 600 accounts, disabled users, missing
///     second factor), 110,000 refresh-token rotations, 35,000 logouts, 6,000 MFA set-ups,
///     3,000 password changes, 2,000 logouts everywhere.
/// The history spans --days and ends now (after the newest event already in the log).
///
/// NO OUTBOX ROWS are written: the bench is about replay, and the relay would otherwise
/// publish the whole history to Kafka. Followers of the log are woken with NOTIFY after
/// each transaction. Seeded passwords and TOTP secrets are random: nobody can sign in as a
/// seeded user. Run it against a migrated database, with the service role or the owner.
#[derive(Args, Debug, Clone)]
#[command(verbatim_doc_comment)]
pub struct SeedLogArgs {
    /// The database (migrated). The service role suffices: INSERT on events, the claims.
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    /// Events to write (exactly; at least 500).
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// Same seed, same history shape (names, counts, order).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// How many days the history spans (ending now).
    #[arg(long, default_value_t = 365)]
    days: u32,
    /// Events per transaction (one COPY each, cut at a command boundary).
    #[arg(long, default_value_t = 50_000)]
    batch_events: u64,
    /// Also fold every generated command through the domain's decide() before writing it
    /// (slower; proves the history valid).
    #[arg(long)]
    check: bool,
}

pub async fn seed_log(a: SeedLogArgs) -> i32 {
    let pool = match crate::db::pool(&a.database_url, 2) {
        Ok(pool) => pool,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let options = charter_seed::Options {
        events: a.events,
        seed: a.seed,
        days: a.days,
        batch_events: a.batch_events,
        check: a.check,
    };
    eprintln!(
        "charter-loadgen: seed-log: {} events, seed {}, {} days, {} events per transaction{}",
        a.events,
        a.seed,
        a.days,
        a.batch_events,
        if a.check { ", domain check on" } else { "" }
    );
    let started = Instant::now();
    let progress = |written: u64| {
        let s = started.elapsed().as_secs_f64();
        eprintln!(
            "seed-log: {written}/{} events ({:.0}%), {s:.1} s, {:.0} events/s",
            a.events,
            written as f64 * 100.0 / a.events as f64,
            written as f64 / s.max(1e-9)
        );
    };
    let summary = match charter_seed::run(&pool, &options, progress).await {
        Ok(summary) => summary,
        Err(e) => {
            eprintln!("error: seed-log failed: {e}");
            return 1;
        }
    };
    let types: Vec<String> = (summary.per_type.iter())
        .map(|(t, n)| format!("{t}={n}"))
        .collect();
    eprintln!(
        "seed-log: wrote {} events ({} commands, {} transactions) in {:.1} s, {:.0} events/s; {}",
        summary.events,
        summary.commands,
        summary.transactions,
        summary.seconds,
        summary.events_per_second(),
        types.join(" ")
    );
    let out = json!({
        "scenario": "seed-log",
        "events": summary.events,
        "commands": summary.commands,
        "transactions": summary.transactions,
        "seconds": (summary.seconds * 1000.0).round() / 1000.0,
        "events_per_s": summary.events_per_second().round(),
        "per_type": summary.per_type,
        "expected_rows": summary.expected,
        "tenants": summary.tenant_ids.len(),
        "from": summary.first_recorded_at,
        "to": summary.last_recorded_at,
    });
    println!("{out}");
    0
}
