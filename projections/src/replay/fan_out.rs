//! Feeding one read of the log to many runners: the replay's rebuild, and a live instance
//! catching up from far behind.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use charter_events::RecordedEvent;
use charter_log::reader;
use charter_log::LogPosition;
use deadpool_postgres::Pool;

use super::ReplayError;
use crate::projection::Projection;
use crate::runner::{Runner, RunnerError, Step};

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

/// Reads the log after `from` up to `target` once, handing every batch to every follower.
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
                Err(e) => count_failure(&runner, e, &mut failures)?,
            }
        }
        applied.fetch_add(batch.len() as u64, Ordering::Relaxed);
    }
    catch_up(&runner).await
}

/// Enough retries for the runner to isolate a failing event and record it as poison.
const MAX_ISOLATION: u32 = crate::runner::DEFAULT_MAX_ATTEMPTS;

/// Steps `runner` until it has nothing left up to its bound.
pub(super) async fn catch_up(runner: &Runner) -> Result<(), ReplayError> {
    let mut failures = 0;
    loop {
        match runner.step().await {
            Ok(Step::Idle) => return Ok(()),
            Ok(Step::Busy) => tokio::time::sleep(Duration::from_millis(5)).await,
            Ok(_) => failures = 0,
            Err(e) => count_failure(runner, e, &mut failures)?,
        }
    }
}

/// Counts a failed step of `runner`. A transient failure (an outage) stops the replay, and so
/// does a failure that keeps recurring past what isolating and recording a poison event
/// takes; any other is retried.
fn count_failure(runner: &Runner, e: RunnerError, failures: &mut u32) -> Result<(), ReplayError> {
    *failures += 1;
    if e.is_transient() || *failures > 4 * MAX_ISOLATION {
        return Err(ReplayError::Runner {
            projection: runner.name().to_owned(),
            source: e,
        });
    }
    Ok(())
}
