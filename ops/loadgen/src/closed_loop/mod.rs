//! The closed loop: each of `--clients` tasks sends one request, waits for the whole response,
//! and immediately sends the next (no think time). Requests completing during `--warmup` are
//! discarded; after `--duration` of measurement no new request is started, in-flight ones are
//! given `--timeout` to finish (not counted), then everything is torn down. Only 2xx responses
//! count as successes and go into the latency histogram; every non-2xx status and transport
//! error is counted and broken down by kind (status + problem `type`, or the error class).

mod report;
mod request;
mod scenarios;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::Value;

use report::{report, Run, Stats};
use request::{send, Outcome};
pub use scenarios::{ClientCredentialsArgs, EntitlementsArgs, GetArgs, Target, WorkspacesArgs};

/// The flags every closed-loop scenario takes.
#[derive(Args, Debug, Clone)]
pub struct Common {
    /// Base URL of the service (workspaces) or the full URL to GET (get).
    #[arg(long)]
    url: String,
    /// Concurrent closed-loop clients.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Measured duration (e.g. 20s, 500ms, 1m).
    #[arg(long, default_value = "20s", value_parser = crate::duration::parse)]
    duration: Duration,
    /// Warm-up before measuring (not counted).
    #[arg(long, default_value = "3s", value_parser = crate::duration::parse)]
    warmup: Duration,
    /// Per-request timeout (counted as an error).
    #[arg(long, default_value = "10s", value_parser = crate::duration::parse)]
    timeout: Duration,
    /// Tokio worker threads for the generator itself.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Scenario label in the output (default: the subcommand's name).
    #[arg(long)]
    label: Option<String>,
}

/// Builds the request for client `client_no`'s `seq`-th iteration.
type MakeRequest =
    Arc<dyn Fn(&reqwest::Client, usize, u64) -> reqwest::RequestBuilder + Send + Sync>;

/// What a scenario sends: its name in the output, the requests, and what it adds to the output.
struct Plan {
    name: &'static str,
    make: MakeRequest,
    extra: Value,
}

/// Runs a closed-loop scenario and prints its JSON line; returns the exit code.
pub fn run(target: Target) -> i32 {
    let common = target.common().clone();
    if common.clients == 0 || common.duration.is_zero() {
        eprintln!("error: --clients and --duration must be > 0");
        return 2;
    }
    crate::runtime::with_runtime(common.threads, move || async move {
        let client = crate::api::client(common.clients * 2, common.timeout);
        let plan = match target.plan(&client).await {
            Ok(plan) => plan,
            Err(e) => {
                eprintln!("error: {e}");
                return 1;
            }
        };
        eprintln!(
            "charter-loadgen: {}: {} clients, warmup {:?}, duration {:?}",
            plan.name, common.clients, common.warmup, common.duration
        );
        let run = drive(client, &common, plan.make).await;
        let label = common.label.clone().unwrap_or_else(|| plan.name.to_owned());
        let out = report(&label, &common, run, plan.extra);
        println!("{out}");
        0
    })
}

async fn drive(client: reqwest::Client, c: &Common, make: MakeRequest) -> Run {
    let start = Instant::now();
    let measure_from = start + c.warmup;
    let measure_to = measure_from + c.duration;
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::with_capacity(c.clients);
    for client_no in 0..c.clients {
        let client = client.clone();
        let make = make.clone();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut stats = Stats::new();
            let mut attempted = 0u64;
            let mut seq = 0u64;
            loop {
                let t0 = Instant::now();
                if t0 >= measure_to || stop.load(Ordering::Relaxed) {
                    break;
                }
                let outcome = send(make(&client, client_no, seq)).await;
                seq += 1;
                attempted += 1;
                let t1 = Instant::now();
                // Count what completed inside the measured window.
                if t1 >= measure_from && t1 <= measure_to {
                    match outcome {
                        Outcome::Ok => {
                            stats.ok += 1;
                            let us = (t1 - t0).as_micros().max(1) as u64;
                            stats.hist.saturating_record(us);
                        }
                        Outcome::Err { kind, sample } => stats.errors.record(kind, sample),
                    }
                } else if let Outcome::Err { kind, sample } = outcome {
                    // Errors outside the window still must not go unnoticed.
                    stats
                        .errors
                        .record(format!("outside_window:{kind}"), sample);
                }
            }
            (stats, attempted)
        }));
    }

    // Hard bound: the window, plus one timeout for in-flight requests, plus slack.
    let deadline = measure_to + c.timeout + Duration::from_secs(2);
    let mut total = Stats::new();
    let mut attempted_total = 0;
    let mut aborted = 0;
    for t in tasks {
        let now = Instant::now();
        let left = deadline.saturating_duration_since(now);
        let abort = t.abort_handle();
        match tokio::time::timeout(left, t).await {
            Ok(Ok((s, a))) => {
                total.merge(s);
                attempted_total += a;
            }
            Ok(Err(e)) => {
                total
                    .errors
                    .record("client_task_failed".into(), e.to_string());
            }
            Err(_) => {
                stop.store(true, Ordering::Relaxed);
                abort.abort();
                aborted += 1;
            }
        }
    }
    if aborted > 0 {
        total.errors.record(
            "client_task_aborted".into(),
            format!("{aborted} clients still busy at the deadline"),
        );
    }
    Run {
        stats: total,
        measured: c.duration,
        attempted_total,
    }
}
