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

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Args;
use cloudevents::binding::rdkafka::{FutureRecordExt, MessageRecord};
use futures::stream::{FuturesUnordered, StreamExt};
use hdrhistogram::Histogram;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Headers, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use secrecy::SecretString;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::create_tenants;

const META_TIMEOUT: Duration = Duration::from_secs(10);

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

fn hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("histogram bounds")
}

fn hist_json(h: &Histogram<u64>) -> Value {
    let ms = |us: u64| us as f64 / 1000.0;
    if h.is_empty() {
        return json!({"count": 0, "p50_ms": 0.0, "p90_ms": 0.0, "p99_ms": 0.0, "p999_ms": 0.0, "max_ms": 0.0, "mean_ms": 0.0});
    }
    json!({
        "count": h.len(),
        "p50_ms": ms(h.value_at_quantile(0.50)),
        "p90_ms": ms(h.value_at_quantile(0.90)),
        "p99_ms": ms(h.value_at_quantile(0.99)),
        "p999_ms": ms(h.value_at_quantile(0.999)),
        "max_ms": ms(h.max()),
        "mean_ms": (h.mean() / 10.0).round() / 100.0,
    })
}

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

fn kafka(brokers: &str) -> charter::config::KafkaConfig {
    charter::config::KafkaConfig {
        brokers: brokers.to_owned(),
        ..Default::default()
    }
}

/// The relay's own producer settings (idempotent, acks=all, linger 5 ms, ...).
fn producer(brokers: &str) -> Result<FutureProducer, KafkaError> {
    charter::relay::producer_config(&kafka(brokers))
        .set("client.id", "charter-bench-raw")
        .create()
}

/// A client for metadata and high-water marks (ListOffsets); it never fetches.
fn client(brokers: &str) -> Result<BaseConsumer, KafkaError> {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("client.id", "charter-bench-watch")
        .set(
            "group.id",
            format!("charter-bench-{}", Uuid::new_v4().simple()),
        )
        .set("enable.auto.commit", "false")
        .create()
}

fn partitions(c: &BaseConsumer, topic: &str) -> Result<Vec<i32>, String> {
    let md = c
        .fetch_metadata(Some(topic), META_TIMEOUT)
        .map_err(|e| format!("metadata of {topic}: {e}"))?;
    let t = md
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .ok_or_else(|| format!("topic {topic} not in the metadata"))?;
    if let Some(e) = t.error() {
        return Err(format!("topic {topic}: {e:?}"));
    }
    let mut ps: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
    ps.sort_unstable();
    if ps.is_empty() {
        return Err(format!("topic {topic} has no partitions"));
    }
    Ok(ps)
}

/// (low, high) watermark per partition.
fn watermarks(c: &BaseConsumer, topic: &str, parts: &[i32]) -> Result<Vec<(i64, i64)>, String> {
    parts
        .iter()
        .map(|&p| {
            c.fetch_watermarks(topic, p, META_TIMEOUT)
                .map_err(|e| format!("watermarks of {topic}/{p}: {e}"))
        })
        .collect()
}

fn high_sum(w: &[(i64, i64)]) -> i64 {
    w.iter().map(|(_, h)| h).sum()
}

/// One message as the relay produces it: key = tenant id, binary-mode CloudEvent (headers +
/// payload), built with the relay's own code path (`to_cloudevent` + cloudevents-sdk's
/// rdkafka binding).
struct Msg {
    key: String,
    headers: OwnedHeaders,
    payload: Vec<u8>,
}

impl Msg {
    fn new(key: String, record: &MessageRecord) -> Self {
        // What the binding puts on the wire (it is what the relay sends).
        let r: FutureRecord<'_, String, Vec<u8>> =
            FutureRecord::to("-").key(&key).message_record(record);
        let headers = r.headers.unwrap_or_default();
        let payload = r.payload.cloned().unwrap_or_default();
        Msg {
            key,
            headers,
            payload,
        }
    }

    fn bytes(&self) -> usize {
        let headers: usize = self
            .headers
            .iter()
            .map(|h| h.key.len() + h.value.map_or(0, <[u8]>::len))
            .sum();
        self.key.len() + self.payload.len() + headers
    }

    /// The record, as the relay's `message_record` builds it (headers cloned, payload lent).
    fn record<'a>(&'a self, topic: &'a str) -> FutureRecord<'a, String, Vec<u8>> {
        FutureRecord::to(topic)
            .key(&self.key)
            .payload(&self.payload)
            .headers(self.headers.clone())
    }
}

