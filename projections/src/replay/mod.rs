//! Replay: rebuilds read models from position 0 into a shadow schema, compares them with the
//! live ones table by table and, when asked, promotes the shadow. It reads the log and writes
//! only to the shadow schema (and, on promotion, to the live read models): never to the event
//! store's outbox, so nothing reaches Kafka. See docs/adr/0005-replay-shadow-and-promotion.md.
//!
//! A replay runs in two phases, both safe while the service serves traffic:
//! 1. **Rebuild.** The log up to its head at the start is read once and fed to one
//!    [`Runner`](crate::Runner) per projection, each writing its own shadow tables (unlogged: they are
//!    scratch until promoted).
//! 2. **Freeze and compare.** One transaction takes the live projections' advisory locks, so
//!    live runners (of every instance) pause where they are; the shadow catches up to exactly
//!    those checkpoints; then every table is compared, and promoted when asked, in that
//!    transaction. Commands are never blocked; live read models lag for the duration.

mod compare;
mod fan_out;
mod shadow;

use std::sync::Arc;
use std::time::{Duration, Instant};

use charter_log::reader::{self, LogError};
use charter_log::LogPosition;
use deadpool_postgres::Pool;
use serde::Serialize;

use crate::projection::Projection;
use crate::runner::RunnerError;

pub use compare::{TableReport, SAMPLE_ROWS};
pub use fan_out::fan_out;

/// Why a replay failed.
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

/// What a replay found: every compared table, and how long the rebuild took.
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

/// One replay of some projections into its own shadow schema.
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
