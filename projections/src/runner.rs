//! Runs one projection: reads the log after its checkpoint, applies a batch and advances the
//! checkpoint in the same transaction. Instances coordinate through a transaction-scoped
//! advisory lock per projection, so a batch is applied by exactly one of them.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use charter_events::RecordedEvent;

use deadpool_postgres::{Pool, Transaction};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::failures::{self, EventRef, Quarantine, Verdict};
use crate::listener::Wakeup;
use crate::log::{self, LogError, LogPosition};
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
    projection: Arc<dyn Projection>,
    schema: String,
    batch_size: i64,
    until: LogPosition,
    linger: Duration,
    signal: Option<crate::listener::Signal>,
    quarantine: Mutex<Quarantine>,
}

impl Runner {
    /// A runner over the schema `schema` (`projections` for live read models).
    pub fn new(pool: Pool, projection: Arc<dyn Projection>, schema: &str, batch_size: i64) -> Self {
        Self {
            pool,
            projection,
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
    pub fn with_signal(mut self, signal: crate::listener::Signal) -> Self {
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

    pub fn name(&self) -> &'static str {
        self.projection.name()
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
        let Some((tx, from)) = self.begin(&mut client).await? else {
            return Ok(Step::Busy);
        };
        if batch_size == 1 {
            return self.step_one(tx, from).await;
        }
        let events = match log::read_range(&tx, from, self.until, batch_size).await {
            Ok(events) => events,
            Err(e) => {
                let e = ProjectionError::from(e);
                self.quarantine().batch_failed(&e, batch_size as usize);
                return Err(e.into());
            }
        };
        self.apply_events(tx, &events).await
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
        let Some((tx, from)) = self.begin(&mut client).await? else {
            return Ok(Step::Busy);
        };
        if from < after {
            drop(tx);
            drop(client);
            return self.step().await;
        }
        let at = |e: &RecordedEvent| LogPosition {
            tx_id: e.tx_id,
            position: e.position,
        };
        let fresh = events.partition_point(|e| at(e) <= from);
        let until = events.partition_point(|e| at(e) <= self.until);
        self.apply_events(tx, &events[fresh..until.max(fresh)])
            .await
    }

    /// Applies `events` (all after the checkpoint, in order) and advances the checkpoint in
    /// the step's transaction.
    async fn apply_events(
        &self,
        tx: Transaction<'_>,
        events: &[RecordedEvent],
    ) -> Result<Step, RunnerError> {
        let name = self.projection.name();
        let Some(last) = events.last() else {
            return Ok(Step::Idle);
        };
        let to = LogPosition {
            tx_id: last.tx_id,
            position: last.position,
        };
        if let Err((i, e)) = self.projection.apply_batch(&tx, events).await {
            let event = &events[i.min(events.len() - 1)];
            if self.quarantine().batch_failed(&e, i + 1) {
                let at = LogPosition {
                    tx_id: event.tx_id,
                    position: event.position,
                };
                tracing::warn!(projection = name, event_id = %event.event_id, position = %at,
                    error = %e, "projection batch failed; applying its events one at a time");
            }
            return Err(RunnerError::event(&EventRef::from(event), e));
        }
        self.advance(&tx, to).await?;
        tx.commit().await?;
        metrics::counter!("charter_projection_events_total", "projection" => name)
            .increment(events.len() as u64);
        Ok(Step::Applied(events.len(), to))
    }

    /// Opens the step's transaction: takes the projection's lock (`None` when another instance
    /// holds it), points `search_path` at the schema and reads the checkpoint.
    async fn begin<'c>(
        &self,
        client: &'c mut deadpool_postgres::Client,
    ) -> Result<Option<(Transaction<'c>, LogPosition)>, RunnerError> {
        let name = self.projection.name();
        let tx = client.transaction().await?;
        // Neither the lock nor the reads assign a transaction id, so this transaction does not
        // hold back the horizon it reads under.
        let lock = tx
            .prepare_cached(&format!("SELECT pg_try_advisory_xact_lock({LOCK_KEY})"))
            .await?;
        let locked: bool = tx.query_one(&lock, &[&self.schema, &name]).await?.get(0);
        if !locked {
            return Ok(None);
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
        Ok(Some((tx, from)))
    }

    async fn advance(&self, tx: &Transaction<'_>, to: LogPosition) -> Result<(), RunnerError> {
        execute(
            tx,
            "UPDATE checkpoints SET tx_id = $2::text::xid8, position = $3, updated_at = now() \
             WHERE name = $1",
            &[&self.projection.name(), &to.tx_id.to_string(), &to.position],
        )
        .await?;
        Ok(())
    }

    /// Applies the one event after `from`, under a savepoint: when the event turns out to be
    /// poison, its failed writes are rolled back and the record of the failure and the
    /// checkpoint past it commit together.
    async fn step_one(&self, tx: Transaction<'_>, from: LogPosition) -> Result<Step, RunnerError> {
        let name = self.projection.name();
        tx.batch_execute("SAVEPOINT event").await?;
        let (event, result) = match log::read_range(&tx, from, self.until, 1).await {
            Ok(events) => match events.first() {
                Some(e) => (EventRef::from(e), self.projection.apply(&tx, e).await),
                None => {
                    self.quarantine().idle();
                    return Ok(Step::Idle);
                }
            },
            // The only read failure that is about the event itself.
            Err(LogError::Metadata { position, source }) => {
                let event = failures::event_at(&tx, position).await?;
                let e = LogError::Metadata { position, source };
                (event, Err(ProjectionError::from(e)))
            }
            Err(e) => return Err(ProjectionError::from(e).into()),
        };
        let error = match result {
            Ok(()) => {
                tx.batch_execute("RELEASE SAVEPOINT event").await?;
                self.advance(&tx, event.at).await?;
                tx.commit().await?;
                self.quarantine().passed(event.event_id, false);
                metrics::counter!("charter_projection_events_total", "projection" => name)
                    .increment(1);
                return Ok(Step::Applied(1, event.at));
            }
            Err(error) => error,
        };
        let verdict = self.quarantine().event_failed(event.event_id, &error);
        // Not poison (yet): the caller logs the error and retries after a backoff.
        let Verdict::Poison { attempts } = verdict else {
            return Err(RunnerError::event(&event, error));
        };
        // Recorded and skipped in one transaction: a crash between the two is impossible.
        tx.batch_execute("ROLLBACK TO SAVEPOINT event").await?;
        failures::record(&tx, name, &event, &error.to_string(), attempts).await?;
        self.advance(&tx, event.at).await?;
        tx.commit().await?;
        self.quarantine().passed(event.event_id, true);
        metrics::counter!("charter_projection_failed_events_total", "projection" => name)
            .increment(1);
        tracing::error!(projection = name, event_id = %event.event_id,
            event_type = %event.event_type, stream_id = %event.stream_id, position = %event.at,
            error = %error, attempts,
            "poison event recorded in failed_events and skipped; /ready reports degraded");
        Ok(Step::Poisoned {
            event_id: event.event_id,
            at: event.at,
        })
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
        let name = self.projection.name();
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
                    metrics::counter!("charter_projection_errors_total", "projection" => name)
                        .increment(1);
                    let backoff =
                        Duration::from_millis(100) * 2u32.saturating_pow(consecutive.min(8));
                    let transient = failures::is_transient(&e);
                    tracing::error!(projection = name, error = %e, attempt = consecutive, transient,
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
            assert!(failures::is_transient(&e), "{e}");
        }
        assert_eq!(
            runner.quarantine().batch_size(500),
            500,
            "no isolation either"
        );
    }
}
