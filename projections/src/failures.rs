//! Poison events: events a projection cannot apply.
//!
//! When a batch fails, the runner applies the events one at a time from its checkpoint, so
//! that everything before the failing event still lands. An event that fails on its own
//! `max_attempts` consecutive times is recorded in `failed_events`, and the checkpoint moves
//! past it in the same transaction; the projection then goes on with the rest of the log.
//! `/ready` reports `degraded` while any failed event is recorded, so nothing is skipped
//! silently.
//!
//! Only failures that say something about the event count as attempts. An unreachable
//! database, a cancelled statement, a deadlock or a missing table or privilege is retried for
//! ever: an outage must never make a runner skip events. See [`is_transient_projection`].

use charter_log::reader::LogError;
use charter_log::sqlstate;
use charter_log::LogPosition;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde::Serialize;
use uuid::Uuid;

use crate::projection::ProjectionError;

/// A recorded poison event, as `/ready` lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailedEvent {
    pub projection: String,
    /// `"<tx_id>.<position>"`: where the event sits in the global order.
    pub position: String,
    pub event_id: Uuid,
    pub stream_id: String,
    pub event_type: String,
    pub error: String,
    pub attempts: i32,
    pub failed_at: DateTime<Utc>,
}

/// Which event failed: enough to find it in the log again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRef {
    pub at: LogPosition,
    pub event_id: Uuid,
    pub stream_id: String,
    pub event_type: String,
}

impl From<&charter_events::RecordedEvent> for EventRef {
    fn from(e: &charter_events::RecordedEvent) -> Self {
        EventRef {
            at: LogPosition {
                tx_id: e.tx_id,
                position: e.position,
            },
            event_id: e.event_id,
            stream_id: e.stream_id.clone(),
            event_type: e.event_type.clone(),
        }
    }
}

/// True when `e` says nothing about the event being applied: the database is unreachable or
/// going away, a statement was cancelled or timed out, a deadlock or serialization failure,
/// resources ran out, or the schema or privileges are not (yet) what this binary expects.
/// Such failures are retried with backoff and never count towards poisoning an event.
/// Decoding errors and broken invariants are never transient. Reading the log fails for the
/// event only when its metadata is unreadable; any other read error (server or row
/// conversion) is about the database or the code, not the event.
pub fn is_transient_projection(e: &ProjectionError) -> bool {
    match e {
        ProjectionError::Db(e) => is_transient_db(e),
        ProjectionError::Log(LogError::Db(_)) => true,
        ProjectionError::Log(LogError::Metadata { .. })
        | ProjectionError::Decode(_)
        | ProjectionError::Invariant(_) => false,
    }
}

/// See [`is_transient_projection`]; which SQLSTATEs are transient is
/// [`charter_log::sqlstate::TABLE`], the table the write side uses too.
pub fn is_transient_db(e: &tokio_postgres::Error) -> bool {
    sqlstate::classify_error(e).retried_by_followers()
}

/// What to do after an event failed on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The failure says nothing about the event: retry, and do not count it.
    Transient,
    /// The event failed `attempt` consecutive times so far: retry it after a backoff.
    Retry { attempt: u32 },
    /// The event failed `attempts` consecutive times: record it and move past it.
    Poison { attempts: u32 },
}

/// The runner's memory of failures: whether it is applying events one at a time, and how many
/// consecutive times the event at its checkpoint failed. Pure, so that the policy is tested
/// without a database.
#[derive(Debug, Clone)]
pub struct Quarantine {
    max_attempts: u32,
    /// Events still to apply one at a time after a batch failed.
    isolating: usize,
    /// The event that last failed on its own, and how many consecutive times.
    failing: Option<(Uuid, u32)>,
}

impl Quarantine {
    pub fn new(max_attempts: u32) -> Self {
        Self {
            max_attempts: max_attempts.max(1),
            isolating: 0,
            failing: None,
        }
    }

