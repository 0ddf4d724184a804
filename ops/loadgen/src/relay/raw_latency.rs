//! `raw-latency`: the latency baseline, a bare producer at a fixed rate watched the same way.

use std::time::{Duration, Instant};

use clap::Args;
use futures::stream::{FuturesUnordered, StreamExt};
use serde_json::{json, Value};

use super::kafka::{client, high, producer};
use super::messages::{messages_from_log, Msg, Pick};
use super::watcher::{arrival, Watcher, WATCH_NOTE};
use super::{now_us, report};
use crate::open_loop::Schedule;
use crate::stats::{hist, hist_json};

#[derive(Args, Debug, Clone)]
pub struct RawLatencyArgs {
    #[arg(long)]
    brokers: String,
    /// The topic to produce to (created by the caller); everything goes to --partition.
    #[arg(long)]
    topic: String,
    #[arg(long, default_value_t = 0)]
    partition: i32,
    /// The service's database: its newest --sample published events (the commit -> broker
    /// run's) are the messages, as the relay sends them.
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    #[arg(long, default_value_t = 1000)]
    sample: i64,
    /// Messages per second (open loop).
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    #[arg(long, default_value = "20s", value_parser = crate::duration::parse)]
    duration: Duration,
    #[arg(long, default_value = "3s", value_parser = crate::duration::parse)]
    warmup: Duration,
    #[arg(long, default_value = "5ms", value_parser = crate::duration::parse)]
    poll: Duration,
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
}

pub async fn raw_latency(a: RawLatencyArgs) -> i32 {
    report("raw-latency", raw_latency_run(a).await, |_| true)
}

async fn raw_latency_run(a: RawLatencyArgs) -> Result<Value, String> {
    if a.rate == 0 || a.duration.is_zero() {
        return Err("--rate and --duration must be > 0".into());
    }
    let msgs = messages_from_log(&a.database_url, Pick::Last(a.sample)).await?;
    let avg = msgs.iter().map(Msg::bytes).sum::<usize>() as f64 / msgs.len() as f64;
    let c = client(&a.brokers).map_err(|e| e.to_string())?;
    let start_mark = high(&c, &a.topic, a.partition)?;
    let watcher = Watcher::spawn(&a.brokers, &a.topic, a.partition, a.poll)?;
    let p = producer(&a.brokers).map_err(|e| e.to_string())?;
    let schedule = Schedule::new(a.rate, a.warmup, a.duration);
    let mut pending = FuturesUnordered::new();
    // Per message, in send order: (measured, send µs).
    let mut sent: Vec<(bool, i64)> = Vec::with_capacity(schedule.total as usize);
    let (mut acked, mut failed, mut enqueue_errors) = (0u64, 0u64, 0u64);
    let mut ack = hist();
    eprintln!(
        "raw-latency: {} msg/s open loop to {}/{}, warm-up {:?}, duration {:?}; {} messages from the log ({avg:.0} bytes on average)",
        a.rate, a.topic, a.partition, a.warmup, a.duration, msgs.len()
    );
    for i in 0..schedule.total {
        let due = schedule.due(i);
        // Collect delivery reports while waiting for the next send time.
        loop {
            tokio::select! {
                Some((r, t)) = pending.next(), if !pending.is_empty() => {
                    match r {
                        Ok(Ok(_)) => {
                            acked += 1;
                            ack.saturating_record(Instant::now().saturating_duration_since(t).as_micros().max(1) as u64);
                        }
                        _ => failed += 1,
                    }
                }
                _ = tokio::time::sleep_until(due.into()) => break,
            }
        }
        let m = &msgs[(i % msgs.len() as u64) as usize];
        let rec = m.record(&a.topic).partition(a.partition);
        let t = Instant::now();
        let sent_us = now_us();
        match p.send_result(rec) {
            Ok(f) => {
                pending.push(async move { (f.await, t) });
                sent.push((due >= schedule.measure_from, sent_us));
            }
            Err(_) => enqueue_errors += 1,
        }
    }
    while let Some((r, t)) = pending.next().await {
        match r {
            Ok(Ok(_)) => {
                acked += 1;
                ack.saturating_record(t.elapsed().as_micros().max(1) as u64);
            }
            _ => failed += 1,
        }
    }
    tokio::time::sleep(a.poll * 4 + Duration::from_millis(50)).await;
    let (marks, polls) = watcher.finish()?;
    let published = high(&c, &a.topic, a.partition)? - start_mark;
    let consistent = published == sent.len() as i64 && failed == 0;
    let mut lat = hist();
    let mut not_seen = 0u64;
    if consistent {
        for (k, &(measured, sent_us)) in sent.iter().enumerate() {
            if !measured {
                continue;
            }
            match arrival(&marks, start_mark + k as i64) {
                Some(at) => lat.saturating_record((at - sent_us).max(1) as u64),
                None => not_seen += 1,
            }
        }
    }
    Ok(json!({
        "scenario": "raw-latency",
        "topic": a.topic,
        "partition": a.partition,
        "rate": a.rate,
        "duration_s": a.duration.as_secs_f64(),
        "warmup_s": a.warmup.as_secs_f64(),
        "measured": sent.iter().filter(|(m, _)| *m).count(),
        "sent": sent.len(),
        "acked": acked,
        "failed": failed,
        "enqueue_errors": enqueue_errors,
        "messages_at_broker": published,
        "order_consistent": consistent,
        "not_seen": not_seen,
        "watermark_polls": polls,
        "poll_ms": a.poll.as_secs_f64() * 1000.0,
        "send_to_broker": hist_json(&lat),
        "send_to_ack": hist_json(&ack),
        "messages": "the newest published events of the service's log (the commit -> broker run's), as the relay sends them",
        "distinct_messages": msgs.len(),
        "avg_message_bytes": avg.round(),
        "producer": "charter::relay::producer_config (the relay's settings), one message per send slot, all to one partition",
        "arrival": WATCH_NOTE,
    }))
}
