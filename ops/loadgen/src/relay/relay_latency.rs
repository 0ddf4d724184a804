//! `relay-latency`: commit -> broker under an open-loop command rate.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::{json, Value};
use uuid::Uuid;

use super::kafka::{client, high, partitions, watermarks};
use super::messages::internal_types;
use super::watcher::{arrival, Watcher, WATCH_NOTE};
use super::{now_us, report};
use crate::api::create_tenants;
use crate::open_loop::Schedule;
use crate::stats::{hist, hist_json, round};

#[derive(Args, Debug, Clone)]
pub struct LatencyArgs {
    /// Base URL of the service.
    #[arg(long)]
    url: String,
    #[arg(long)]
    brokers: String,
    #[arg(long, default_value = "charter.iam.events.v1")]
    topic: String,
    /// The service's database (read-only here: the run's events, their order and recorded_at).
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    /// Commands per second (open loop).
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    #[arg(long, default_value = "20s", value_parser = crate::duration::parse)]
    duration: Duration,
    #[arg(long, default_value = "3s", value_parser = crate::duration::parse)]
    warmup: Duration,
    /// Maximum commands in flight (a send slot that finds none free is counted as missed).
    #[arg(long, default_value_t = 256)]
    max_inflight: usize,
    #[arg(long, default_value = "10s", value_parser = crate::duration::parse)]
    timeout: Duration,
    /// After the last command, how long to wait for the outbox to empty.
    #[arg(long, default_value = "60s", value_parser = crate::duration::parse)]
    drain_timeout: Duration,
    /// How often to poll the high-water mark.
    #[arg(long, default_value = "5ms", value_parser = crate::duration::parse)]
    poll: Duration,
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
}

