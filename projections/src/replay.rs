//! Replay: rebuilds read models from position 0 into a shadow schema, compares them with the
//! live ones table by table and, when asked, promotes the shadow. It reads the log and writes
//! only to the shadow schema (and, on promotion, to the live read models): never to the event
//! store's outbox, so nothing reaches Kafka. See docs/adr/0005-replay-shadow-and-promotion.md.
//!
//! A replay runs in two phases, both safe while the service serves traffic:
//! 1. **Rebuild.** The log up to its head at the start is read once and fed to one
//!    [`Runner`] per projection, each writing its own shadow tables (unlogged: they are
//!    scratch until promoted).
//! 2. **Freeze and compare.** One transaction takes the live projections' advisory locks, so
//!    live runners (of every instance) pause where they are; the shadow catches up to exactly
//!    those checkpoints; then every table is compared, and promoted when asked, in that
//!    transaction. Commands are never blocked; live read models lag for the duration.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use charter_events::RecordedEvent;
use deadpool_postgres::{GenericClient, Pool, Transaction};
use serde::Serialize;

use crate::projection::Projection;
use crate::runner::{Runner, RunnerError, Step, LOCK_KEY};
use charter_log::checkpoint::{self, LIVE_SCHEMA};
use charter_log::reader::{self, LogError};
use charter_log::LogPosition;

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

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("database pool: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("database: {}", describe(.0))]
    Db(#[from] tokio_postgres::Error),
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("shadow {projection}: {}", chain(.source))]
    Runner {
        projection: String,
        #[source]
        source: RunnerError,
    },
    #[error("unknown projection {name:?}; known: {known}")]
    UnknownProjection { name: String, known: String },
    #[error(
        "live projection {projection} stands at {live}, behind the replay's target {target}; \
         are the projection runners running?"
    )]
    LiveBehind {
        projection: &'static str,
        live: LogPosition,
        target: LogPosition,
    },
    #[error("the shadow recorded {0} failed event(s); refusing to promote it")]
    ShadowFailed(i64),
    #[error("a replay task stopped: {0}")]
    Task(String),
}

/// The server's message (and where it points) rather than tokio-postgres' bare "db error".
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => match db.where_() {
            Some(at) => format!("{}: {} ({at})", db.code().code(), db.message()),
            None => format!("{}: {}", db.code().code(), db.message()),
        },
        None => e.to_string(),
    }
}

/// An error and its causes, with the server's message for a database error.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        match c.downcast_ref::<tokio_postgres::Error>() {
            Some(db) => text = format!("{text}: {}", describe(db)),
            None => text = format!("{text}: {c}"),
        }
        cause = c.source();
    }
    text
}

/// How far the rebuild has got: events every projection has applied, of `total`.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub applied: u64,
    pub total: u64,
}

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

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema: String,
    pub projections: Vec<&'static str>,
    /// The head of the log when the replay started.
    pub target: String,
    /// Events read from the log by the rebuild.
    pub events: u64,
    pub rebuild_seconds: f64,
    pub events_per_second: f64,
    /// When each projection's rebuild finished, in seconds from the start: the last one bounds
    /// the replay.
    pub projection_seconds: Vec<(&'static str, f64)>,
    pub tables: Vec<TableReport>,
    /// The shadow replaced the live read models.
    pub promoted: bool,
}

impl Report {
    pub fn identical(&self) -> bool {
        self.tables.iter().all(TableReport::identical)
    }
}

/// The projections named in `names` (every projection when empty), in [`crate::all`]'s order.
pub fn select(names: &[String]) -> Result<Vec<Arc<dyn Projection>>, ReplayError> {
    let all = crate::all();
    if let Some(name) = names
        .iter()
        .find(|n| !all.iter().any(|p| p.name() == n.as_str()))
    {
        return Err(ReplayError::UnknownProjection {
            name: name.clone(),
            known: all.iter().map(|p| p.name()).collect::<Vec<_>>().join(", "),
        });
    }
    Ok(all
        .into_iter()
        .filter(|p| names.is_empty() || names.iter().any(|n| n == p.name()))
        .collect())
}

