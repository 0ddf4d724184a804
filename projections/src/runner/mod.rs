//! Runs a projection, or a group of projections that must move together: reads the log after
//! their checkpoints, applies a batch to each and advances each checkpoint, all in one
//! transaction. Instances coordinate through a transaction-scoped advisory lock per
//! projection, so a batch is applied by exactly one of them.
//!
//! A group is what keeps two read models at the same point of the log: whoever reads both
//! in one statement sees them agree. Entitlements and the `policy_version` counters are one
//! group: a token minted from them carries permissions and a counter of the same moment, so
//! a revoked permission can never ride on a current counter. Each member keeps its own
//! checkpoint (a replay may promote one alone): a member behind the others is brought up in
//! the same transactions, and none applies an event twice.

mod one_at_a_time;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use charter_events::RecordedEvent;

use charter_log::listener::Wakeup;
use charter_log::reader;
use charter_log::LogPosition;
use deadpool_postgres::{Pool, Transaction};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::failures::{self, EventRef, Quarantine};
use crate::projection::{execute, Projection, ProjectionError};

/// How many consecutive times one event may fail on its own before it is recorded in
/// `failed_events` and skipped.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;

/// The advisory lock of projection `$2` in schema `$1`, taken by whoever applies a batch of it.
pub const LOCK_KEY: &str = "hashtextextended('projection:' || $1 || ':' || $2, 0)";

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Applied this many events and advanced the checkpoint.
    Applied(usize, LogPosition),
    /// Recorded this event in `failed_events` and advanced the checkpoint past it.
    Poisoned { event_id: Uuid, at: LogPosition },
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
    /// Applying (or reading) one event failed.
    #[error("event {event_id} ({event_type}) at {at}: {source}")]
    Event {
        event_id: Uuid,
        event_type: String,
        at: LogPosition,
        #[source]
        source: ProjectionError,
    },
}

impl RunnerError {
    /// True when the failure says nothing about the events being applied (see
    /// [`failures::is_transient_projection`]): it is retried with backoff and never counts
    /// towards poisoning an event. A pool that cannot hand out a connection is an outage.
    pub fn is_transient(&self) -> bool {
        match self {
            RunnerError::Pool(_) => true,
            RunnerError::Projection(e) | RunnerError::Event { source: e, .. } => {
                failures::is_transient_projection(e)
            }
        }
    }

    fn event(event: &EventRef, source: ProjectionError) -> Self {
        RunnerError::Event {
            event_id: event.event_id,
            event_type: event.event_type.clone(),
            at: event.at,
            source,
        }
    }
}

impl From<tokio_postgres::Error> for RunnerError {
    fn from(e: tokio_postgres::Error) -> Self {
        RunnerError::Projection(e.into())
    }
}

pub struct Runner {
    pool: Pool,
    /// Applied in this order, in one transaction per step.
    projections: Vec<Arc<dyn Projection>>,
    /// `a+b` for a group.
    name: String,
    schema: String,
    batch_size: i64,
    until: LogPosition,
    linger: Duration,
    signal: Option<charter_log::listener::Signal>,
    quarantine: Mutex<Quarantine>,
}

impl Runner {
    /// A runner of one projection over the schema `schema` (`projections` for live read
    /// models).
    pub fn new(pool: Pool, projection: Arc<dyn Projection>, schema: &str, batch_size: i64) -> Self {
        Self::group(pool, vec![projection], schema, batch_size)
    }

    /// A runner applying every batch to all of `projections`, in order, in one transaction.
    pub fn group(
        pool: Pool,
        projections: Vec<Arc<dyn Projection>>,
        schema: &str,
        batch_size: i64,
    ) -> Self {
        assert!(!projections.is_empty(), "a runner needs a projection");
        let name = projections
            .iter()
            .map(|p| p.name())
            .collect::<Vec<_>>()
            .join("+");
        Self {
            pool,
            projections,
            name,
            schema: schema.to_owned(),
            batch_size,
            until: LogPosition::END,
            linger: Duration::ZERO,
            signal: None,
            quarantine: Mutex::new(Quarantine::new(DEFAULT_MAX_ATTEMPTS)),
        }
    }