/// Waits (bounded) until both outboxes are empty: everything committed so far is at the broker.
async fn outbox_empty(db: &tokio_postgres::Client, deadline: Instant) -> Result<bool, String> {
    loop {
        let n: i64 = db
            .query_one(
                "SELECT (SELECT count(*) FROM outbox) + (SELECT count(*) FROM projections.policy_outbox)",
                &[],
            )
            .await
            .map_err(|e| e.to_string())?
            .get(0);
        if n == 0 {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn relay_latency(a: LatencyArgs) -> i32 {
    report("relay-latency", relay_latency_run(a).await, |_| true)
}

async fn relay_latency_run(a: LatencyArgs) -> Result<Value, String> {
    if a.rate == 0 || a.max_inflight == 0 || a.duration.is_zero() {
        return Err("--rate, --max-inflight and --duration must be > 0".into());
    }
    let base = a.url.trim_end_matches('/').to_owned();
    let pool = crate::db::pool(&a.database_url, 1).map_err(|e| e.to_string())?;
    let db = pool.get().await.map_err(|e| e.to_string())?;
    let c = client(&a.brokers).map_err(|e| e.to_string())?;
    let parts = partitions(&c, &a.topic)?;
    let cl = crate::api::client(a.max_inflight + 16, a.timeout);

    // A fresh tenant; its set-up events tell which partition its key maps to.
    let settle = Duration::from_secs(60);
    if !outbox_empty(&db, Instant::now() + settle).await? {
        return Err("the outbox did not empty before the run".into());
    }
    let before = watermarks(&c, &a.topic, &parts)?;
    let tenant = create_tenants(&cl, &base, 1).await?[0];
    if !outbox_empty(&db, Instant::now() + settle).await? {
        return Err("the tenant's set-up events did not reach the broker".into());
    }
    let after = watermarks(&c, &a.topic, &parts)?;
    let grew: Vec<i32> = (parts.iter().zip(before.iter().zip(&after)))
        .filter(|(_, (b, a))| a.1 > b.1)
        .map(|(&p, _)| p)
        .collect();
    let [partition] = grew[..] else {
        return Err(format!(
            "cannot tell the tenant's partition: partitions {grew:?} grew while it was created (another writer?)"
        ));
    };
    let setup_max: i64 = db
        .query_one(
            "SELECT coalesce(max(position), 0) FROM events WHERE tenant_id = $1",
            &[&tenant],
        )
        .await
        .map_err(|e| e.to_string())?
        .get(0);
    let start_mark = high(&c, &a.topic, partition)?;
    let watcher = Watcher::spawn(&a.brokers, &a.topic, partition, a.poll)?;

    let run_tag = Uuid::new_v4().simple().to_string()[..8].to_owned();
    let sem = Arc::new(tokio::sync::Semaphore::new(a.max_inflight));
    // event id -> (measured, 201 received µs)
    let acks: Arc<Mutex<HashMap<Uuid, (bool, i64)>>> = Arc::new(Mutex::new(HashMap::new()));
    let errors: Arc<Mutex<HashMap<String, u64>>> = Arc::new(Mutex::new(HashMap::new()));
    let commit_hist = Arc::new(Mutex::new(hist()));
    let committed = Arc::new(AtomicU64::new(0));
    let mut schedule = Schedule::new(a.rate, a.warmup, a.duration);
    eprintln!(
        "relay-latency: tenant {tenant} (partition {partition} of {}); {} cmd/s open loop, warm-up {:?}, duration {:?}",
        a.topic, a.rate, a.warmup, a.duration
    );
    for i in 0..schedule.total {
        let Some(slot) = schedule.slot(i, &sem).await else {
            continue;
        };
        let (permit, measured) = (slot.permit, slot.measured);
        let (cl, base, acks, errors, commit_hist, committed) = (
            cl.clone(),
            base.clone(),
            acks.clone(),
            errors.clone(),
            commit_hist.clone(),
            committed.clone(),
        );
        let name = format!("relay-{run_tag}-{i}");
        tokio::spawn(async move {
            let t0 = Instant::now();
            let r = cl
                .post(format!("{base}/v1/tenants/{tenant}/workspaces"))
                .json(&json!({"name": name}))
                .send()
                .await;
            let status = r.as_ref().map(|r| r.status().as_u16()).unwrap_or(0);
            let body = match r {
                Ok(r) => r.json::<Value>().await.ok(),
                Err(_) => None,
            };
            let ok_us = now_us();
            let elapsed = t0.elapsed();
            drop(permit);
            let events: Option<Vec<Uuid>> = body.as_ref().and_then(|v| {
                v.get("events")?
                    .as_array()?
                    .iter()
                    .map(|e| e.as_str().and_then(|s| Uuid::parse_str(s).ok()))
                    .collect()
            });
            match events {
                Some(events) if status == 201 => {
                    let mut acks = acks.lock().unwrap();
                    for e in events {
                        acks.insert(e, (measured, ok_us));
                    }
                    if measured {
                        committed.fetch_add(1, Ordering::Relaxed);
                        commit_hist
                            .lock()
                            .unwrap()
                            .saturating_record(elapsed.as_micros().max(1) as u64);
                    }
                }
                _ => {
                    *errors
                        .lock()
                        .unwrap()
                        .entry(format!(
                            "{}http_{status}",
                            if measured { "" } else { "warmup:" }
                        ))
                        .or_default() += 1;
                }
            }
        });
    }
    let sent_s = (Instant::now() - schedule.measure_from).as_secs_f64();
    let deadline = Instant::now() + a.timeout + Duration::from_secs(5);
    while sem.available_permits() < a.max_inflight && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let unfinished = a.max_inflight - sem.available_permits();
    let t_drain = Instant::now();
    let drained = outbox_empty(&db, t_drain + a.drain_timeout).await?;
    let drain_s = t_drain.elapsed().as_secs_f64();
    // One more poll interval for the last mark.
    tokio::time::sleep(a.poll * 4 + Duration::from_millis(50)).await;
    let (marks, polls) = watcher.finish()?;
    let end_mark = high(&c, &a.topic, partition)?;

    // The run's events in the relay's order, with their recorded_at.
    let rows = db
        .query(
            "SELECT event_id, (extract(epoch FROM recorded_at) * 1000000)::bigint
             FROM events WHERE tenant_id = $1 AND position > $2 AND event_type <> ALL($3::text[])
             ORDER BY tx_id, position",
            &[&tenant, &setup_max, &internal_types()],
        )
        .await
        .map_err(|e| e.to_string())?;
    let published = end_mark - start_mark;
    let consistent = published == rows.len() as i64;
    let acks = acks.lock().unwrap();
    let (mut from_recorded, mut from_201) = (hist(), hist());
    let (mut timed, mut not_seen, mut before_201) = (0u64, 0u64, 0u64);
    if consistent {
        for (k, row) in rows.iter().enumerate() {
            let id: Uuid = row.get(0);
            let recorded_us: i64 = row.get(1);
            let Some(&(measured, ok_us)) = acks.get(&id) else {
                continue; // a command whose answer was lost; still in the order
            };
            if !measured {
                continue;
            }
            let Some(at) = arrival(&marks, start_mark + k as i64) else {
                not_seen += 1;
                continue;
            };
            timed += 1;
            from_recorded.saturating_record((at - recorded_us).max(1) as u64);
            if at < ok_us {
                before_201 += 1;
            }
            from_201.saturating_record((at - ok_us).max(1) as u64);
        }
    }
    let measured_events = acks.values().filter(|(m, _)| *m).count();
    let errors = errors.lock().unwrap().clone();
    let secs = a.duration.as_secs_f64();
    let committed = committed.load(Ordering::Relaxed);
    let commit_latency = hist_json(&commit_hist.lock().unwrap());
    Ok(json!({
        "scenario": "relay-latency",
        "tenant_id": tenant,
        "topic": a.topic,
        "partition": partition,
        "target_rate": a.rate,
        "duration_s": secs,
        "warmup_s": a.warmup.as_secs_f64(),
        "send_window_s": round(sent_s, 2),
        "max_inflight": a.max_inflight,
        "issued": schedule.issued,
        "missed_no_slot": schedule.missed,
        "committed": committed,
        "achieved_rate": round(committed as f64 / secs, 1),
        "errors": errors.iter().filter(|(k, _)| !k.starts_with("warmup:")).map(|(_, v)| v).sum::<u64>(),
        "error_kinds": errors,
        "unfinished_at_exit": unfinished,
        "commit_latency": commit_latency,
        "outbox_drained": drained,
        "drain_wait_s": round(drain_s, 2),
        "events_in_log": rows.len(),
        "messages_at_broker": published,
        "order_consistent": consistent,
        "events_measured": measured_events,
        "events_timed": timed,
        "events_not_seen": not_seen,
        "watermark_polls": polls,
        "poll_ms": a.poll.as_secs_f64() * 1000.0,
        "recorded_to_broker": hist_json(&from_recorded),
        "ack_to_broker": hist_json(&from_201),
        "at_broker_before_201": before_201,
        "method": "per event of a measured command: arrival at the broker minus recorded_at (the command transaction's start, before its commit: an upper bound of commit -> broker), and minus the time the client got the 201 (after the commit: a lower bound; arrivals before the 201 count as 0)",
        "arrival": WATCH_NOTE,
    }))
}