/// Which events of the log to turn into messages.
enum Pick {
    /// The first `n` published events in log order: the outbox-backlog rows.
    First(i64),
    /// The newest `n` published events.
    Last(i64),
}

fn internal_types() -> Vec<String> {
    charter_events::catalog::all_schemas()
        .into_iter()
        .filter(|s| !s.published)
        .map(|s| s.event_type.to_owned())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// Reads events from the log and builds the messages the relay would send for them.
async fn messages_from_log(database_url: &str, pick: Pick) -> Result<Vec<Msg>, String> {
    let pool = charter::db::pool(&charter::config::DatabaseConfig {
        url: SecretString::from(database_url.to_owned()),
        pool_size: 1,
        ..Default::default()
    })
    .map_err(|e| e.to_string())?;
    let db = pool.get().await.map_err(|e| e.to_string())?;
    let (order, n) = match pick {
        Pick::First(n) => ("ORDER BY tx_id, position", n),
        Pick::Last(n) => ("ORDER BY tx_id DESC, position DESC", n),
    };
    let rows = db
        .query(
            &format!(
                "SELECT {} FROM events WHERE event_type <> ALL($1::text[]) {order} LIMIT $2",
                charter_log::reader::EVENT_COLUMNS
            ),
            &[&internal_types(), &n],
        )
        .await
        .map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let event = charter_log::reader::event_from_row(row).map_err(|e| e.to_string())?;
        let ce = charter_events::cloudevent::to_cloudevent(&event).map_err(|e| e.to_string())?;
        let record = MessageRecord::from_event(ce).map_err(|e| e.to_string())?;
        out.push(Msg::new(event.tenant_id.to_string(), &record));
    }
    if matches!(pick, Pick::Last(_)) {
        out.reverse();
    }
    if out.is_empty() {
        return Err("no published event in the log".into());
    }
    Ok(out)
}

// ---------------------------------------------------------- outbox-backlog ---

#[derive(Args, Debug, Clone)]
pub struct BacklogArgs {
    /// The (seeded, migrated) database.
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    /// Outbox rows to write: the first N published events of the log.
    #[arg(long)]
    rows: i64,
}

/// Writes outbox rows for the first `rows` published events of the log, as the command path
/// would have: same tx_id as the event, (tx_id, position) order, none for internal events.
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

pub async fn outbox_backlog(a: BacklogArgs) -> i32 {
    let internal: Vec<String> = charter_events::catalog::all_schemas()
        .into_iter()
        .filter(|s| !s.published)
        .map(|s| s.event_type.to_owned())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let pool = match charter::db::pool(&charter::config::DatabaseConfig {
        url: SecretString::from(a.database_url.clone()),
        pool_size: 1,
        ..Default::default()
    }) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let run = async {
        let client = pool.get().await.map_err(|e| e.to_string())?;
        let t0 = Instant::now();
        let n = client
            .execute(
                "INSERT INTO outbox (tx_id, position)
                 SELECT tx_id, position FROM events
                 WHERE event_type <> ALL($1::text[])
                 ORDER BY tx_id, position
                 LIMIT $2",
                &[&internal, &a.rows],
            )
            .await
            .map_err(|e| e.to_string())?;
        client
            .batch_execute("ANALYZE outbox")
            .await
            .map_err(|e| e.to_string())?;
        let row = client
            .query_one(
                "SELECT (SELECT count(*) FROM events),
                        (SELECT count(*) FROM events WHERE event_type = ANY($1::text[])),
                        (SELECT count(*) FROM outbox),
                        (SELECT count(DISTINCT tx_id) FROM outbox),
                        (SELECT avg(pg_column_size(e.data) + pg_column_size(e.metadata))::float8
                         FROM outbox o JOIN events e USING (position))",
                &[&internal],
            )
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(json!({
            "scenario": "outbox-backlog",
            "rows_inserted": n,
            "rows_requested": a.rows,
            "events_in_log": row.get::<_, i64>(0),
            "internal_events_in_log": row.get::<_, i64>(1),
            "internal_event_types": internal,
            "outbox_rows": row.get::<_, i64>(2),
            "outbox_transactions": row.get::<_, i64>(3),
            "avg_stored_data_metadata_bytes": row.get::<_, Option<f64>>(4).map(|x| x.round()),
            "seconds": round(t0.elapsed().as_secs_f64(), 3),
        }))
    };
    match run.await {
        Ok(out) => {
            if out["outbox_rows"].as_i64() != Some(a.rows) {
                eprintln!(
                    "error: the log has too few published events for {} outbox rows: {out}",
                    a.rows
                );
                return 1;
            }
            println!("{out}");
            0
        }
        Err(e) => {
            eprintln!("error: outbox-backlog: {e}");
            1
        }
    }
}

