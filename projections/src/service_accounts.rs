//! Read model `service_accounts`: every service account of every tenant, without secrets.
//! Owns `service_accounts`. `account_version` is raised by every secret rotation and every
//! change of the account's platform access (`platform_permissions`): a token minted before
//! the newest one carries a lower value and is refused.

use charter_events::service_account::ServiceAccountEvent;
use charter_events::RecordedEvent;
use chrono::{DateTime, Utc};
use deadpool_postgres::{GenericClient, Transaction};
use serde::Serialize;
use uuid::Uuid;

use crate::projection::{execute, stream_projection, ProjectionError};

/// The read model `service_accounts` (see the module's documentation).
pub struct ServiceAccounts;

stream_projection!(
    ServiceAccounts,
    ServiceAccountEvent,
    "service_accounts",
    ["service_accounts"]
);

impl ServiceAccounts {
    /// Applies `event`, decoded from `e`.
    async fn apply_event(
        &self,
        tx: &Transaction<'_>,
        e: &RecordedEvent,
        event: ServiceAccountEvent,
    ) -> Result<(), ProjectionError> {
        let (id, tenant_id) = event.ids();
        let (v, at) = (e.stream_version, e.recorded_at);
        let (status, rotated) = match &event {
            ServiceAccountEvent::Created(c) => {
                execute(
                    tx,
                    "INSERT INTO service_accounts (service_account_id, tenant_id, name, status, \
                     version, created_at, updated_at, account_version) \
                     VALUES ($1, $2, $3, 'active', $4, $5, $5, 0)",
                    &[&id, &tenant_id, &c.name, &v, &at],
                )
                .await?;
                return Ok(());
            }
            ServiceAccountEvent::Disabled(_) => (Some("disabled"), 0i64),
            ServiceAccountEvent::Enabled(_) => (Some("active"), 0),
            ServiceAccountEvent::Deleted(_) => (Some("deleted"), 0),
            ServiceAccountEvent::SecretIssued(_) => (None, 0),
            ServiceAccountEvent::SecretRotated(_) => (None, 1),
            ServiceAccountEvent::PlatformAccessSet(p) => {
                // The event carries the account's new version (the write side's count of
                // rotations and platform-access changes, which this column also counts).
                let touched = execute(
                    tx,
                    "UPDATE service_accounts SET platform_permissions = $4, account_version = $5, \
                     version = $2, updated_at = $3 WHERE service_account_id = $1",
                    &[&id, &v, &at, &p.permissions, &p.account_version],
                )
                .await?;
                return touched_one(e, touched);
            }
        };
        let touched = execute(
            tx,
            "UPDATE service_accounts SET status = COALESCE($4, status), version = $2, \
             updated_at = $3, account_version = account_version + $5 \
             WHERE service_account_id = $1",
            &[&id, &v, &at, &status, &rotated],
        )
        .await?;
        touched_one(e, touched)
    }
}

/// An update must find its account's row.
fn touched_one(e: &RecordedEvent, touched: u64) -> Result<(), ProjectionError> {
    if touched != 1 {
        return Err(ProjectionError::Invariant(format!(
            "{} at position {} touched {touched} service account rows",
            e.event_type, e.position
        )));
    }
    Ok(())
}

/// One service account as listed (never with its secret).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServiceAccountRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    /// The `client_id` of the client credentials grant (the id itself).
    pub client_id: String,
    pub name: String,
    /// `active` or `disabled` (`deleted` only in the answer to the deletion).
    pub status: String,
    /// Permission patterns granted in every tenant, sorted (empty: none).
    pub platform_permissions: Vec<String>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Live (not deleted) service accounts of one tenant, by id, after the keyset cursor `after`.
pub async fn list(
    client: &impl GenericClient,
    tenant_id: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<ServiceAccountRow>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT service_account_id, tenant_id, name, status, version, created_at, updated_at, \
                    platform_permissions \
             FROM projections.service_accounts \
             WHERE tenant_id = $1 AND status <> 'deleted' \
               AND ($2::uuid IS NULL OR service_account_id > $2) \
             ORDER BY service_account_id LIMIT $3",
            &[&tenant_id, &after, &limit],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let id: Uuid = r.get(0);
            ServiceAccountRow {
                id,
                tenant_id: r.get(1),
                client_id: id.to_string(),
                name: r.get(2),
                status: r.get(3),
                platform_permissions: r.get(7),
                version: r.get(4),
                created_at: r.get(5),
                updated_at: r.get(6),
            }
        })
        .collect())
}
