//! `relay-drain`: the topic's high-water marks (and the outbox) while a relay drains the
//! backlog.

use std::time::{Duration, Instant};

use clap::Args;
use serde_json::{json, Value};

use super::kafka::{client, high_sum, partitions, watermarks};
use super::{now_us, report};
use crate::stats::round;

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
    #[arg(long, default_value = "100ms", value_parser = crate::duration::parse)]
    poll: Duration,
    /// Give up after this long.
    #[arg(long, default_value = "900s", value_parser = crate::duration::parse)]
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
    let pool = crate::db::pool(&a.database_url, 1).map_err(|e| e.to_string())?;
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