// ------------------------------------------------------------- relay-drain ---

#[derive(Args, Debug, Clone)]
pub struct DrainArgs {
    #[arg(long)]
    brokers: String,
    /// The topic the relay publishes to.
    #[arg(long)]
    topic: String,
    /// The database whose outbox the relay drains.
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    /// Messages expected at the broker (the backlog).
    #[arg(long)]
    expect: i64,
    /// Written (with the starting high-water marks) once they are known: start the relay then.
    #[arg(long)]
    ready_file: String,
    #[arg(long, default_value = "100ms", value_parser = crate::parse_duration)]
    poll: Duration,
    /// Give up after this long.
    #[arg(long, default_value = "900s", value_parser = crate::parse_duration)]
    timeout: Duration,
}

pub async fn relay_drain(a: DrainArgs) -> i32 {
    report("relay-drain", drain(a).await, |out| {
        out["complete"].as_bool() == Some(true)
    })
}

async fn outbox_rows(db: &tokio_postgres::Client) -> Result<i64, String> {
    db.query_one("SELECT count(*) FROM outbox", &[])
        .await
        .map(|r| r.get::<_, i64>(0))
        .map_err(|e| e.to_string())
}

async fn drain(a: DrainArgs) -> Result<Value, String> {
    let pool = charter::db::pool(&charter::config::DatabaseConfig {
        url: SecretString::from(a.database_url.clone()),
        pool_size: 1,
        ..Default::default()
    })
    .map_err(|e| e.to_string())?;
    let db = pool.get().await.map_err(|e| e.to_string())?;
    let rows_before = outbox_rows(&db).await?;
    let c = client(&a.brokers).map_err(|e| e.to_string())?;
    let parts = partitions(&c, &a.topic)?;
    let start = high_sum(&watermarks(&c, &a.topic, &parts)?);
    let tmp = format!("{}.tmp", a.ready_file);
    std::fs::write(
        &tmp,
        json!({"high_watermark_sum": start, "outbox_rows": rows_before}).to_string(),
    )
    .map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, &a.ready_file).map_err(|e| e.to_string())?;
    eprintln!(
        "relay-drain: {} partitions, high-water marks {start}, outbox {rows_before}; waiting for {} messages",
        parts.len(),
        a.expect
    );
    let t0 = Instant::now();
    let deadline = t0 + a.timeout;
    // First sample with progress, and the last one.
    let mut first: Option<(Instant, i64, i64)> = None;
    let mut done: Option<(Instant, i64)> = None;
    let mut timeline = Vec::new();
    let mut last_tick = t0;
    let mut delta = 0;
    while Instant::now() < deadline {
        let marks = watermarks(&c, &a.topic, &parts)?;
        let now = Instant::now();
        delta = high_sum(&marks) - start;
        if delta > 0 && first.is_none() {
            first = Some((now, delta, now_us()));
            eprintln!("relay-drain: first messages at the broker ({delta})");
        }
        if now - last_tick >= Duration::from_secs(1) {
            last_tick = now;
            timeline.push(json!([round((now - t0).as_secs_f64(), 1), delta]));
        }
        if delta >= a.expect {
            done = Some((now, delta));
            break;
        }
        tokio::time::sleep(a.poll).await;
    }
    let Some((t_first, d_first, first_at_us)) = first else {
        return Ok(
            json!({"scenario": "relay-drain", "complete": false, "expect": a.expect,
                         "error": "no message reached the broker"}),
        );
    };
    let Some((t_done, d_done)) = done else {
        return Ok(
            json!({"scenario": "relay-drain", "complete": false, "expect": a.expect,
                         "published": delta, "outbox_rows_left": outbox_rows(&db).await?,
                         "error": "the backlog did not reach the broker in time"}),
        );
    };
    eprintln!(
        "relay-drain: {d_done} messages at the broker after {:.2} s",
        (t_done - t_first).as_secs_f64()
    );
    // The last batch's rows are deleted right after its acknowledgements.
    let mut left = outbox_rows(&db).await?;
    let empty_deadline = Instant::now() + Duration::from_secs(60);
    while left > 0 && Instant::now() < empty_deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        left = outbox_rows(&db).await?;
    }
    let t_empty = Instant::now();
    let final_delta = high_sum(&watermarks(&c, &a.topic, &parts)?) - start;
    let secs = (t_done - t_first).as_secs_f64();
    let rate = (d_done - d_first) as f64 / secs.max(1e-9);
    Ok(json!({
        "scenario": "relay-drain",
        "complete": left == 0,
        "expect": a.expect,
        "outbox_rows_before": rows_before,
        "outbox_rows_left": left,
        "topic": a.topic,
        "partitions": parts.len(),
        "high_watermark_sum_before": start,
        "published": final_delta,
        "duplicates": (final_delta - rows_before).max(0),
        "first_at_broker_unix_us": first_at_us,
        "first_sample_messages": d_first,
        "seconds": round(secs, 3),
        "events_per_s": rate.round(),
        "outbox_empty_after_s": round((t_empty - t_first).as_secs_f64(), 3),
        "poll_ms": a.poll.as_millis() as u64,
        "timeline": timeline,
        "method": "sum of the topic's high-water marks, polled; rate = messages between the first poll that saw progress and the first that saw the whole backlog, over that time",
    }))
}

