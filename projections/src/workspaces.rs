//! Read model `workspaces`: every workspace of every tenant. Owns `workspaces`.

use charter_events::workspace::WorkspaceEvent;
use charter_events::RecordedEvent;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde::Serialize;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::projection::{decode_own, ProjectionError, Write, Writes};

/// The read model `workspaces` (see the module's documentation).
pub struct Workspaces;

impl Writes for Workspaces {
    const NAME: &'static str = "workspaces";
    const TABLES: &'static [&'static str] = &["workspaces"];

    /// One write per workspace event, touching exactly that workspace's row.
    fn writes(&self, e: &RecordedEvent) -> Result<Vec<Write>, ProjectionError> {
        let Some(event) = decode_own::<WorkspaceEvent>(e)? else {
            return Ok(vec![]);
        };
        let (v, at) = (e.stream_version, e.recorded_at);
        Ok(vec![match event {
            WorkspaceEvent::Created(c) => Write::one(
                "INSERT INTO workspaces (workspace_id, tenant_id, name, version, created_at, \
                 updated_at) VALUES ($1, $2, $3, $4, $5, $5)",
                vec![Box::new(c.workspace_id), Box::new(c.tenant_id), Box::new(c.name), Box::new(v), Box::new(at)],
            ),
            WorkspaceEvent::Renamed(r) => Write::one(
                "UPDATE workspaces SET name = $2, version = $3, updated_at = $4 WHERE workspace_id = $1",
                vec![Box::new(r.workspace_id), Box::new(r.name), Box::new(v), Box::new(at)],
            ),
            WorkspaceEvent::Deleted(d) => Write::one(
                "UPDATE workspaces SET deleted = true, version = $2, updated_at = $3 \
                 WHERE workspace_id = $1",
                vec![Box::new(d.workspace_id), Box::new(v), Box::new(at)],
            ),
        }])
    }
}

/// One workspace as listed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WorkspaceRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn row(r: &Row) -> WorkspaceRow {
    WorkspaceRow {
        id: r.get(0),
        tenant_id: r.get(1),
        name: r.get(2),
        version: r.get(3),
        created_at: r.get(4),
        updated_at: r.get(5),
    }
}

/// Live workspaces of one tenant, by id, after the keyset cursor `after`.
pub async fn list(
    client: &impl GenericClient,
    tenant_id: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<WorkspaceRow>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT workspace_id, tenant_id, name, version, created_at, updated_at \
             FROM projections.workspaces \
             WHERE tenant_id = $1 AND NOT deleted AND ($2::uuid IS NULL OR workspace_id > $2) \
             ORDER BY workspace_id LIMIT $3",
            &[&tenant_id, &after, &limit],
        )
        .await?;
    Ok(rows.iter().map(row).collect())
}
