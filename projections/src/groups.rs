//! Read model `groups`: groups and their members. Owns `groups` and `group_members`.

use charter_events::group::GroupEvent;
use charter_events::RecordedEvent;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde::Serialize;
use uuid::Uuid;

use crate::projection::{decode_own, ProjectionError, Write, Writes};

/// The read model `groups` (see the module's documentation).
pub struct Groups;

impl Writes for Groups {
    const NAME: &'static str = "groups";
    const TABLES: &'static [&'static str] = &["groups", "group_members"];

    /// Every group event ends by touching exactly that group's row.
    fn writes(&self, e: &RecordedEvent) -> Result<Vec<Write>, ProjectionError> {
        let Some(event) = decode_own::<GroupEvent>(e)? else {
            return Ok(vec![]);
        };
        let (v, at) = (e.stream_version, e.recorded_at);
        let touch = |group_id: Uuid| {
            Write::one(
                "UPDATE groups SET version = $2, updated_at = $3 WHERE group_id = $1",
                vec![Box::new(group_id), Box::new(v), Box::new(at)],
            )
        };
        Ok(match event {
            GroupEvent::Created(c) => vec![Write::one(
                "INSERT INTO groups (group_id, tenant_id, name, version, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $5)",
                vec![Box::new(c.group_id), Box::new(c.tenant_id), Box::new(c.name), Box::new(v), Box::new(at)],
            )],
            GroupEvent::MemberAdded(m) => vec![
                Write::new(
                    "INSERT INTO group_members (group_id, user_id, tenant_id) VALUES ($1, $2, $3)",
                    vec![Box::new(m.group_id), Box::new(m.user_id), Box::new(m.tenant_id)],
                ),
                touch(m.group_id),
            ],
            GroupEvent::MemberRemoved(m) => vec![
                Write::new(
                    "DELETE FROM group_members WHERE group_id = $1 AND user_id = $2",
                    vec![Box::new(m.group_id), Box::new(m.user_id)],
                ),
                touch(m.group_id),
            ],
            GroupEvent::Deleted(d) => vec![
                Write::new(
                    "DELETE FROM group_members WHERE group_id = $1",
                    vec![Box::new(d.group_id)],
                ),
                Write::one(
                    "UPDATE groups SET deleted = true, version = $2, updated_at = $3 WHERE group_id = $1",
                    vec![Box::new(d.group_id), Box::new(v), Box::new(at)],
                ),
            ],
        })
    }
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