// ------------------------------------------------------------- raw-produce ---

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

// ------------------------------------------------------ high-water watcher ---
//
// Why not a consumer: tansu 0.6 (the local broker) serves a fetch with one SQL query per record
// for its headers, a few milliseconds per CloudEvent on this machine; a consumer keeping up with
// 1,000 events/s saturates its single storage thread, and every produce waits behind it. The
// broker's high-water mark (ListOffsets: one cheap query) says when a message became readable,
// without reading it. Every message of one key lands in one partition, in the order it was
// produced, so the k-th message after the starting mark is offset start + k.

/// Polls one partition's high-water mark until stopped; the result lists (mark, µs since the
/// epoch when the answer arrived) each time the mark moved.
struct Watcher {
    stop: Arc<AtomicBool>,
    polls: Arc<AtomicU64>,
    handle: std::thread::JoinHandle<Result<Vec<(i64, i64)>, String>>,
}

impl Watcher {
    fn spawn(brokers: &str, topic: &str, partition: i32, poll: Duration) -> Result<Self, String> {
        let c = client(brokers).map_err(|e| e.to_string())?;
        let topic = topic.to_owned();
        let stop = Arc::new(AtomicBool::new(false));
        let polls = Arc::new(AtomicU64::new(0));
        let (stop2, polls2) = (stop.clone(), polls.clone());
        let handle = std::thread::spawn(move || {
            let mut marks: Vec<(i64, i64)> = Vec::new();
            while !stop2.load(Ordering::Relaxed) {
                let (_, high) = c
                    .fetch_watermarks(&topic, partition, META_TIMEOUT)
                    .map_err(|e| format!("watermarks of {topic}/{partition}: {e}"))?;
                let at = now_us();
                polls2.fetch_add(1, Ordering::Relaxed);
                if marks.last().is_none_or(|&(h, _)| high > h) {
                    marks.push((high, at));
                }
                std::thread::sleep(poll);
            }
            Ok(marks)
        });
        Ok(Watcher {
            stop,
            polls,
            handle,
        })
    }

    fn finish(self) -> Result<(Vec<(i64, i64)>, u64), String> {
        self.stop.store(true, Ordering::Relaxed);
        let marks = self
            .handle
            .join()
            .map_err(|_| "the watcher panicked".to_owned())??;
        Ok((marks, self.polls.load(Ordering::Relaxed)))
    }
}

/// When offset `o` was first seen readable: the first mark above it.
fn arrival(marks: &[(i64, i64)], o: i64) -> Option<i64> {
    let i = marks.partition_point(|&(h, _)| h <= o);
    marks.get(i).map(|&(_, t)| t)
}

fn high(c: &BaseConsumer, topic: &str, partition: i32) -> Result<i64, String> {
    c.fetch_watermarks(topic, partition, META_TIMEOUT)
        .map(|(_, h)| h)
        .map_err(|e| format!("watermarks of {topic}/{partition}: {e}"))
}

