//! Reading the event log in its global order.
//!
//! `position` is handed out at insert time, not at commit time, so a reader that follows
//! `position` alone skips an event whose transaction commits late. Readers here follow
//! `(tx_id, position)` and only see rows whose transaction is below the snapshot's xmin
//! (`pg_snapshot_xmin(pg_current_snapshot())`): every transaction below it has finished, so no
//! row can appear behind the cursor later. See docs/adr/0001-global-order-xid8-horizon.md.

use charter_events::{Metadata, RecordedEvent};
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use crate::LogPosition;

/// The columns every event query selects, in the order [`event_from_row`] expects.
pub const EVENT_COLUMNS: &str = "position, tx_id::text::bigint AS tx_id, event_id, stream_type, \
     stream_id, stream_version, tenant_id, workspace_id, event_type, schema_version, data, \
     metadata, recorded_at";

/// Why reading the log failed.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error(transparent)]
    Db(#[from] tokio_postgres::Error),
    #[error("event at position {position} has unreadable metadata: {source}")]
    Metadata {
        position: i64,
        source: serde_json::Error,
    },
}

/// The event in `row`, selected with [`EVENT_COLUMNS`].
pub fn event_from_row(row: &Row) -> Result<RecordedEvent, LogError> {
    let position: i64 = row.try_get("position")?;
    let metadata: serde_json::Value = row.try_get("metadata")?;
    let metadata: Metadata = serde_json::from_value(metadata)
        .map_err(|source| LogError::Metadata { position, source })?;
    Ok(RecordedEvent {
        position,
        tx_id: row.try_get("tx_id")?,
        event_id: row.try_get("event_id")?,
        stream_type: row.try_get("stream_type")?,
        stream_id: row.try_get("stream_id")?,
        stream_version: row.try_get("stream_version")?,
        tenant_id: row.try_get("tenant_id")?,
        workspace_id: row.try_get("workspace_id")?,
        event_type: row.try_get("event_type")?,
        schema_version: row.try_get("schema_version")?,
        data: row.try_get("data")?,
        metadata,
        recorded_at: row.try_get("recorded_at")?,
    })
}

/// Up to `limit` committed events after `after`, in global order, never skipping a late commit.
pub async fn read_after(
    client: &impl GenericClient,
    after: LogPosition,
    limit: i64,
) -> Result<Vec<RecordedEvent>, LogError> {
    read_range(client, after, LogPosition::END, limit).await
}

/// The statement behind [`read_range`]. `ORDER BY` names `events.tx_id`: the bare name would
/// be the selected `tx_id::text::bigint` (an output column wins), which no index serves, and a
/// generic plan would then sort the rest of the log on every read.
pub fn read_range_sql() -> &'static str {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "SELECT {EVENT_COLUMNS} FROM events \
             WHERE (tx_id, position) > ($1::text::xid8, $2) \
               AND (tx_id, position) <= ($3::text::xid8, $4) \
               AND tx_id < pg_snapshot_xmin(pg_current_snapshot()) \
             ORDER BY events.tx_id, events.position LIMIT $5"
        )
    });
    &SQL
}

/// Up to `limit` committed events after `after` and at most `until`, in global order.
pub async fn read_range(
    client: &impl GenericClient,
    after: LogPosition,
    until: LogPosition,
    limit: i64,
) -> Result<Vec<RecordedEvent>, LogError> {
    let statement = client.prepare_cached(read_range_sql()).await?;
    let rows = client
        .query(
            &statement,
            &[
                &after.tx_id.to_string(),
                &after.position,
                &until.tx_id.to_string(),
                &until.position,
                &limit,
            ],
        )
        .await?;
    rows.iter().map(event_from_row).collect()
}

/// How many committed events lie after `after` and at most `until`.
pub async fn count_range(
    client: &impl GenericClient,
    after: LogPosition,
    until: LogPosition,
) -> Result<u64, LogError> {
    let row = client
        .query_one(
            "SELECT count(*) FROM events \
             WHERE (tx_id, position) > ($1::text::xid8, $2) \
               AND (tx_id, position) <= ($3::text::xid8, $4)",
            &[
                &after.tx_id.to_string(),
                &after.position,
                &until.tx_id.to_string(),
                &until.position,
            ],
        )
        .await?;
    Ok(row.get::<_, i64>(0) as u64)
}

/// The position of the newest event visible under the horizon (the head a reader can reach).
pub async fn head(client: &impl GenericClient) -> Result<LogPosition, LogError> {
    let row = client
        .query_opt(
            "SELECT tx_id::text::bigint AS tx_id, position FROM events \
             WHERE tx_id < pg_snapshot_xmin(pg_current_snapshot()) \
             ORDER BY events.tx_id DESC, events.position DESC LIMIT 1",
            &[],
        )
        .await?;
    Ok(row.map_or(LogPosition::START, |r| LogPosition {
        tx_id: r.get(0),
        position: r.get(1),
    }))
}
