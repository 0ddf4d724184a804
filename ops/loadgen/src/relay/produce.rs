//! `raw-produce`: the throughput baseline, a bare producer with the relay's settings.

use std::time::{Duration, Instant};

use clap::Args;
use futures::stream::{FuturesUnordered, StreamExt};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use serde_json::{json, Value};

use super::kafka::{client, high_sum, partitions, producer, watermarks};
use super::messages::{messages_from_log, Msg, Pick};
use super::report;
use crate::stats::round;

#[derive(Args, Debug, Clone)]
pub struct RawProduceArgs {
    #[arg(long)]
    brokers: String,
    /// The topic to produce to (created by the caller).
    #[arg(long)]
    topic: String,
    /// The database of the backlog: its first --count published events are the messages.
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    /// Messages to send.
    #[arg(long)]
    count: u64,
    /// At most this many messages awaiting their delivery report (0: no limit but the
    /// producer's own queue).
    #[arg(long, default_value_t = 0)]
    window: usize,
}

pub async fn raw_produce(a: RawProduceArgs) -> i32 {
    report("raw-produce", produce_all(a).await, |out| {
        out["failed"].as_u64() == Some(0)
    })
}

async fn produce_all(a: RawProduceArgs) -> Result<Value, String> {
    let t_build = Instant::now();
    let msgs = messages_from_log(&a.database_url, Pick::First(a.count as i64)).await?;
    let build_s = t_build.elapsed().as_secs_f64();
    let avg = msgs.iter().map(Msg::bytes).sum::<usize>() as f64 / msgs.len() as f64;
    eprintln!(
        "raw-produce: {} messages built from the log in {build_s:.1} s ({avg:.0} bytes on average); sending {}",
        msgs.len(),
        a.count
    );
    let c = client(&a.brokers).map_err(|e| e.to_string())?;
    let parts = partitions(&c, &a.topic)?;
    let start = high_sum(&watermarks(&c, &a.topic, &parts)?);
    let p = producer(&a.brokers).map_err(|e| e.to_string())?;
    let mut pending = FuturesUnordered::new();
    let (mut acked, mut failed) = (0u64, 0u64);
    let mut first_error = None;
    let mut settle = |r: Result<rdkafka::producer::future_producer::OwnedDeliveryResult, _>| match r
    {
        Ok(Ok(_)) => acked += 1,
        Ok(Err((e, _))) => {
            failed += 1;
            first_error.get_or_insert_with(|| format!("{e}"));
        }
        Err(_) => {
            failed += 1;
            first_error.get_or_insert_with(|| "delivery report lost".to_owned());
        }
    };
    let t0 = Instant::now();
    for i in 0..a.count {
        let m = &msgs[(i % msgs.len() as u64) as usize];
        while a.window > 0 && pending.len() >= a.window {
            match pending.next().await {
                Some(r) => settle(r),
                None => break,
            }
        }
        loop {
            // As the relay sends (src/relay/producer.rs, Publisher::publish).
            let rec = m.record(&a.topic);
            match p.send_result(rec) {
                Ok(f) => {
                    pending.push(f);
                    break;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    // The local queue is full: wait for a delivery report, then retry.
                    match pending.next().await {
                        Some(r) => settle(r),
                        None => tokio::time::sleep(Duration::from_millis(1)).await,
                    }
                }
                Err((e, _)) => return Err(format!("enqueue: {e}")),
            }
        }
    }
    while let Some(r) = pending.next().await {
        settle(r);
    }
    let secs = t0.elapsed().as_secs_f64();
    let published = high_sum(&watermarks(&c, &a.topic, &parts)?) - start;
    Ok(json!({
        "scenario": "raw-produce",
        "topic": a.topic,
        "count": a.count,
        "acked": acked,
        "failed": failed,
        "first_error": first_error,
        "published": published,
        "seconds": round(secs, 3),
        "events_per_s": (acked as f64 / secs.max(1e-9)).round(),
        "messages": "the backlog's events as the relay sends them (CloudEvents built from the same log rows, keyed by tenant), built before the clock starts",
        "distinct_messages": msgs.len(),
        "build_seconds": round(build_s, 3),
        "window": a.window,
        "avg_message_bytes": avg.round(),
        "producer": "charter::relay::producer_config (the relay's settings: enable.idempotence=true, acks=all, linger.ms=5, max.in.flight 5); messages enqueued as fast as the producer's queue takes them (--window: at most that many unacknowledged), then all delivery reports awaited",
    }))
}