    /// After a wake-up, wait this long before reading, so that under load one transaction
    /// applies a batch instead of one event at a time. Costs at most `linger` of lag.
    /// After committing a batch, wake this process's followers (the relay publishes what
    /// projections write to their outboxes).
    pub fn with_signal(mut self, signal: charter_log::listener::Signal) -> Self {
        self.signal = Some(signal);
        self
    }

    /// Never apply an event after `until` (replay stops at a fixed point of the log).
    pub fn with_until(mut self, until: LogPosition) -> Self {
        self.until = until;
        self
    }

    pub fn with_linger(mut self, linger: Duration) -> Self {
        self.linger = linger;
        self
    }

    /// An event that fails on its own this many consecutive times (transient database errors
    /// aside) is recorded in `failed_events` and skipped. At least 1; default
    /// [`DEFAULT_MAX_ATTEMPTS`].
    pub fn with_max_attempts(self, max_attempts: u32) -> Self {
        Self {
            quarantine: Mutex::new(Quarantine::new(max_attempts)),
            ..self
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn quarantine(&self) -> MutexGuard<'_, Quarantine> {
        // The guard is never held across an await or a panic-prone call; recover anyway.
        self.quarantine.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies at most one batch. Tests drive projections deterministically through this.
    ///
    /// After a batch failed (other than transiently), the following steps apply one event at a
    /// time, so that the events before the culprit land. When that event fails on its own
    /// `max_attempts` consecutive times, the step records it in `failed_events`, advances the
    /// checkpoint past it in the same transaction and returns [`Step::Poisoned`]. Every other
    /// failure is returned as an error, and the caller retries (with a backoff).
    pub async fn step(&self) -> Result<Step, RunnerError> {
        let batch_size = self.quarantine().batch_size(self.batch_size);
        let mut client = self.pool.get().await?;
        let Some((tx, at)) = self.begin(&mut client).await? else {
            return Ok(Step::Busy);
        };
        let from = at.from();
        if batch_size == 1 {
            return self.step_one(tx, &at).await;
        }
        let events = match reader::read_range(&tx, from, self.until, batch_size).await {
            Ok(events) => events,
            Err(e) => {
                let e = ProjectionError::from(e);
                self.quarantine().batch_failed(&e, batch_size as usize);
                return Err(e.into());
            }
        };
        self.apply_events(tx, &at, &events).await
    }

    /// Like [`Runner::step`], with the batch read by the caller: `events` must be the whole
    /// log after `after`, in order, up to its last element (one reader can then feed many
    /// runners). Events the checkpoint has passed are skipped. When the checkpoint is behind
    /// `after`, or a failure is being isolated, the step reads the log itself instead.
    pub async fn step_with(
        &self,
        after: LogPosition,
        events: &[RecordedEvent],
    ) -> Result<Step, RunnerError> {
        if self.quarantine().batch_size(self.batch_size) == 1 {
            return self.step().await;
        }
        let mut client = self.pool.get().await?;
        let Some((tx, at)) = self.begin(&mut client).await? else {
            return Ok(Step::Busy);
        };
        let from = at.from();
        if from < after {
            drop(tx);
            drop(client);
            return self.step().await;
        }
        let fresh = events.partition_point(|e| position(e) <= from);
        let until = events.partition_point(|e| position(e) <= self.until);
        self.apply_events(tx, &at, &events[fresh..until.max(fresh)])
            .await
    }

    /// Applies `events` (in order, the first after the earliest checkpoint) to each member,
    /// from after its own checkpoint, and advances every checkpoint in the step's transaction.
    async fn apply_events(
        &self,
        tx: Transaction<'_>,
        at: &Checkpoints,
        events: &[RecordedEvent],
    ) -> Result<Step, RunnerError> {
        let Some(last) = events.last() else {
            return Ok(Step::Idle);
        };
        let to = position(last);
        for (projection, from) in self.projections.iter().zip(&at.0) {
            let fresh = events.partition_point(|e| position(e) <= *from);
            let mine = &events[fresh..];
            if mine.is_empty() {
                continue;
            }
            if let Err((i, e)) = projection.apply_batch(&tx, mine).await {
                let event = &mine[i.min(mine.len() - 1)];
                // Isolate up to the culprit, counted from the start of the whole batch.
                if self.quarantine().batch_failed(&e, fresh + i + 1) {
                    tracing::warn!(projection = projection.name(), event_id = %event.event_id,
                        position = %position(event), error = %e,
                        "projection batch failed; applying its events one at a time");
                }
                return Err(RunnerError::event(&EventRef::from(event), e));
            }
            metrics::counter!("charter_projection_events_total", "projection" => projection.name())
                .increment(mine.len() as u64);
        }
        self.advance(&tx, to).await?;
        tx.commit().await?;
        Ok(Step::Applied(events.len(), to))
    }

    /// Opens the step's transaction: takes every member's lock (`None` when another instance
    /// holds one), points `search_path` at the schema and reads the checkpoints.
    async fn begin<'c>(
        &self,
        client: &'c mut deadpool_postgres::Client,
    ) -> Result<Option<(Transaction<'c>, Checkpoints)>, RunnerError> {
        let tx = client.transaction().await?;
        // Neither the locks nor the reads assign a transaction id, so this transaction does
        // not hold back the horizon it reads under. Every member's lock is tried in one
        // statement (all of them, in the group's order); a lock taken before one that fails
        // is released with the transaction.
        let names: Vec<&str> = self.projections.iter().map(|p| p.name()).collect();
        let lock = tx
            .prepare_cached(&format!(
                "SELECT bool_and(pg_try_advisory_xact_lock({})) \
                 FROM unnest($2::text[]) WITH ORDINALITY AS m(name, ord)",
                LOCK_KEY.replace("$2", "m.name")
            ))
            .await?;
        let locked: Option<bool> = tx.query_one(&lock, &[&self.schema, &names]).await?.get(0);
        if locked != Some(true) {
            return Ok(None);
        }
        tx.batch_execute(&format!("SET LOCAL search_path TO {}, public", self.schema))
            .await?;
        let checkpoint = tx
            .prepare_cached(
                "SELECT name, tx_id::text::bigint, position FROM checkpoints WHERE name = ANY($1)",
            )
            .await?;
        let rows = tx.query(&checkpoint, &[&names]).await?;
        let mut at = Vec::with_capacity(self.projections.len());
        for name in &names {
            let row = rows
                .iter()
                .find(|r| r.get::<_, &str>(0) == *name)
                .ok_or_else(|| {
                    ProjectionError::Invariant(format!("no checkpoint row for projection {name}"))
                })?;
            at.push(LogPosition {
                tx_id: row.get(1),
                position: row.get(2),
            });
        }
        Ok(Some((tx, Checkpoints(at))))
    }

    /// Moves every member's checkpoint to `to` (none is past it: `to` is at or after the
    /// events each one just applied).
    async fn advance(&self, tx: &Transaction<'_>, to: LogPosition) -> Result<(), RunnerError> {
        let names: Vec<&str> = self.projections.iter().map(|p| p.name()).collect();
        execute(
            tx,
            "UPDATE checkpoints SET tx_id = $2::text::xid8, position = $3, updated_at = now() \
             WHERE name = ANY($1) AND (tx_id, position) < ($2::text::xid8, $3)",
            &[&names, &to.tx_id.to_string(), &to.position],
        )
        .await?;
        Ok(())
    }

    /// Applies batches until the log is drained (poison events are recorded and passed).
    pub async fn catch_up(&self) -> Result<usize, RunnerError> {
        let mut total = 0;
        loop {
            match self.step().await? {
                Step::Applied(n, _) => total += n,
                Step::Poisoned { .. } => {}
                Step::Idle | Step::Busy => return Ok(total),
            }
        }
    }

    /// Follows the log until shutdown: wakes on NOTIFY, polls every `poll` as a fallback, and
    /// backs off exponentially while a step keeps failing. A failing event is retried after
    /// its full backoff even when appends keep waking the runner, so `max_attempts` spans real
    /// time; a transient failure is retried as soon as something is appended.
    pub async fn run(self, mut wakeup: Wakeup, poll: Duration, shutdown: CancellationToken) {
        let name = self.name.clone();
        let mut consecutive: u32 = 0;
        while !shutdown.is_cancelled() {
            let (pause, wake_early) = match self.step().await {
                Ok(Step::Applied(..)) | Ok(Step::Poisoned { .. }) => {
                    consecutive = 0;
                    if let Some(signal) = &self.signal {
                        signal.wake_local();
                    }
                    continue;
                }
                Ok(Step::Idle) | Ok(Step::Busy) => {
                    consecutive = 0;
                    (poll, true)
                }
                Err(e) => {
                    consecutive = consecutive.saturating_add(1);
                    metrics::counter!("charter_projection_errors_total", "projection" => name.clone())
                        .increment(1);
                    let backoff =
                        Duration::from_millis(100) * 2u32.saturating_pow(consecutive.min(8));
                    let transient = e.is_transient();
                    tracing::error!(projection = %name, error = %e, attempt = consecutive, transient,
                        "projection step failed; retrying");
                    (backoff.min(Duration::from_secs(30)), transient)
                }
            };
            if wake_early {
                tokio::select! {
                    _ = wakeup.changed() => tokio::time::sleep(self.linger).await,
                    _ = tokio::time::sleep(pause) => {}
                    _ = shutdown.cancelled() => {}
                }
            } else {
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = shutdown.cancelled() => {}
                }
            }
        }
    }
}

