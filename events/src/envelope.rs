//! The envelope every stored event travels in.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// Who did what, on whose behalf, as part of which request. Stored in `events.metadata`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// The authenticated principal, or `anonymous` before authentication exists for a route.
    pub actor: String,
    pub correlation_id: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<String>,
}

/// One row of the event log, exactly as stored. `data` is still the raw JSON of
/// `schema_version`; decode it with [`crate::DomainEvent::decode`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedEvent {
    /// Insert order. Not commit order: read the log in `(tx_id, position)` order.
    pub position: i64,
    /// The writing transaction's id (`xid8`). Together with `position` it is the global order.
    pub tx_id: i64,
    pub event_id: Uuid,
    pub stream_type: String,
    pub stream_id: String,
    pub stream_version: i64,
    pub tenant_id: Uuid,
    pub workspace_id: Option<Uuid>,
    pub event_type: String,
    pub schema_version: i32,
    pub data: Value,
    pub metadata: Metadata,
    pub recorded_at: DateTime<Utc>,
}
