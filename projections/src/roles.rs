//! Read model `roles`: every role with its permissions. Owns `roles`.

use charter_events::role::RoleEvent;
use charter_events::RecordedEvent;
use chrono::{DateTime, Utc};
use deadpool_postgres::{GenericClient, Transaction};
use serde::Serialize;
use uuid::Uuid;

use crate::projection::{execute, stream_projection, ProjectionError};

/// The read model `roles` (see the module's documentation).
pub struct Roles;

stream_projection!(Roles, RoleEvent, "roles", ["roles"]);

impl Roles {
    /// Applies `event`, decoded from `e`.
    async fn apply_event(
        &self,
        tx: &Transaction<'_>,
        e: &RecordedEvent,
        event: RoleEvent,
    ) -> Result<(), ProjectionError> {
        let (v, at) = (e.stream_version, e.recorded_at);
        let touched = match &event {
            RoleEvent::Created(c) => {
                let mut permissions = c.permissions.clone();
                permissions.sort();
                execute(
                    tx,
                    "INSERT INTO roles (role_id, tenant_id, workspace_id, name, permissions, template, \
                     version, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
                    &[&c.role_id, &c.tenant_id, &c.workspace_id, &c.name, &permissions, &c.template, &v, &at],
                )
                .await?
            }
            RoleEvent::Renamed(r) => {
                execute(
                    tx,
                    "UPDATE roles SET name = $2, version = $3, updated_at = $4 WHERE role_id = $1",
                    &[&r.role_id, &r.name, &v, &at],
                )
                .await?
            }
            RoleEvent::PermissionsGranted(g) => {
                execute(
                    tx,
                    "UPDATE roles SET permissions = ARRAY(SELECT DISTINCT p FROM \
                     unnest(permissions || $2::text[]) AS p ORDER BY p), version = $3, updated_at = $4 \
                     WHERE role_id = $1",
                    &[&g.role_id, &g.permissions, &v, &at],
                )
                .await?
            }
            RoleEvent::PermissionsRevoked(r) => {
                execute(
                    tx,
                    "UPDATE roles SET permissions = ARRAY(SELECT p FROM unnest(permissions) AS p \
                     WHERE p <> ALL($2::text[]) ORDER BY p), version = $3, updated_at = $4 \
                     WHERE role_id = $1",
                    &[&r.role_id, &r.permissions, &v, &at],
                )
                .await?
            }
            RoleEvent::Deleted(d) => {
                execute(
                    tx,
                    "UPDATE roles SET deleted = true, version = $2, updated_at = $3 WHERE role_id = $1",
                    &[&d.role_id, &v, &at],
                )
                .await?
            }
        };
        if touched != 1 {
            return Err(ProjectionError::Invariant(format!(
                "{} at position {} touched {touched} role rows",
                e.event_type, e.position
            )));
        }
        Ok(())
    }
}

/// One role as listed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RoleRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub workspace_id: Option<Uuid>,
    pub name: String,
    pub permissions: Vec<String>,
    /// The system template, for seeded (read-only) roles.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub template: Option<String>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Live roles of one tenant (optionally of one workspace), by id, after `after`.
pub async fn list(
    client: &impl GenericClient,
    tenant_id: Uuid,
    workspace_id: Option<Uuid>,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<RoleRow>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT role_id, tenant_id, workspace_id, name, permissions, template, version, \
             created_at, updated_at FROM projections.roles \
             WHERE tenant_id = $1 AND NOT deleted AND ($2::uuid IS NULL OR workspace_id = $2) \
               AND ($3::uuid IS NULL OR role_id > $3) \
             ORDER BY role_id LIMIT $4",
            &[&tenant_id, &workspace_id, &after, &limit],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| RoleRow {
            id: r.get(0),
            tenant_id: r.get(1),
            workspace_id: r.get(2),
            name: r.get(3),
            permissions: r.get(4),
            template: r.get(5),
            version: r.get(6),
            created_at: r.get(7),
            updated_at: r.get(8),
        })
        .collect())
}
