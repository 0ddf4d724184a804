//! `lag`: commit -> read model under an open-loop command rate.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Args;
use hdrhistogram::Histogram;
use serde_json::json;
use uuid::Uuid;

use crate::api::{self, call, create_tenants, id_of, token_of};
use crate::open_loop::Schedule;
use crate::stats::{hist, hist_json, round, ErrorTally};

#[derive(Args, Debug, Clone)]
pub struct LagArgs {
    /// Base URL of the service.
    #[arg(long)]
    url: String,
    /// Commands per second (open loop).
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    #[arg(long, default_value = "20s", value_parser = crate::duration::parse)]
    duration: Duration,
    #[arg(long, default_value = "3s", value_parser = crate::duration::parse)]
    warmup: Duration,
    /// Measure the read-model lag of every n-th command.
    #[arg(long, default_value_t = 10)]
    sample_every: u64,
    /// Maximum commands in flight (a send slot that finds none free is counted as missed); lag
    /// probes have a separate pool of the same size.
    #[arg(long, default_value_t = 256)]
    max_inflight: usize,
    #[arg(long, default_value = "10s", value_parser = crate::duration::parse)]
    timeout: Duration,
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
}

/// What the command and probe tasks observed.
struct LagShared {
    commit: Histogram<u64>,
    lag: Histogram<u64>,
    /// commit -> the in-process entitlement index (GET policy-version?consistency=).
    index_lag: Histogram<u64>,
    rtt: Histogram<u64>,
    committed: u64,
    errs: ErrorTally,
    lag_errs: ErrorTally,
    lag_503s: u64,
    probes_skipped: u64,
}

