//! `outbox-backlog`: outbox rows for the first N published events of a seeded log.

use std::time::Instant;

use clap::Args;
use serde_json::json;

use super::messages::internal_types;
use crate::stats::round;

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
pub async fn outbox_backlog(a: BacklogArgs) -> i32 {
    let internal = internal_types();
    let pool = match crate::db::pool(&a.database_url, 1) {
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
