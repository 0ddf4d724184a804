//! Read model `groups`: groups and their members. Owns `groups` and `group_members`.

use charter_events::group::GroupEvent;
use charter_events::{DomainEvent, RecordedEvent};
use chrono::{DateTime, Utc};
use deadpool_postgres::{GenericClient, Transaction};
use serde::Serialize;
use uuid::Uuid;

use crate::projection::{execute, Projection, ProjectionError};

pub struct Groups;

#[async_trait::async_trait]
impl Projection for Groups {
    fn name(&self) -> &'static str {
        "groups"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["groups", "group_members"]
    }

    async fn apply(&self, tx: &Transaction<'_>, e: &RecordedEvent) -> Result<(), ProjectionError> {
        if e.stream_type != GroupEvent::STREAM_TYPE {
            return Ok(());
        }
        let event = GroupEvent::decode(&e.event_type, e.schema_version as u32, e.data.clone())?;
        let (v, at) = (e.stream_version, e.recorded_at);
        let (group_id, touched) = match &event {
            GroupEvent::Created(c) => (
                c.group_id,
                execute(
                    tx,
                    "INSERT INTO groups (group_id, tenant_id, name, version, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $5)",
                    &[&c.group_id, &c.tenant_id, &c.name, &v, &at],
                )
                .await?,
            ),
            GroupEvent::MemberAdded(m) => {
                execute(
                    tx,
                    "INSERT INTO group_members (group_id, user_id, tenant_id) VALUES ($1, $2, $3)",
                    &[&m.group_id, &m.user_id, &m.tenant_id],
                )
                .await?;
                (m.group_id, touch(tx, m.group_id, v, at).await?)
            }
            GroupEvent::MemberRemoved(m) => {
                execute(
                    tx,
                    "DELETE FROM group_members WHERE group_id = $1 AND user_id = $2",
                    &[&m.group_id, &m.user_id],
                )
                .await?;
                (m.group_id, touch(tx, m.group_id, v, at).await?)
            }
            GroupEvent::Deleted(d) => {
                execute(tx, "DELETE FROM group_members WHERE group_id = $1", &[&d.group_id]).await?;
                (
                    d.group_id,
                    execute(
                        tx,
                        "UPDATE groups SET deleted = true, version = $2, updated_at = $3 \
                         WHERE group_id = $1",
                        &[&d.group_id, &v, &at],
                    )
                    .await?,
                )
            }
        };
        if touched != 1 {
            return Err(ProjectionError::Invariant(format!(
                "{} at position {} touched {touched} rows of group {group_id}",
                e.event_type, e.position
            )));
        }
        Ok(())
    }
}

async fn touch(
    tx: &Transaction<'_>,
    group_id: Uuid,
    version: i64,
    at: DateTime<Utc>,
) -> Result<u64, tokio_postgres::Error> {
    execute(
        tx,
        "UPDATE groups SET version = $2, updated_at = $3 WHERE group_id = $1",
        &[&group_id, &version, &at],
    )
    .await
}

/// One group as listed, with its member count.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GroupRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    pub members: i64,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Live groups of one tenant, by id, after the keyset cursor `after`.
pub async fn list(
    client: &impl GenericClient,
    tenant_id: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<GroupRow>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT g.group_id, g.tenant_id, g.name, \
                    (SELECT count(*) FROM projections.group_members m WHERE m.group_id = g.group_id), \
                    g.version, g.created_at, g.updated_at \
             FROM projections.groups g \
             WHERE g.tenant_id = $1 AND NOT g.deleted AND ($2::uuid IS NULL OR g.group_id > $2) \
             ORDER BY g.group_id LIMIT $3",
            &[&tenant_id, &after, &limit],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| GroupRow {
            id: r.get(0),
            tenant_id: r.get(1),
            name: r.get(2),
            members: r.get(3),
            version: r.get(4),
            created_at: r.get(5),
            updated_at: r.get(6),
        })
        .collect())
}
