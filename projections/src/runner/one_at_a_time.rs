//! A runner applying events one at a time after a batch failed: each member under a
//! savepoint, so that a poison event is recorded in `failed_events` and passed while the
//! rest of the log still lands (the policy is [`crate::failures::Quarantine`]'s).

use charter_log::reader::{self, LogError};
use deadpool_postgres::Transaction;

use super::{Checkpoints, Runner, RunnerError, Step};
use crate::failures::{self, EventRef, Verdict};
use crate::projection::ProjectionError;

impl Runner {
    /// Applies the one event after the earliest checkpoint to each member that has not
    /// applied it, each under a savepoint: when the event turns out to be poison for a
    /// member, that member's failed writes are rolled back, and the record of the failure,
    /// the other members' writes and the checkpoints past it commit together.
    pub(super) async fn step_one(
        &self,
        tx: Transaction<'_>,
        at: &Checkpoints,
    ) -> Result<Step, RunnerError> {
        let from = at.from();
        let recorded = match reader::read_range(&tx, from, self.until, 1).await {
            Ok(events) => match events.into_iter().next() {
                Some(e) => e,
                None => {
                    self.quarantine().idle();
                    return Ok(Step::Idle);
                }
            },
            // The only read failure that is about the event itself.
            Err(LogError::Metadata { position, source }) => {
                let event = failures::event_at(&tx, position).await?;
                let e = LogError::Metadata { position, source };
                return self
                    .failed_alone(tx, at, event, &[], ProjectionError::from(e))
                    .await;
            }
            Err(e) => return Err(ProjectionError::from(e).into()),
        };
        let event = EventRef::from(&recorded);
        let mut failed: Vec<(&'static str, ProjectionError)> = Vec::new();
        for (projection, done) in self.projections.iter().zip(&at.0) {
            if *done >= event.at {
                continue;
            }
            tx.batch_execute("SAVEPOINT event").await?;
            match projection.apply(&tx, &recorded).await {
                Ok(()) => tx.batch_execute("RELEASE SAVEPOINT event").await?,
                Err(e) => {
                    tx.batch_execute("ROLLBACK TO SAVEPOINT event").await?;
                    failed.push((projection.name(), e));
                }
            }
        }
        if failed.is_empty() {
            self.advance(&tx, event.at).await?;
            tx.commit().await?;
            self.quarantine().passed(event.event_id, false);
            for (projection, done) in self.projections.iter().zip(&at.0) {
                if *done < event.at {
                    metrics::counter!("charter_projection_events_total",
                        "projection" => projection.name())
                    .increment(1);
                }
            }
            return Ok(Step::Applied(1, event.at));
        }
        let names: Vec<&'static str> = failed.iter().map(|(name, _)| *name).collect();
        let (_, error) = failed.into_iter().next().expect("at least one failure");
        self.failed_alone(tx, at, event, &names, error).await
    }

    /// `event` failed on its own in the members named `failed` (every member not past it,
    /// when empty). Not poison yet: an error the caller retries after a backoff. Poison: its
    /// failure is recorded for each of them and every checkpoint moves past it, in this
    /// transaction, with whatever the other members applied.
    async fn failed_alone(
        &self,
        tx: Transaction<'_>,
        at: &Checkpoints,
        event: EventRef,
        failed: &[&'static str],
        error: ProjectionError,
    ) -> Result<Step, RunnerError> {
        let verdict = self.quarantine().event_failed(event.event_id, &error);
        // Not poison (yet): the caller logs the error and retries after a backoff.
        let Verdict::Poison { attempts } = verdict else {
            return Err(RunnerError::event(&event, error));
        };
        let failed: Vec<&'static str> = if failed.is_empty() {
            self.projections
                .iter()
                .zip(&at.0)
                .filter(|(_, done)| **done < event.at)
                .map(|(p, _)| p.name())
                .collect()
        } else {
            failed.to_vec()
        };
        // Recorded and skipped in one transaction: a crash between the two is impossible.
        for name in &failed {
            failures::record(&tx, name, &event, &error.to_string(), attempts).await?;
        }
        self.advance(&tx, event.at).await?;
        tx.commit().await?;
        self.quarantine().passed(event.event_id, true);
        for name in failed {
            metrics::counter!("charter_projection_failed_events_total", "projection" => name)
                .increment(1);
            tracing::error!(projection = name, event_id = %event.event_id,
                event_type = %event.event_type, stream_id = %event.stream_id, position = %event.at,
                error = %error, attempts,
                "poison event recorded in failed_events and skipped; /ready reports degraded");
        }
        Ok(Step::Poisoned {
            event_id: event.event_id,
            at: event.at,
        })
    }
}
