//! The relay scenario of ops/bench: outbox -> broker throughput on a backlog, commit -> broker
//! latency under an open-loop command rate, and their bare-rdkafka baselines.
//!
//! - `outbox-backlog`: outbox rows for the events of a (seeded) log, exactly as the command
//!   path writes them (`src/store/events.rs`, APPEND): one row per published event, in the
//!   event's own transaction id, in (tx_id, position) order; internal events get none.
//! - `relay-drain`: watches a topic's high-water marks (and the outbox) while a relay drains
//!   the backlog; events/s from the first message at the broker to the last.
//! - `raw-produce`: the baseline: a bare rdkafka producer with the relay's settings
//!   (`charter::relay::producer_config`) sends the same messages (built from the same log rows
//!   by the relay's code: same keys, headers and payloads), pipelined.
//! - `relay-latency`: POST workspaces at a fixed rate against the service while watching the
//!   broker's high-water mark of the run tenant's partition (see "high-water watcher"); per
//!   event, arrival at the broker minus the CloudEvent `time` (recorded_at: the command
//!   transaction's start, before its commit) and minus the time the client received the 201
//!   (after the commit).
//! - `raw-latency`: the baseline: a bare producer at the same rate, watched the same way;
//!   arrival minus send time.

mod backlog;
mod drain;
mod kafka;
mod messages;
mod produce;
mod raw_latency;
mod relay_latency;
mod watcher;

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

pub use backlog::{outbox_backlog, BacklogArgs};
pub use drain::{relay_drain, DrainArgs};
pub use produce::{raw_produce, RawProduceArgs};
pub use raw_latency::{raw_latency, RawLatencyArgs};
pub use relay_latency::{relay_latency, LatencyArgs};

/// Prints a subcommand's JSON result and returns its exit code: 0 when `ok` holds, 1 when it
/// does not or the run failed (the error goes to stderr).
fn report(name: &str, result: Result<Value, String>, ok: impl Fn(&Value) -> bool) -> i32 {
    match result {
        Ok(out) => {
            println!("{out}");
            i32::from(!ok(&out))
        }
        Err(e) => {
            eprintln!("error: {name}: {e}");
            1
        }
    }
}

/// Now, in µs since the Unix epoch.
fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}
