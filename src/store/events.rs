//! Loading a stream and appending to it.
//!
//! **Ordering invariant.** Readers follow `(tx_id, position)`. For two versions of one stream
//! to sort correctly, the transaction that appends version n+1 must get its transaction id
//! *after* reading version n, i.e. nothing in a command's transaction may write before the
//! stream is loaded. Advisory locks and reads do not assign an id; `append` refuses to run in
//! a transaction that already has one.

use charter_events::{DomainEvent, Metadata, RecordedEvent, Scoped};
use charter_log::reader::{event_from_row, EVENT_COLUMNS};
use charter_log::LogPosition;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde_json::Value;
use uuid::Uuid;

use super::{unique_violation, StoreError};
use crate::domain::Aggregate;

/// A stream folded into its aggregate.
#[derive(Debug, Clone)]
pub struct Loaded<A> {
    pub state: A,
    /// The stream's version: the number of events in it (0 for an empty stream).
    pub version: i64,
    /// Where the stream's newest event sits in the global order.
    pub last: Option<LogPosition>,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
}

/// Reads a whole stream, in version order.
pub async fn read_stream(
    client: &impl GenericClient,
    stream_id: &str,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let statement = client
        .prepare_cached(&format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE stream_id = $1 ORDER BY stream_version"
        ))
        .await?;
    let rows = client.query(&statement, &[&stream_id]).await?;
    Ok(rows.iter().map(event_from_row).collect::<Result<_, _>>()?)
}

/// Loads and folds a stream, decoding (and upcasting) each event.
pub async fn load<A: Aggregate>(
    client: &impl GenericClient,
    stream_id: &str,
) -> Result<Loaded<A>, StoreError> {
    let recorded = read_stream(client, stream_id).await?;
    let mut state = A::default();
    for e in &recorded {
        let event = A::Event::decode(&e.event_type, e.schema_version as u32, e.data.clone())?;
        state = state.apply(&event);
    }
    Ok(Loaded {
        state,
        version: recorded.last().map_or(0, |e| e.stream_version),
        last: recorded.last().map(|e| LogPosition {
            tx_id: e.tx_id,
            position: e.position,
        }),
        created_at: recorded.first().map(|e| e.recorded_at),
        updated_at: recorded.last().map(|e| e.recorded_at),
    })
}

/// One event about to be appended.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub event_id: Uuid,
    pub event_type: &'static str,
    pub schema_version: i32,
    pub tenant_id: Uuid,
    pub workspace_id: Option<Uuid>,
    pub data: Value,
    /// False for internal events (secrets): they get no outbox row and never reach Kafka.
    pub published: bool,
}

impl NewEvent {
    /// A typed domain event, ready to append, with a fresh UUIDv7 id.
    pub fn of<E: DomainEvent + Scoped>(event: &E) -> Self {
        NewEvent {
            event_id: Uuid::now_v7(),
            event_type: event.event_type(),
            schema_version: event.schema_version() as i32,
            tenant_id: event.tenant_id(),
            workspace_id: event.workspace_id(),
            data: event.to_data(),
            published: event.published(),
        }
    }
}

/// What an append wrote.
#[derive(Debug, Clone)]
pub struct Appended {
    pub event_ids: Vec<Uuid>,
    pub version: i64,
    /// The position of the last appended event: the command's consistency token.
    pub last: LogPosition,
    pub recorded_at: DateTime<Utc>,
}

/// Appends `events` to a stream at `expected_version`, with one outbox row each, in the
/// caller's transaction. Fails with [`StoreError::Conflict`] when the stream moved on, and
/// with [`StoreError::TransactionNotFresh`] when the transaction already wrote (see the
/// ordering invariant above).
pub async fn append(
    client: &impl GenericClient,
    stream_type: &str,
    stream_id: &str,
    expected_version: i64,
    events: &[NewEvent],
    metadata: &Metadata,
) -> Result<Appended, StoreError> {
    append_guarded(
        client,
        stream_type,
        stream_id,
        expected_version,
        events,
        metadata,
        false,
    )
    .await
}

