//! Runs one projection: reads the log after its checkpoint, applies a batch and advances the
//! checkpoint in the same transaction. Instances coordinate through a transaction-scoped
//! advisory lock per projection, so a batch is applied by exactly one of them.

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;
use tokio_util::sync::CancellationToken;

use crate::listener::Wakeup;
use crate::log::{self, LogPosition};
use crate::projection::{execute, Projection, ProjectionError};

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Applied this many events and advanced the checkpoint.
    Applied(usize, LogPosition),
    /// Nothing new below the horizon.
    Idle,
    /// Another instance is applying a batch of this projection right now.
    Busy,
}

#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error("database pool: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error(transparent)]
    Projection(#[from] ProjectionError),
}

impl From<tokio_postgres::Error> for RunnerError {
    fn from(e: tokio_postgres::Error) -> Self {
        RunnerError::Projection(e.into())
    }
}

pub struct Runner {
    pool: Pool,
    projection: Arc<dyn Projection>,
    schema: String,
    batch_size: i64,
    linger: Duration,
}

impl Runner {
    /// A runner over the schema `schema` (`projections` for live read models).
    pub fn new(pool: Pool, projection: Arc<dyn Projection>, schema: &str, batch_size: i64) -> Self {
        Self {
            pool,
            projection,
            schema: schema.to_owned(),
            batch_size,
            linger: Duration::ZERO,
        }
    }

    /// After a wake-up, wait this long before reading, so that under load one transaction
    /// applies a batch instead of one event at a time. Costs at most `linger` of lag.
    pub fn with_linger(mut self, linger: Duration) -> Self {
        self.linger = linger;
        self
    }

    pub fn name(&self) -> &'static str {
        self.projection.name()
    }

    /// Applies at most one batch. Tests drive projections deterministically through this.
    pub async fn step(&self) -> Result<Step, RunnerError> {
        let name = self.projection.name();
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // Neither the lock nor the reads assign a transaction id, so this transaction does not
        // hold back the horizon it reads under.
        let lock = tx
            .prepare_cached(
                "SELECT pg_try_advisory_xact_lock(hashtextextended('projection:' || $1 || ':' || $2, 0))",
            )
            .await?;
        let locked: bool = tx.query_one(&lock, &[&self.schema, &name]).await?.get(0);
        if !locked {
            return Ok(Step::Busy);
        }
        tx.batch_execute(&format!("SET LOCAL search_path TO {}, public", self.schema))
            .await?;
        let checkpoint = tx
            .prepare_cached("SELECT tx_id::text::bigint, position FROM checkpoints WHERE name = $1")
            .await?;
        let row = tx.query_one(&checkpoint, &[&name]).await?;
        let from = LogPosition {
            tx_id: row.get(0),
            position: row.get(1),
        };
        let events = log::read_after(&tx, from, self.batch_size)
            .await
            .map_err(ProjectionError::from)?;
        let Some(last) = events.last() else {
            return Ok(Step::Idle);
        };
        let to = LogPosition {
            tx_id: last.tx_id,
            position: last.position,
        };
        for event in &events {
            self.projection.apply(&tx, event).await?;
        }
        execute(
            &tx,
            "UPDATE checkpoints SET tx_id = $2::text::xid8, position = $3, updated_at = now() \
             WHERE name = $1",
            &[&name, &to.tx_id.to_string(), &to.position],
        )
        .await?;
        tx.commit().await?;
        metrics::counter!("charter_projection_events_total", "projection" => name)
            .increment(events.len() as u64);
        Ok(Step::Applied(events.len(), to))
    }

    /// Applies batches until the log is drained.
    pub async fn catch_up(&self) -> Result<usize, RunnerError> {
        let mut total = 0;
        loop {
            match self.step().await? {
                Step::Applied(n, _) => total += n,
                Step::Idle | Step::Busy => return Ok(total),
            }
        }
    }

    /// Follows the log until shutdown: wakes on NOTIFY, polls every `poll` as a fallback, and
    /// backs off exponentially while a batch keeps failing.
    pub async fn run(self, mut wakeup: Wakeup, poll: Duration, shutdown: CancellationToken) {
        let name = self.projection.name();
        let mut failures: u32 = 0;
        while !shutdown.is_cancelled() {
            let pause = match self.step().await {
                Ok(Step::Applied(..)) => {
                    failures = 0;
                    continue;
                }
                Ok(Step::Idle) | Ok(Step::Busy) => {
                    failures = 0;
                    poll
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    metrics::counter!("charter_projection_errors_total", "projection" => name)
                        .increment(1);
                    let backoff = Duration::from_millis(100) * 2u32.saturating_pow(failures.min(8));
                    tracing::error!(projection = name, error = %e, attempt = failures,
                        "projection batch failed; retrying");
                    backoff.min(Duration::from_secs(30))
                }
            };
            tokio::select! {
                _ = wakeup.changed() => tokio::time::sleep(self.linger).await,
                _ = tokio::time::sleep(pause) => {}
                _ = shutdown.cancelled() => {}
            }
        }
    }
}