pub struct Replay {
    /// Connects as the schema owner: the replay creates and drops a schema.
    pool: Pool,
    projections: Vec<Arc<dyn Projection>>,
    schema: String,
    batch_size: i64,
}

impl Replay {
    /// A replay of `projections` into a new shadow schema. `pool` needs one connection per
    /// projection plus two.
    pub fn new(pool: Pool, projections: Vec<Arc<dyn Projection>>, batch_size: i64) -> Self {
        Self {
            pool,
            projections,
            schema: format!("shadow_{}", uuid::Uuid::now_v7().simple()),
            batch_size,
        }
    }

    pub fn schema(&self) -> &str {
        &self.schema
    }

    fn names(&self) -> Vec<String> {
        self.projections
            .iter()
            .map(|p| p.name().to_owned())
            .collect()
    }

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

    /// Creates the shadow schema: an unlogged copy of every live table (also those a
    /// projection writes without owning, such as the policy outbox, which therefore never
    /// sees a replayed row) and checkpoints at the start of the log.
    pub async fn create_shadow(&self) -> Result<(), ReplayError> {
        let client = self.pool.get().await?;
        let live: Vec<String> = client
            .query(
                "SELECT tablename::text FROM pg_tables WHERE schemaname = $1 ORDER BY 1",
                &[&LIVE_SCHEMA],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let mut ddl = format!("CREATE SCHEMA {};", self.schema);
        for t in &live {
            ddl.push_str(&format!(
                "CREATE UNLOGGED TABLE {}.{t} (LIKE {LIVE_SCHEMA}.{t} INCLUDING ALL);",
                self.schema
            ));
        }
        client.batch_execute(&ddl).await?;
        let names: Vec<&str> = self.projections.iter().map(|p| p.name()).collect();
        checkpoint::ensure(&client, &self.schema, &names).await?;
        Ok(())
    }

    pub async fn drop_shadow(&self) -> Result<(), ReplayError> {
        let client = self.pool.get().await?;
        client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema))
            .await?;
        Ok(())
    }

    /// Phase 1: applies the log up to `target` to every shadow projection. The log is read
    /// once and each batch handed to every projection's runner, which applies it in its own
    /// transaction and connection. `progress` is called about every 250 ms. Returns the number
    /// of events read and when each projection finished.
    pub async fn rebuild(
        &self,
        target: LogPosition,
        mut progress: impl FnMut(Progress),
    ) -> Result<(u64, Vec<(&'static str, f64)>), ReplayError> {
        let total =
            reader::count_range(&self.pool.get().await?, LogPosition::START, target).await?;
        let (applied, all) = fan_out(
            self.pool.clone(),
            &self.projections,
            &self.schema,
            self.batch_size,
            LogPosition::START,
            target,
        );
        let mut all = Box::pin(all);
        let names: Vec<&'static str> = self.projections.iter().map(|p| p.name()).collect();
        let slowest = || {
            applied
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .min()
                .unwrap_or(total)
        };
        loop {
            tokio::select! {
                done = &mut all => {
                    let (read, finished) = done?;
                    progress(Progress { applied: read, total: read.max(total) });
                    return Ok((read, names.into_iter().zip(finished).collect()));
                }
                _ = tokio::time::sleep(Duration::from_millis(250)) => {
                    progress(Progress { applied: slowest(), total });
                }
            }
        }
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

    /// Replaces the live rows of the projections' tables, failures and checkpoints with the
    /// shadow's. DELETE rather than TRUNCATE: readers keep reading the old rows until the
    /// commit, then see the new ones, and the live tables keep their triggers and grants.
    async fn promote(&self, tx: &Transaction<'_>, names: &[String]) -> Result<(), ReplayError> {
        let shadow = &self.schema;
        let failed: i64 = tx
            .query_one(
                &format!("SELECT count(*) FROM {shadow}.failed_events WHERE projection = ANY($1)"),
                &[&names],
            )
            .await?
            .get(0);
        if failed > 0 {
            return Err(ReplayError::ShadowFailed(failed));
        }
        let mut sql = String::new();
        for p in &self.projections {
            for t in p.tables() {
                sql.push_str(&format!(
                    "DELETE FROM {LIVE_SCHEMA}.{t}; \
                     INSERT INTO {LIVE_SCHEMA}.{t} OVERRIDING SYSTEM VALUE SELECT * FROM {shadow}.{t};"
                ));
            }
        }
        tx.batch_execute(&sql).await?;
        tx.execute(
            &format!("DELETE FROM {LIVE_SCHEMA}.failed_events WHERE projection = ANY($1)"),
            &[&names],
        )
        .await?;
        tx.execute(
            &format!(
                "INSERT INTO {LIVE_SCHEMA}.checkpoints (name, tx_id, position) \
                 SELECT name, tx_id, position FROM {shadow}.checkpoints WHERE name = ANY($1) \
                 ON CONFLICT (name) DO UPDATE SET tx_id = EXCLUDED.tx_id, \
                 position = EXCLUDED.position, updated_at = now()"
            ),
            &[&names],
        )
        .await?;
        // Anything may have changed: token verifiers drop their caches.
        tx.batch_execute("SELECT pg_notify('charter_auth', '')")
            .await?;
        Ok(())
    }

    /// The whole replay: create the shadow, rebuild up to the head of the log, compare (and
    /// promote when asked), drop the shadow unless `keep`.
    pub async fn run(
        &self,
        promote: bool,
        keep: bool,
        wait: Duration,
        progress: impl FnMut(Progress),
    ) -> Result<Report, ReplayError> {
        let target = reader::head(&self.pool.get().await?).await?;
        self.create_shadow().await?;
        let result = async {
            let started = Instant::now();
            let (events, projection_seconds) = self.rebuild(target, progress).await?;
            let rebuilt = started.elapsed().as_secs_f64();
            let (tables, promoted) = self.compare(target, promote, wait).await?;
            Ok(Report {
                schema: self.schema.clone(),
                projections: self.projections.iter().map(|p| p.name()).collect(),
                target: target.to_string(),
                events,
                rebuild_seconds: rebuilt,
                events_per_second: events as f64 / rebuilt.max(1e-9),
                projection_seconds,
                tables,
                promoted,
            })
        }
        .await;
        if !keep {
            self.drop_shadow().await?;
        }
        result
    }
}

/// Where the live checkpoint of `name` stands (the start of the log when it has none).
fn live_at(live: &[(String, LogPosition)], name: &str) -> LogPosition {
    live.iter()
        .find(|(n, _)| n == name)
        .map_or(LogPosition::START, |(_, at)| *at)
}

/// Whether a live projection at `at` is too far behind `target` to be compared (or promoted
/// over). A projection that never ran may be promoted over: that is an initial load.
fn behind(at: LogPosition, target: LogPosition, promote: bool) -> bool {
    at < target && !(promote && at == LogPosition::START)
}

/// Reads the log up to `target` once, handing every batch to every follower.
/// Applies the log after `from` up to `target` to each of `projections` in `schema`: one
/// reader hands every batch to one [`Runner`] per projection, each applying it in its own
/// transaction and connection, in parallel (a runner whose checkpoint is past a batch passes
/// over it). The replay's rebuild, and a live instance catching up from far behind, both run
/// on this. Returns each projection's count of applied events, and a future of the events
/// read and, per projection, the seconds until it finished.
#[allow(clippy::type_complexity)]
pub fn fan_out(
    pool: Pool,
    projections: &[Arc<dyn Projection>],
    schema: &str,
    batch_size: i64,
    from: LogPosition,
    target: LogPosition,
) -> (
    Vec<Arc<AtomicU64>>,
    impl std::future::Future<Output = Result<(u64, Vec<f64>), ReplayError>>,
) {
    let started = Instant::now();
    let mut senders = Vec::new();
    let mut workers = Vec::new();
    let mut applied = Vec::new();
    for p in projections {
        // Two batches in flight per projection: the reader stays ahead, memory stays flat.
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        senders.push(tx);
        let count = Arc::new(AtomicU64::new(0));
        applied.push(count.clone());
        let runner = Runner::new(pool.clone(), p.clone(), schema, batch_size).with_until(target);
        workers.push(tokio::spawn(async move {
            follow(runner, rx, count).await?;
            Ok::<_, ReplayError>(started.elapsed().as_secs_f64())
        }));
    }
    let reader = tokio::spawn(read(pool, from, target, batch_size, senders));
    let all = async move {
        let read = reader
            .await
            .map_err(|e| ReplayError::Task(e.to_string()))??;
        let mut finished = Vec::new();
        for w in futures::future::join_all(workers).await {
            finished.push(w.map_err(|e| ReplayError::Task(e.to_string()))??);
        }
        Ok::<_, ReplayError>((read, finished))
    };
    (applied, all)
}

async fn read(
    pool: Pool,
    from: LogPosition,
    target: LogPosition,
    batch_size: i64,
    followers: Vec<tokio::sync::mpsc::Sender<(LogPosition, Arc<Vec<RecordedEvent>>)>>,
) -> Result<u64, ReplayError> {
    let client = pool.get().await?;
    let mut after = from;
    let mut read = 0u64;
    loop {
        let events = reader::read_range(&client, after, target, batch_size).await?;
        let Some(last) = events.last() else {
            return Ok(read);
        };
        let next = LogPosition {
            tx_id: last.tx_id,
            position: last.position,
        };
        read += events.len() as u64;
        let batch = Arc::new(events);
        for f in &followers {
            // A follower that stopped reports its own error.
            let _ = f.send((after, batch.clone())).await;
        }
        after = next;
    }
}

/// Applies every batch it is handed, then whatever the runner still has up to its bound.
async fn follow(
    runner: Runner,
    mut batches: tokio::sync::mpsc::Receiver<(LogPosition, Arc<Vec<RecordedEvent>>)>,
    applied: Arc<AtomicU64>,
) -> Result<(), ReplayError> {
    while let Some((after, batch)) = batches.recv().await {
        let Some(last) = batch.last() else { continue };
        let end = LogPosition {
            tx_id: last.tx_id,
            position: last.position,
        };
        let mut failures = 0;
        loop {
            match runner.step_with(after, &batch).await {
                Ok(Step::Applied(_, to)) | Ok(Step::Poisoned { at: to, .. }) if to < end => {
                    failures = 0
                }
                Ok(Step::Applied(..)) | Ok(Step::Poisoned { .. }) | Ok(Step::Idle) => break,
                // A previous step's rollback can hold the lock for a moment.
                Ok(Step::Busy) => tokio::time::sleep(Duration::from_millis(5)).await,
                Err(e) => {
                    failures += 1;
                    if e.is_transient() || failures > 4 * MAX_ISOLATION {
                        return Err(ReplayError::Runner {
                            projection: runner.name().to_owned(),
                            source: e,
                        });
                    }
                }
            }
        }
        applied.fetch_add(batch.len() as u64, Ordering::Relaxed);
    }
    catch_up(&runner).await
}

/// Enough retries for the runner to isolate a failing event and record it as poison.
const MAX_ISOLATION: u32 = crate::runner::DEFAULT_MAX_ATTEMPTS;

/// Steps `runner` until it has nothing left up to its bound.
async fn catch_up(runner: &Runner) -> Result<(), ReplayError> {
    let mut failures = 0;
    loop {
        match runner.step().await {
            Ok(Step::Idle) => return Ok(()),
            Ok(Step::Busy) => tokio::time::sleep(Duration::from_millis(5)).await,
            Ok(_) => failures = 0,
            Err(e) => {
                failures += 1;
                if e.is_transient() || failures > 4 * MAX_ISOLATION {
                    return Err(ReplayError::Runner {
                        projection: runner.name().to_owned(),
                        source: e,
                    });
                }
            }
        }
    }
}
