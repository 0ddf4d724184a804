//! Phase 2 of a replay: the live runners paused, the shadow brought to their checkpoints,
//! every table compared row for row (and promoted when asked), in one transaction.

use std::time::{Duration, Instant};

use charter_log::checkpoint::{self, LIVE_SCHEMA};
use charter_log::LogPosition;
use deadpool_postgres::Transaction;
use serde::Serialize;

use super::fan_out::catch_up;
use super::{behind, live_at, Replay, ReplayError};
use crate::runner::{Runner, LOCK_KEY};

/// Columns that legitimately differ between a live table and its rebuild.
const VOLATILE: [(&str, &str); 3] = [
    // When the checkpoint row was last written, not what it says.
    ("checkpoints", "updated_at"),
    // An identity value and the wall-clock time of a failure: the failure itself (projection,
    // event, error, attempts) is compared.
    ("failed_events", "id"),
    ("failed_events", "failed_at"),
];

/// How many differing rows a report samples, per table and direction.
pub const SAMPLE_ROWS: i64 = 10;

/// One table, live against shadow.
#[derive(Debug, Clone, Serialize)]
pub struct TableReport {
    pub table: String,
    pub live_rows: i64,
    pub shadow_rows: i64,
    /// Order-independent: the sum of a 64-bit digest of every row.
    pub live_checksum: String,
    pub shadow_checksum: String,
    /// Up to [`SAMPLE_ROWS`] rows (as JSON) only live has, and only the shadow has.
    pub live_only: Vec<String>,
    pub shadow_only: Vec<String>,
}

impl TableReport {
    pub fn identical(&self) -> bool {
        self.live_rows == self.shadow_rows
            && self.live_checksum == self.shadow_checksum
            && self.live_only.is_empty()
            && self.shadow_only.is_empty()
    }
}

impl Replay {
    /// The tables compared: those the projections own, and their rows of `checkpoints` and
    /// `failed_events`.
    fn compared_tables(&self) -> Vec<&'static str> {
        let mut tables: Vec<&'static str> = self
            .projections
            .iter()
            .flat_map(|p| p.tables().iter().copied())
            .collect();
        tables.extend(["checkpoints", "failed_events"]);
        tables
    }

    /// Phase 2: pauses the live projections, brings the shadow to exactly their checkpoints,
    /// compares every table and, with `promote`, replaces the live rows with the shadow's, all
    /// in one transaction. Waits at most `wait` for live projections to reach `target` first.
    ///
    /// A live projection that never ran (its checkpoint at the start of the log) may be
    /// promoted over from a shadow that is ahead of it: that is an initial load.
    pub async fn compare(
        &self,
        target: LogPosition,
        promote: bool,
        wait: Duration,
    ) -> Result<(Vec<TableReport>, bool), ReplayError> {
        let names = self.names();
        self.wait_for_live(target, promote, wait).await?;
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // The pool may commit asynchronously; a promotion is durable before it is reported.
        tx.batch_execute("SET LOCAL lock_timeout = '60s'; SET LOCAL synchronous_commit = on")
            .await?;
        let lock = format!("SELECT pg_advisory_xact_lock({LOCK_KEY})");
        let mut sorted = names.clone();
        sorted.sort();
        for name in &sorted {
            tx.execute(&lock, &[&LIVE_SCHEMA, name]).await?;
        }
        // The live runners are paused: their checkpoints stand still until this commits.
        let live: Vec<(String, LogPosition)> = checkpoint::all(&tx, LIVE_SCHEMA).await?;
        for p in &self.projections {
            let at = live_at(&live, p.name());
            if behind(at, target, promote) {
                return Err(ReplayError::LiveBehind {
                    projection: p.name(),
                    live: at,
                    target,
                });
            }
            if at > target {
                let runner =
                    Runner::new(self.pool.clone(), p.clone(), &self.schema, self.batch_size)
                        .with_until(at);
                catch_up(&runner).await?;
            }
        }
        let mut tables = Vec::new();
        for table in self.compared_tables() {
            tables.push(self.compare_table(&tx, table, &names).await?);
        }
        let promoted = if promote {
            self.promote(&tx, &names).await?;
            true
        } else {
            false
        };
        tx.commit().await?;
        Ok((tables, promoted))
    }

    async fn wait_for_live(
        &self,
        target: LogPosition,
        promote: bool,
        wait: Duration,
    ) -> Result<(), ReplayError> {
        let deadline = Instant::now() + wait;
        loop {
            let live = checkpoint::all(&self.pool.get().await?, LIVE_SCHEMA).await?;
            let behind = self.projections.iter().find_map(|p| {
                let at = live_at(&live, p.name());
                behind(at, target, promote).then_some((p.name(), at))
            });
            match behind {
                None => return Ok(()),
                Some((projection, live)) if Instant::now() >= deadline => {
                    return Err(ReplayError::LiveBehind {
                        projection,
                        live,
                        target,
                    })
                }
                Some(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    async fn compare_table(
        &self,
        tx: &Transaction<'_>,
        table: &str,
        names: &[String],
    ) -> Result<TableReport, ReplayError> {
        let columns: Vec<String> = tx
            .query(
                "SELECT column_name::text FROM information_schema.columns \
                 WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
                &[&LIVE_SCHEMA, &table],
            )
            .await?
            .iter()
            .map(|r| r.get::<_, String>(0))
            .filter(|c| !VOLATILE.contains(&(table, c.as_str())))
            .map(|c| format!("\"{c}\""))
            .collect();
        let columns = columns.join(", ");
        let filter = match table {
            "checkpoints" => "WHERE name = ANY($1)",
            "failed_events" => "WHERE projection = ANY($1)",
            _ => "WHERE $1::text[] IS NOT NULL",
        };
        let select = |schema: &str| format!("SELECT {columns} FROM {schema}.{table} {filter}");
        let stats = |schema: &str| {
            format!(
                "SELECT count(*), COALESCE(sum(('x' || left(md5(ROW({columns})::text), 16))\
                 ::bit(64)::bigint), 0)::text FROM {schema}.{table} {filter}"
            )
        };
        let live = tx.query_one(&stats(LIVE_SCHEMA), &[&names]).await?;
        let shadow = tx.query_one(&stats(&self.schema), &[&names]).await?;
        let mut report = TableReport {
            table: table.to_owned(),
            live_rows: live.get(0),
            shadow_rows: shadow.get(0),
            live_checksum: live.get(1),
            shadow_checksum: shadow.get(1),
            live_only: Vec::new(),
            shadow_only: Vec::new(),
        };
        if report.live_rows != report.shadow_rows || report.live_checksum != report.shadow_checksum
        {
            let except = |a: &str, b: &str| {
                format!(
                    "SELECT row_to_json(d)::text FROM ({} EXCEPT ALL {}) d LIMIT {SAMPLE_ROWS}",
                    select(a),
                    select(b)
                )
            };
            let rows = |rows: Vec<tokio_postgres::Row>| rows.iter().map(|r| r.get(0)).collect();
            report.live_only = rows(
                tx.query(&except(LIVE_SCHEMA, &self.schema), &[&names])
                    .await?,
            );
            report.shadow_only = rows(
                tx.query(&except(&self.schema, LIVE_SCHEMA), &[&names])
                    .await?,
            );
        }
        Ok(report)
    }
}