/// Runs the open loop with its lag probes and prints the JSON line.
pub async fn lag(a: LagArgs) -> i32 {
    if a.rate == 0 || a.sample_every == 0 || a.max_inflight == 0 {
        eprintln!("error: --rate, --sample-every and --max-inflight must be > 0");
        return 2;
    }
    let base = a.url.trim_end_matches('/').to_owned();
    let cl = api::client(a.max_inflight + 16, a.timeout);
    let tenant = match create_tenants(&cl, &base, 1).await {
        Ok(v) => v[0],
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    let run_tag = Uuid::new_v4().simple().to_string()[..8].to_owned();
    // One user, whose entitlements the index probe reads (the lookup answers from the index
    // alone, without a database round trip).
    let probe_user = match call(
        cl.post(format!("{base}/v1/tenants/{tenant}/users"))
            .json(&json!({"username": format!("probe-{run_tag}"), "email": format!("probe-{run_tag}@bench.example")})),
    )
    .await
    {
        Ok((201, v)) => match id_of(&v) {
            Some(id) => id,
            None => {
                eprintln!("error: the probe user has no id: {v}");
                return 1;
            }
        },
        other => {
            eprintln!("error: creating the probe user: {other:?}");
            return 1;
        }
    };
    let sem = Arc::new(tokio::sync::Semaphore::new(a.max_inflight));
    let shared = Arc::new(Mutex::new(LagShared {
        commit: hist(),
        lag: hist(),
        index_lag: hist(),
        rtt: hist(),
        committed: 0,
        errs: ErrorTally::default(),
        lag_errs: ErrorTally::default(),
        lag_503s: 0,
        probes_skipped: 0,
    }));
    // Lag probes get their own slots, so that slow read models do not throttle the commands.
    let probe_sem = Arc::new(tokio::sync::Semaphore::new(a.max_inflight));
    let mut schedule = Schedule::new(a.rate, a.warmup, a.duration);
    let mut late = 0u64; // issued more than 5 ms after its due time (measured window)
    let mut sched_lateness = hist();
    let mut sampled = 0u64;
    eprintln!(
        "lag: tenant {tenant}; {} cmd/s open loop, warm-up {:?}, duration {:?}, lag sample every {}th",
        a.rate, a.warmup, a.duration, a.sample_every
    );
    for i in 0..schedule.total {
        let Some(slot) = schedule.slot(i, &sem).await else {
            continue;
        };
        let (permit, measured) = (slot.permit, slot.measured);
        if measured {
            let l = slot.woke.saturating_duration_since(slot.due);
            sched_lateness.saturating_record(l.as_micros().max(1) as u64);
            if l > Duration::from_millis(5) {
                late += 1;
            }
        }
        let sample = measured && i % a.sample_every == 0;
        if sample {
            sampled += 1;
        }
        let cl = cl.clone();
        let base = base.clone();
        let shared = shared.clone();
        let probe_sem = probe_sem.clone();
        let name = format!("lag-{run_tag}-{i}");
        tokio::spawn(async move {
            let t0 = Instant::now();
            let r = call(
                cl.post(format!("{base}/v1/tenants/{tenant}/workspaces"))
                    .json(&json!({"name": name})),
            )
            .await;
            let t1 = Instant::now();
            let tok = match &r {
                Ok((201, v)) => token_of(v),
                _ => None,
            };
            let Some(tok) = tok else {
                if measured {
                    shared.lock().unwrap().errs.record_reply("command", &r);
                }
                return;
            };
            if measured {
                let mut s = shared.lock().unwrap();
                s.committed += 1;
                s.commit
                    .saturating_record((t1 - t0).as_micros().max(1) as u64);
            }
            drop(permit);
            if !sample {
                return;
            }
            let Ok(_probe) = probe_sem.try_acquire_owned() else {
                shared.lock().unwrap().probes_skipped += 1;
                return;
            };
            let url = format!("{base}/v1/tenants/{tenant}/workspaces?consistency={tok}&limit=1");
            let index_url = format!(
                "{base}/v1/tenants/{tenant}/users/{probe_user}/entitlements?consistency={tok}"
            );
            // Both probes at once: the read model, and this instance's entitlement index.
            let probe = |url: String| {
                let cl = cl.clone();
                let shared = shared.clone();
                async move {
                    let mut n503 = 0;
                    let at = loop {
                        let r = call(cl.get(&url)).await;
                        match &r {
                            Ok((200, _)) => break Some(Instant::now()),
                            Ok((503, _)) if t1.elapsed() < Duration::from_secs(30) => n503 += 1,
                            _ => {
                                shared
                                    .lock()
                                    .unwrap()
                                    .lag_errs
                                    .record_reply("consistency", &r);
                                break None;
                            }
                        }
                    };
                    (at, n503)
                }
            };
            let ((t2, n503), (t2_index, n503_index)) =
                tokio::join!(probe(url.clone()), probe(index_url));
            let n503 = n503 + n503_index;
            if let Some(t) = t2_index {
                shared
                    .lock()
                    .unwrap()
                    .index_lag
                    .saturating_record((t - t1).as_micros().max(1) as u64);
            }
            // The same request again: the token is passed, so this is one round trip.
            let t3 = Instant::now();
            let again = call(cl.get(&url)).await;
            let t4 = Instant::now();
            let mut s = shared.lock().unwrap();
            s.lag_503s += n503;
            if let Some(t2) = t2 {
                s.lag.saturating_record((t2 - t1).as_micros().max(1) as u64);
            }
            if matches!(again, Ok((200, _))) {
                s.rtt.saturating_record((t4 - t3).as_micros().max(1) as u64);
            }
        });
    }
    let sent_s = (Instant::now() - schedule.measure_from).as_secs_f64();
    // Drain: wait (bounded) until every in-flight request has finished.
    let drain_deadline = Instant::now() + a.timeout + Duration::from_secs(35);
    let mut unfinished = 0;
    loop {
        let busy = 2 * a.max_inflight - sem.available_permits() - probe_sem.available_permits();
        if busy == 0 {
            break;
        }
        if Instant::now() >= drain_deadline {
            unfinished = busy;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let s = shared.lock().unwrap();
    let secs = a.duration.as_secs_f64();
    let out = json!({
        "scenario": "projection-lag",
        "tenant_id": tenant,
        "target_rate": a.rate,
        "duration_s": secs,
        "warmup_s": a.warmup.as_secs_f64(),
        "send_window_s": round(sent_s, 2),
        "max_inflight": a.max_inflight,
        "issued": schedule.issued,
        "missed_no_slot": schedule.missed,
        "late_over_5ms": late,
        "schedule_lateness": hist_json(&sched_lateness),
        "committed": s.committed,
        "achieved_rate": round(s.committed as f64 / secs, 1),
        "errors": s.errs.total(),
        "error_kinds": s.errs.kinds,
        "error_samples": s.errs.samples,
        "commit_latency": hist_json(&s.commit),
        "sample_every": a.sample_every,
        "lag_samples_requested": sampled,
        "lag": hist_json(&s.lag),
        "index_lag": hist_json(&s.index_lag),
        "lag_errors": s.lag_errs.total(),
        "lag_error_kinds": s.lag_errs.kinds,
        "lag_error_samples": s.lag_errs.samples,
        "lag_503_retries": s.lag_503s,
        "lag_probes_skipped_no_slot": s.probes_skipped,
        "consistency_get_rtt": hist_json(&s.rtt),
        "unfinished_at_exit": unfinished,
        "caveat": "lag = time from the 201 to the answer of GET ?consistency=<token>, which waits server-side; it includes one HTTP round trip (see consistency_get_rtt: the same GET once the token has passed)",
    });
    println!("{out}");
    0
}
