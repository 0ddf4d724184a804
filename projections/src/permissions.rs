//! Read model `permissions`: every registered permission. Owns `permissions`.

use charter_events::permission::PermissionEvent;
use charter_events::RecordedEvent;
use chrono::{DateTime, Utc};
use deadpool_postgres::{GenericClient, Transaction};
use serde::Serialize;

use crate::projection::{execute, stream_projection, ProjectionError};

/// The read model `permissions` (see the module's documentation).
pub struct Permissions;

stream_projection!(Permissions, PermissionEvent, "permissions", ["permissions"]);

impl Permissions {
    /// Applies `event`, decoded from `e`.
    async fn apply_event(
        &self,
        tx: &Transaction<'_>,
        e: &RecordedEvent,
        event: PermissionEvent,
    ) -> Result<(), ProjectionError> {
        let at = e.recorded_at;
        let touched =
            match &event {
                PermissionEvent::Registered(r) => execute(
                    tx,
                    "INSERT INTO permissions (name, service, label, registered_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $4)",
                    &[&r.name, &r.service, &r.label, &at],
                )
                .await?,
                PermissionEvent::LabelChanged(c) => {
                    execute(
                        tx,
                        "UPDATE permissions SET label = $2, updated_at = $3 WHERE name = $1",
                        &[&c.name, &c.label, &at],
                    )
                    .await?
                }
            };
        if touched != 1 {
            return Err(ProjectionError::Invariant(format!(
                "{} at position {} touched {touched} permission rows",
                e.event_type, e.position
            )));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PermissionRow {
    pub name: String,
    pub service: String,
    pub label: String,
    pub registered_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Registered permissions by name, optionally of one service, after the cursor `after`.
pub async fn list(
    client: &impl GenericClient,
    service: Option<&str>,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<PermissionRow>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT name, service, label, registered_at, updated_at FROM projections.permissions \
             WHERE ($1::text IS NULL OR service = $1) AND ($2::text IS NULL OR name > $2) \
             ORDER BY name LIMIT $3",
            &[&service, &after, &limit],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| PermissionRow {
            name: r.get(0),
            service: r.get(1),
            label: r.get(2),
            registered_at: r.get(3),
            updated_at: r.get(4),
        })
        .collect())
}