    /// How many events the next step reads.
    pub fn batch_size(&self, normal: i64) -> i64 {
        if self.isolating > 0 {
            1
        } else {
            normal
        }
    }

    /// A batch failed within its first `window` events. Unless the failure is transient, the
    /// runner applies those events one at a time next. Returns whether it will.
    pub fn batch_failed(&mut self, error: &ProjectionError, window: usize) -> bool {
        if is_transient_projection(error) {
            return false;
        }
        self.isolating = window.max(1);
        true
    }

    /// `event`, applied on its own, failed with `error`.
    pub fn event_failed(&mut self, event: Uuid, error: &ProjectionError) -> Verdict {
        if is_transient_projection(error) {
            return Verdict::Transient;
        }
        let attempt = match self.failing {
            Some((id, n)) if id == event => n.saturating_add(1),
            _ => 1,
        };
        self.failing = Some((event, attempt));
        if attempt >= self.max_attempts {
            Verdict::Poison { attempts: attempt }
        } else {
            Verdict::Retry { attempt }
        }
    }

    /// `event` was applied on its own, or recorded as poison: the runner has moved past it.
    /// Recording a poison event ends the isolation (the batch's culprit is found).
    pub fn passed(&mut self, event: Uuid, poisoned: bool) {
        if self.failing.is_some_and(|(id, _)| id == event) {
            self.failing = None;
        }
        self.isolating = if poisoned {
            0
        } else {
            self.isolating.saturating_sub(1)
        };
    }

    /// Nothing left to read: forget the isolation.
    pub fn idle(&mut self) {
        self.isolating = 0;
        self.failing = None;
    }
}

/// Identifies the event at `position` (for an event whose metadata cannot be read).
pub(crate) async fn event_at(
    client: &impl GenericClient,
    position: i64,
) -> Result<EventRef, tokio_postgres::Error> {
    let row = client
        .query_one(
            "SELECT tx_id::text::bigint, event_id, stream_id, event_type FROM events \
             WHERE position = $1",
            &[&position],
        )
        .await?;
    Ok(EventRef {
        at: LogPosition {
            tx_id: row.get(0),
            position,
        },
        event_id: row.get(1),
        stream_id: row.get(2),
        event_type: row.get(3),
    })
}

/// Records a poison event in the runner's transaction (`failed_events` is resolved through
/// the runner's `search_path`, i.e. in the schema it projects into). A replay that meets the
/// same event again refreshes the row.
pub(crate) async fn record(
    client: &impl GenericClient,
    projection: &str,
    event: &EventRef,
    error: &str,
    attempts: u32,
) -> Result<(), tokio_postgres::Error> {
    let statement = client
        .prepare_cached(
            "INSERT INTO failed_events (projection, position, tx_id, event_id, stream_id, \
             event_type, error, attempts) VALUES ($1, $2, $3::text::xid8, $4, $5, $6, $7, $8) \
             ON CONFLICT (projection, event_id) DO UPDATE SET position = excluded.position, \
             tx_id = excluded.tx_id, error = excluded.error, attempts = excluded.attempts, \
             failed_at = now()",
        )
        .await?;
    client
        .execute(
            &statement,
            &[
                &projection,
                &event.at.position,
                &event.at.tx_id.to_string(),
                &event.event_id,
                &event.stream_id,
                &event.event_type,
                &error,
                &i32::try_from(attempts).unwrap_or(i32::MAX),
            ],
        )
        .await?;
    Ok(())
}

/// The `limit` most recently recorded failed events in `schema`, newest first.
pub async fn recent(
    client: &impl GenericClient,
    schema: &str,
    limit: i64,
) -> Result<Vec<FailedEvent>, tokio_postgres::Error> {
    let rows = client
        .query(
            &format!(
                "SELECT projection, tx_id::text || '.' || position, event_id, stream_id, \
                 event_type, error, attempts, failed_at FROM {schema}.failed_events \
                 ORDER BY failed_at DESC, id DESC LIMIT $1"
            ),
            &[&limit],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| FailedEvent {
            projection: r.get(0),
            position: r.get(1),
            event_id: r.get(2),
            stream_id: r.get(3),
            event_type: r.get(4),
            error: r.get(5),
            attempts: r.get(6),
            failed_at: r.get(7),
        })
        .collect())
}

