//! How a stored event maps onto a CloudEvent (binary content mode on Kafka).
//!
//! | attribute    | value                                          |
//! |--------------|------------------------------------------------|
//! | `id`         | event id                                       |
//! | `source`     | `/charter/tenants/<tenant_id>`                 |
//! | `type`       | `dev.charter.<event_type>.v<schema_version>`   |
//! | `subject`    | stream id                                      |
//! | `time`       | recorded time                                  |
//! | `dataschema` | [`DATASCHEMA_BASE`] + `<event_type>.v<N>.json` |
//!
//! Extensions: `tenantid`, `workspaceid` (when scoped), `streamversion`, `position`,
//! `correlationid`.

use cloudevents::{Event, EventBuilder, EventBuilderV10};

use crate::catalog::schema_file_name;
use crate::envelope::RecordedEvent;

/// The CloudEvents `type` prefix.
pub const TYPE_PREFIX: &str = "dev.charter.";
/// The base URI of `dataschema`; the path after it is the file name under `schemas/events/`.
pub const DATASCHEMA_BASE: &str = "https://charter.dev/schemas/events/";

pub fn cloudevent_type(event_type: &str, schema_version: i32) -> String {
    format!("{TYPE_PREFIX}{event_type}.v{schema_version}")
}

/// The event type name and schema version of a CloudEvents `type`
/// (`dev.charter.tenant.renamed.v1` → `("tenant.renamed", 1)`); `None` for a type that is
/// not Charter's.
pub fn parse_type(ty: &str) -> Option<(&str, u32)> {
    let rest = ty.strip_prefix(TYPE_PREFIX)?;
    let (event_type, version) = rest.rsplit_once(".v")?;
    let version = version.parse().ok().filter(|v| *v > 0)?;
    (!event_type.is_empty()).then_some((event_type, version))
}

pub fn source(tenant_id: uuid::Uuid) -> String {
    format!("/charter/tenants/{tenant_id}")
}

pub fn dataschema(event_type: &str, schema_version: i32) -> String {
    let version = u32::try_from(schema_version).unwrap_or_default();
    format!("{DATASCHEMA_BASE}{}", schema_file_name(event_type, version))
}

/// Builds the CloudEvent for a stored event.
pub fn to_cloudevent(
    event: &RecordedEvent,
) -> Result<Event, cloudevents::event::EventBuilderError> {
    let mut builder = EventBuilderV10::new()
        .id(event.event_id.to_string())
        .source(source(event.tenant_id))
        .ty(cloudevent_type(&event.event_type, event.schema_version))
        .subject(event.stream_id.clone())
        .time(event.recorded_at)
        .data_with_schema(
            "application/json",
            dataschema(&event.event_type, event.schema_version).as_str(),
            event.data.clone(),
        )
        .extension("tenantid", event.tenant_id.to_string())
        .extension("streamversion", event.stream_version)
        .extension("position", event.position)
        .extension("correlationid", event.metadata.correlation_id.to_string());
    if let Some(workspace_id) = event.workspace_id {
        builder = builder.extension("workspaceid", workspace_id.to_string());
    }
    builder.build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_type_round_trips() {
        let ty = cloudevent_type("service_account.secret_rotated", 3);
        assert_eq!(parse_type(&ty), Some(("service_account.secret_rotated", 3)));
        for foreign in [
            "com.example.tenant.created.v1",
            "dev.charter.tenant.created",
            "dev.charter.tenant.created.v0",
            "dev.charter.tenant.created.vx",
            "dev.charter..v1",
        ] {
            assert_eq!(parse_type(foreign), None, "{foreign}");
        }
    }
}
