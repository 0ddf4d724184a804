//! Read model `tenants`: the tenant directory with its hierarchy. Owns `tenants`.

use charter_events::tenant::TenantEvent;
use charter_events::RecordedEvent;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use deadpool_postgres::Transaction;
use serde::Serialize;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::projection::{execute, stream_projection, ProjectionError};

/// The read model `tenants` (see the module's documentation).
pub struct Tenants;

stream_projection!(Tenants, TenantEvent, "tenants", ["tenants"]);

impl Tenants {
    /// Applies `event`, decoded from `e`.
    async fn apply_event(
        &self,
        tx: &Transaction<'_>,
        e: &RecordedEvent,
        event: TenantEvent,
    ) -> Result<(), ProjectionError> {
        let (id, v, at) = (e.tenant_id, e.stream_version, e.recorded_at);
        let touched =
            match &event {
                TenantEvent::Created(c) => {
                    execute(
                        tx,
                        "INSERT INTO tenants (tenant_id, name, slug, parent_id, status, version, \
                     created_at, updated_at) VALUES ($1, $2, $3, $4, 'active', $5, $6, $6)",
                        &[&c.tenant_id, &c.name, &c.slug, &c.parent_id, &v, &at],
                    )
                    .await?
                }
                TenantEvent::Renamed(r) => {
                    execute(
                        tx,
                        "UPDATE tenants SET name = $4, version = $2, updated_at = $3 \
                     WHERE tenant_id = $1",
                        &[&id, &v, &at, &r.name],
                    )
                    .await?
                }
                TenantEvent::Moved(m) => {
                    execute(
                        tx,
                        "UPDATE tenants SET parent_id = $4, version = $2, updated_at = $3 \
                     WHERE tenant_id = $1",
                        &[&id, &v, &at, &m.parent_id],
                    )
                    .await?
                }
                TenantEvent::Blocked(b) => execute(
                    tx,
                    "UPDATE tenants SET status = 'blocked', blocked_reason = $4, version = $2, \
                     updated_at = $3 WHERE tenant_id = $1",
                    &[&id, &v, &at, &b.reason],
                )
                .await?,
                TenantEvent::Unblocked(_) => set_status(tx, id, v, at, "active").await?,
                TenantEvent::Deleted(_) => set_status(tx, id, v, at, "deleted").await?,
            };
        if touched != 1 {
            return Err(ProjectionError::Invariant(format!(
                "{} at position {} touched {touched} tenant rows",
                e.event_type, e.position
            )));
        }
        Ok(())
    }
}

async fn set_status(
    tx: &Transaction<'_>,
    id: Uuid,
    version: i64,
    at: DateTime<Utc>,
    status: &str,
) -> Result<u64, tokio_postgres::Error> {
    execute(
        tx,
        "UPDATE tenants SET status = $4, blocked_reason = NULL, version = $2, updated_at = $3 \
         WHERE tenant_id = $1",
        &[&id, &version, &at, &status],
    )
    .await
}

/// One tenant as the directory shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TenantRow {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub parent_id: Option<Uuid>,
    /// `active` or `blocked` (`deleted` only in the answer to the deletion).
    pub status: String,
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub blocked_reason: Option<String>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str =
    "tenant_id, name, slug, parent_id, status, blocked_reason, version, created_at, updated_at";

fn row(r: &Row) -> TenantRow {
    TenantRow {
        id: r.get(0),
        name: r.get(1),
        slug: r.get(2),
        parent_id: r.get(3),
        status: r.get(4),
        blocked_reason: r.get(5),
        version: r.get(6),
        created_at: r.get(7),
        updated_at: r.get(8),
    }
}

/// Filters for [`list`]. Deleted tenants are never listed.
#[derive(Debug, Clone, Default)]
pub struct ListTenants {
    pub parent_id: Option<Uuid>,
    /// Only this tenant and its descendants.
    pub within: Option<Uuid>,
    /// Keyset cursor: the last id of the previous page.
    pub after: Option<Uuid>,
    pub limit: i64,
}

pub async fn list(
    client: &impl GenericClient,
    q: &ListTenants,
) -> Result<Vec<TenantRow>, tokio_postgres::Error> {
    let rows = client
        .query(
            &format!(
                "WITH RECURSIVE reach (id, depth) AS ( \
                     SELECT $4::uuid, 1 WHERE $4::uuid IS NOT NULL \
                     UNION ALL \
                     SELECT t.tenant_id, reach.depth + 1 FROM projections.tenants t \
                     JOIN reach ON t.parent_id = reach.id WHERE reach.depth < 64 \
                 ) \
                 SELECT {COLUMNS} FROM projections.tenants \
                 WHERE status <> 'deleted' \
                   AND ($1::uuid IS NULL OR parent_id = $1) \
                   AND ($2::uuid IS NULL OR tenant_id > $2) \
                   AND ($4::uuid IS NULL OR tenant_id IN (SELECT id FROM reach)) \
                 ORDER BY tenant_id LIMIT $3"
            ),
            &[&q.parent_id, &q.after, &q.limit, &q.within],
        )
        .await?;
    Ok(rows.iter().map(row).collect())
}

pub async fn get(
    client: &impl GenericClient,
    id: Uuid,
) -> Result<Option<TenantRow>, tokio_postgres::Error> {
    let r = client
        .query_opt(
            &format!("SELECT {COLUMNS} FROM projections.tenants WHERE tenant_id = $1"),
            &[&id],
        )
        .await?;
    Ok(r.as_ref().map(row))
}