const WATCH_NOTE: &str = "arrival at the broker = when a poll of the partition's high-water mark (ListOffsets, every poll_ms) first showed the message readable; each command's events are the only messages of their key (tenant), so the k-th event in the relay's order, (tx_id, position), is the k-th offset after the starting mark";

// ----------------------------------------------------------- relay-latency ---

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
    #[arg(long, default_value = "20s", value_parser = crate::parse_duration)]
    duration: Duration,
    #[arg(long, default_value = "3s", value_parser = crate::parse_duration)]
    warmup: Duration,
    /// Maximum commands in flight (a send slot that finds none free is counted as missed).
    #[arg(long, default_value_t = 256)]
    max_inflight: usize,
    #[arg(long, default_value = "10s", value_parser = crate::parse_duration)]
    timeout: Duration,
    /// After the last command, how long to wait for the outbox to empty.
    #[arg(long, default_value = "60s", value_parser = crate::parse_duration)]
    drain_timeout: Duration,
    /// How often to poll the high-water mark.
    #[arg(long, default_value = "5ms", value_parser = crate::parse_duration)]
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
    let pool = charter::db::pool(&charter::config::DatabaseConfig {
        url: SecretString::from(a.database_url.clone()),
        pool_size: 1,
        ..Default::default()
    })
    .map_err(|e| e.to_string())?;
    let db = pool.get().await.map_err(|e| e.to_string())?;
    let c = client(&a.brokers).map_err(|e| e.to_string())?;
    let parts = partitions(&c, &a.topic)?;
    let cl = reqwest::Client::builder()
        .default_headers(crate::auth_headers())
        .pool_max_idle_per_host(a.max_inflight + 16)
        .tcp_nodelay(true)
        .timeout(a.timeout)
        .connect_timeout(Duration::from_secs(5))
        .no_proxy()
        .build()
        .expect("reqwest client");

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
    let interval = Duration::from_secs_f64(1.0 / a.rate as f64);
    let start = Instant::now() + Duration::from_millis(100);
    let measure_from = start + a.warmup;
    let total = ((a.warmup + a.duration).as_secs_f64() * a.rate as f64).round() as u64;
    let (mut missed, mut issued) = (0u64, 0u64);
    eprintln!(
        "relay-latency: tenant {tenant} (partition {partition} of {}); {} cmd/s open loop, warm-up {:?}, duration {:?}",
        a.topic, a.rate, a.warmup, a.duration
    );
    for i in 0..total {
        let due = start + interval.mul_f64(i as f64);
        tokio::time::sleep_until(due.into()).await;
        let measured = due >= measure_from;
        let Ok(permit) = sem.clone().try_acquire_owned() else {
            if measured {
                missed += 1;
            }
            continue;
        };
        if measured {
            issued += 1;
        }
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
    let sent_s = (Instant::now() - measure_from).as_secs_f64();
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
        "issued": issued,
        "missed_no_slot": missed,
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

// ------------------------------------------------------------- raw-latency ---

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
    #[arg(long, default_value = "20s", value_parser = crate::parse_duration)]
    duration: Duration,
    #[arg(long, default_value = "3s", value_parser = crate::parse_duration)]
    warmup: Duration,
    #[arg(long, default_value = "5ms", value_parser = crate::parse_duration)]
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
    let interval = Duration::from_secs_f64(1.0 / a.rate as f64);
    let start = Instant::now() + Duration::from_millis(100);
    let measure_from = start + a.warmup;
    let total = ((a.warmup + a.duration).as_secs_f64() * a.rate as f64).round() as u64;
    let mut pending = FuturesUnordered::new();
    // Per message, in send order: (measured, send µs).
    let mut sent: Vec<(bool, i64)> = Vec::with_capacity(total as usize);
    let (mut acked, mut failed, mut enqueue_errors) = (0u64, 0u64, 0u64);
    let mut ack = hist();
    eprintln!(
        "raw-latency: {} msg/s open loop to {}/{}, warm-up {:?}, duration {:?}; {} messages from the log ({avg:.0} bytes on average)",
        a.rate, a.topic, a.partition, a.warmup, a.duration, msgs.len()
    );
    for i in 0..total {
        let due = start + interval.mul_f64(i as f64);
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
                sent.push((due >= measure_from, sent_us));
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
