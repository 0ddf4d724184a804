//! The audit query: the event log itself, filtered, in the stable global order. Only rows
//! below the xid8 horizon are read, so a page never shows an event before one that commits
//! later in the order: a cursor stays valid while writes go on (ADR 0001).

use charter_events::RecordedEvent;
use charter_log::reader::{event_from_row, EVENT_COLUMNS};
use charter_log::LogPosition;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use uuid::Uuid;

use serde::Serialize;
use serde_json::Value;

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
         ORDER BY events.tx_id, events.position LIMIT $3"
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

/// Members of internal events that hold secrets (or their digests).
const SECRET_MEMBERS: &[&str] = &[
    "password_hash",
    "refresh_token_hash",
    "sealed_secret",
    "recovery_code_hashes",
    "secret_hash",
    "sealed_private_key",
];

/// One event as auditors see it (the API's items and the export's lines).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditItem {
    /// The event's place in the global order; also a cursor.
    pub position: String,
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: i32,
    pub stream_id: String,
    pub stream_version: i64,
    pub tenant_id: Uuid,
    pub recorded_at: DateTime<Utc>,
    pub actor: String,
    pub correlation_id: Uuid,
    /// The event's data (schema: `schemas/events/<event_type>.v<schema_version>.json`), with
    /// secrets `"[REDACTED]"`.
    pub data: Value,
}

fn redact(mut data: Value) -> Value {
    if let Value::Object(members) = &mut data {
        for (name, value) in members.iter_mut() {
            if SECRET_MEMBERS.contains(&name.as_str()) {
                *value = Value::String("[REDACTED]".into());
            }
        }
    }
    data
}

impl From<RecordedEvent> for AuditItem {
    fn from(e: RecordedEvent) -> Self {
        let position = LogPosition {
            tx_id: e.tx_id,
            position: e.position,
        };
        AuditItem {
            position: position.to_string(),
            event_id: e.event_id,
            event_type: e.event_type,
            schema_version: e.schema_version,
            stream_id: e.stream_id,
            stream_version: e.stream_version,
            tenant_id: e.tenant_id,
            recorded_at: e.recorded_at,
            actor: e.metadata.actor,
            correlation_id: e.metadata.correlation_id,
            data: redact(e.data),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_and_the_rest_kept() {
        let data =
            serde_json::json!({"user_id": "u", "password_hash": "$pbkdf2", "sealed_secret": "x"});
        let out = redact(data);
        assert_eq!(out["user_id"], "u");
        assert_eq!(out["password_hash"], "[REDACTED]");
        assert_eq!(out["sealed_secret"], "[REDACTED]");
    }
}

/// Writes every event matching `filter` as one JSON line of [`AuditItem`] to `out`, page by
/// page (constant memory), and returns how many it wrote. `progress` sees the running count.
pub async fn export(
    client: &impl GenericClient,
    filter: &AuditFilter,
    out: &mut impl std::io::Write,
    progress: impl Fn(u64),
) -> Result<u64, ExportError> {
    const PAGE: i64 = 5_000;
    let mut after = LogPosition::START;
    let mut written = 0u64;
    loop {
        let page = query(client, filter, after, PAGE).await?;
        for event in &page {
            after = LogPosition {
                tx_id: event.tx_id,
                position: event.position,
            };
        }
        let full = page.len() as i64 == PAGE;
        for event in page {
            serde_json::to_writer(&mut *out, &AuditItem::from(event))?;
            out.write_all(b"\n")?;
            written += 1;
        }
        progress(written);
        if !full {
            out.flush()?;
            return Ok(written);
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("writing the export: {0}")]
    Io(#[from] std::io::Error),
    #[error("encoding an event: {0}")]
    Json(#[from] serde_json::Error),
}