/// Where each member of a runner stands, in the runner's order.
struct Checkpoints(Vec<LogPosition>);

impl Checkpoints {
    /// The earliest: the step reads the log after it.
    fn from(&self) -> LogPosition {
        self.0.iter().copied().min().unwrap_or(LogPosition::START)
    }
}

fn position(e: &RecordedEvent) -> LogPosition {
    LogPosition {
        tx_id: e.tx_id,
        position: e.position,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With the database gone, a runner whose every event "failed" many times over still
    /// skips nothing: pool and connection errors never count as attempts.
    #[tokio::test]
    async fn a_database_outage_never_poisons_events() {
        let config: tokio_postgres::Config =
            "host=127.0.0.1 port=1 user=x dbname=x connect_timeout=1"
                .parse()
                .unwrap();
        let manager = deadpool_postgres::Manager::new(config, tokio_postgres::NoTls);
        let pool = Pool::builder(manager)
            .max_size(1)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .unwrap();
        let runner = Runner::new(pool, Arc::new(crate::tenants::Tenants), "projections", 500)
            .with_max_attempts(1);
        for _ in 0..20 {
            let e = runner
                .step()
                .await
                .expect_err("the database is unreachable");
            assert!(e.is_transient(), "{e}");
        }
        assert_eq!(
            runner.quarantine().batch_size(500),
            500,
            "no isolation either"
        );
    }

    #[test]
    fn pool_errors_are_transient_and_broken_invariants_are_not() {
        assert!(RunnerError::Pool(deadpool_postgres::PoolError::Timeout(
            deadpool_postgres::TimeoutType::Wait
        ))
        .is_transient());
        assert!(RunnerError::Pool(deadpool_postgres::PoolError::Closed).is_transient());
        assert!(
            !RunnerError::Projection(ProjectionError::Invariant("touched 0 rows".into()))
                .is_transient()
        );
    }
}