/// How many failed events are recorded in `schema`.
pub async fn count(
    client: &impl GenericClient,
    schema: &str,
) -> Result<i64, tokio_postgres::Error> {
    let row = client
        .query_one(&format!("SELECT count(*) FROM {schema}.failed_events"), &[])
        .await?;
    Ok(row.get(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invariant() -> ProjectionError {
        ProjectionError::Invariant("touched 0 rows".into())
    }

    /// A real client error without a database: nothing listens on port 1.
    async fn refused() -> tokio_postgres::Error {
        tokio_postgres::connect(
            "host=127.0.0.1 port=1 user=x dbname=x connect_timeout=2",
            tokio_postgres::NoTls,
        )
        .await
        .err()
        .expect("nothing listens on port 1")
    }

    #[tokio::test]
    async fn an_unreachable_database_is_transient() {
        assert!(is_transient_db(&refused().await));
        assert!(is_transient_projection(&ProjectionError::Db(
            refused().await
        )));
        assert!(!is_transient_projection(&invariant()));
    }

    #[tokio::test]
    async fn an_outage_never_poisons_an_event() {
        let event = Uuid::now_v7();
        let mut q = Quarantine::new(3);
        for _ in 0..100 {
            let e = ProjectionError::Db(refused().await);
            assert_eq!(q.event_failed(event, &e), Verdict::Transient);
        }
        // and it does not eat into the attempts of a real failure either
        assert_eq!(
            q.event_failed(event, &invariant()),
            Verdict::Retry { attempt: 1 }
        );
        let e = ProjectionError::Db(refused().await);
        assert_eq!(q.event_failed(event, &e), Verdict::Transient);
        assert!(!q.batch_failed(&e, 10), "an outage does not isolate either");
        assert_eq!(q.batch_size(500), 500);
    }

    #[test]
    fn an_event_failing_max_attempts_times_in_a_row_is_poison() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let mut q = Quarantine::new(3);
        assert!(q.batch_failed(&invariant(), 4));
        assert_eq!(q.batch_size(500), 1);
        // the three events before the culprit apply one at a time
        for _ in 0..3 {
            q.passed(Uuid::now_v7(), false);
            assert_eq!(q.batch_size(500), 1);
        }
        assert_eq!(
            q.event_failed(a, &invariant()),
            Verdict::Retry { attempt: 1 }
        );
        assert_eq!(
            q.event_failed(a, &invariant()),
            Verdict::Retry { attempt: 2 }
        );
        // another event at the checkpoint (another instance moved on) starts over
        assert_eq!(
            q.event_failed(b, &invariant()),
            Verdict::Retry { attempt: 1 }
        );
        assert_eq!(
            q.event_failed(a, &invariant()),
            Verdict::Retry { attempt: 1 }
        );
        assert_eq!(
            q.event_failed(a, &invariant()),
            Verdict::Retry { attempt: 2 }
        );
        assert_eq!(
            q.event_failed(a, &invariant()),
            Verdict::Poison { attempts: 3 }
        );
        q.passed(a, true);
        assert_eq!(q.batch_size(500), 500, "back to batches past the culprit");
    }

    #[test]
    fn isolation_ends_after_the_window_when_the_failure_does_not_recur() {
        let mut q = Quarantine::new(5);
        assert!(q.batch_failed(&invariant(), 2));
        q.passed(Uuid::now_v7(), false);
        assert_eq!(q.batch_size(500), 1);
        q.passed(Uuid::now_v7(), false);
        assert_eq!(q.batch_size(500), 500);
        assert!(q.batch_failed(&invariant(), 7));
        q.idle();
        assert_eq!(q.batch_size(500), 500);
    }
}