/// Starts a brand-new stream (version 0 -> n) in a transaction that already appended
/// elsewhere, e.g. the system roles seeded with a tenant. Safe for the ordering invariant: a
/// new stream with a fresh id has no earlier version that could sort after it.
pub async fn append_new_stream(
    client: &impl GenericClient,
    stream_type: &str,
    stream_id: &str,
    events: &[NewEvent],
    metadata: &Metadata,
) -> Result<Appended, StoreError> {
    append_guarded(client, stream_type, stream_id, 0, events, metadata, true).await
}

async fn append_guarded(
    client: &impl GenericClient,
    stream_type: &str,
    stream_id: &str,
    expected_version: i64,
    events: &[NewEvent],
    metadata: &Metadata,
    new_stream: bool,
) -> Result<Appended, StoreError> {
    assert!(!events.is_empty(), "append needs at least one event");
    let ids: Vec<Uuid> = events.iter().map(|e| e.event_id).collect();
    let tenants: Vec<Uuid> = events.iter().map(|e| e.tenant_id).collect();
    let workspaces: Vec<Option<Uuid>> = events.iter().map(|e| e.workspace_id).collect();
    let types: Vec<&str> = events.iter().map(|e| e.event_type).collect();
    let versions: Vec<i32> = events.iter().map(|e| e.schema_version).collect();
    let data: Vec<&Value> = events.iter().map(|e| &e.data).collect();
    let published: Vec<bool> = events.iter().map(|e| e.published).collect();
    let metadata = serde_json::to_value(metadata).expect("metadata serializes");
    let statement = client.prepare_cached(APPEND).await?;
    let row = client
        .query_one(
            &statement,
            &[
                &stream_type,
                &stream_id,
                &expected_version,
                &metadata,
                &ids,
                &tenants,
                &workspaces,
                &types,
                &versions,
                &data,
                &published,
                &new_stream,
            ],
        )
        .await
        .map_err(|e| match unique_violation(&e) {
            Some("events_stream_version_key") => StoreError::Conflict {
                stream_id: stream_id.to_owned(),
            },
            _ => e.into(),
        })?;
    let count: i64 = row.get(0);
    if count != events.len() as i64 {
        return Err(StoreError::TransactionNotFresh);
    }
    Ok(Appended {
        event_ids: ids,
        version: expected_version + count,
        last: LogPosition {
            tx_id: row.get(2),
            position: row.get(1),
        },
        recorded_at: row.get(3),
    })
}

/// Inserts the events and their outbox rows in one statement, refusing (inserting nothing)
/// when the transaction already has an id.
const APPEND: &str = "WITH guard AS MATERIALIZED (
                 SELECT pg_current_xact_id_if_assigned() IS NULL AS fresh
             ), ins AS (
                 INSERT INTO events (event_id, stream_type, stream_id, stream_version, tenant_id,
                                     workspace_id, event_type, schema_version, data, metadata)
                 SELECT e.event_id, $1, $2, $3 + e.n, e.tenant_id, e.workspace_id, e.event_type,
                        e.schema_version, e.data, $4
                 FROM guard,
                      unnest($5::uuid[], $6::uuid[], $7::uuid[], $8::text[], $9::int4[], $10::jsonb[])
                          WITH ORDINALITY AS e(event_id, tenant_id, workspace_id, event_type,
                                               schema_version, data, n)
                 WHERE guard.fresh OR $12
                 RETURNING event_id, position, tx_id, recorded_at
             ), outboxed AS (
                 INSERT INTO outbox (position)
                 SELECT ins.position
                 FROM ins JOIN unnest($5::uuid[], $11::bool[]) AS p(event_id, published)
                     ON p.event_id = ins.event_id
                 WHERE p.published
                 ORDER BY ins.position
             )
             SELECT count(*), max(position), max(tx_id::text::bigint), max(recorded_at) FROM ins";
