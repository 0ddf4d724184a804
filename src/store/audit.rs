//! The audit query: the event log itself, filtered, in the stable global order. Only rows
//! below the xid8 horizon are read, so a page never shows an event before one that commits
//! later in the order: a cursor stays valid while writes go on (ADR 0001).

use charter_events::RecordedEvent;
use charter_projections::log::{event_from_row, EVENT_COLUMNS};
use charter_projections::LogPosition;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use uuid::Uuid;

use super::StoreError;

/// What to select. `None` means "any"; `tenants`, when set, is the allowed set of tenants.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub tenants: Option<Vec<Uuid>>,
    pub stream_id: Option<String>,
    pub stream_type: Option<String>,
    pub event_type: Option<String>,
    pub actor: Option<String>,
    pub correlation_id: Option<Uuid>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

pub async fn query(
    client: &impl GenericClient,
    filter: &AuditFilter,
    after: LogPosition,
    limit: i64,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let sql = format!(
        "SELECT {EVENT_COLUMNS} FROM events \
         WHERE (tx_id, position) > ($1::text::xid8, $2) \
           AND tx_id < pg_snapshot_xmin(pg_current_snapshot()) \
           AND ($4::uuid[] IS NULL OR tenant_id = ANY($4)) \
           AND ($5::text IS NULL OR stream_id = $5) \
           AND ($6::text IS NULL OR stream_type = $6) \
           AND ($7::text IS NULL OR event_type = $7) \
           AND ($8::text IS NULL OR metadata->>'actor' = $8) \
           AND ($9::text IS NULL OR metadata->>'correlation_id' = $9) \
           AND ($10::timestamptz IS NULL OR recorded_at >= $10) \
           AND ($11::timestamptz IS NULL OR recorded_at < $11) \
         ORDER BY tx_id, position LIMIT $3"
    );
    let statement = client.prepare_cached(&sql).await?;
    let correlation = filter.correlation_id.map(|c| c.to_string());
    let rows = client
        .query(
            &statement,
            &[
                &after.tx_id.to_string(),
                &after.position,
                &limit,
                &filter.tenants,
                &filter.stream_id,
                &filter.stream_type,
                &filter.event_type,
                &filter.actor,
                &correlation,
                &filter.from,
                &filter.to,
            ],
        )
        .await?;
    Ok(rows
        .iter()
        .map(event_from_row)
        .collect::<Result<Vec<_>, _>>()?)
}

/// `tenant_id` and every tenant below it (the write-side hierarchy index).
pub async fn subtree(
    client: &impl GenericClient,
    tenant_id: Uuid,
) -> Result<Vec<Uuid>, StoreError> {
    let rows = client
        .query(
            "WITH RECURSIVE down (id, depth) AS (
                 SELECT $1::uuid, 1
                 UNION ALL
                 SELECT h.tenant_id, down.depth + 1
                 FROM tenant_hierarchy h JOIN down ON h.parent_id = down.id
                 WHERE down.depth < 64
             )
             SELECT id FROM down",
            &[&tenant_id],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}
