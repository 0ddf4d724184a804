//! Read model `entitlements`: for each user x scope (every workspace, and the tenant itself
//! under the nil workspace id), the effective roles and permissions, reached directly and
//! through groups. A lookup is one indexed read; the resolution happens here, once per change.
//!
//! Owns `ent_*` (its private copy of tenants, workspaces, users, groups, members, roles and
//! assignments) and `entitlements`. Rules:
//! - a tenant-wide assignment applies to the tenant scope and to every live workspace;
//! - a workspace assignment applies to that workspace only;
//! - a disabled or deleted user, a blocked or deleted tenant, a deleted workspace, role or
//!   group yields nothing.

use charter_events::assignment::{AssignmentEvent, SubjectType};
use charter_events::group::GroupEvent;
use charter_events::role::RoleEvent;
use charter_events::service_account::ServiceAccountEvent;
use charter_events::tenant::TenantEvent;
use charter_events::user::UserEvent;
use charter_events::workspace::WorkspaceEvent;
use charter_events::{DomainEvent, RecordedEvent};
use deadpool_postgres::{GenericClient, Transaction};
use serde::Serialize;
use uuid::Uuid;

use crate::projection::{execute, Projection, ProjectionError};

pub struct Entitlements;

/// The workspace id of the tenant scope.
pub const TENANT_SCOPE: Uuid = Uuid::nil();

/// Which users' entitlements to recompute.
enum Affected {
    Nobody,
    Users(Vec<Uuid>),
    Tenant,
}

/// Service accounts are principals like users: they live in `ent_users` and their
/// assignments are stored as user assignments (ids never collide).
fn subject(t: SubjectType) -> &'static str {
    match t {
        SubjectType::User | SubjectType::ServiceAccount => "user",
        SubjectType::Group => "group",
    }
}

fn decode<E: DomainEvent>(e: &RecordedEvent) -> Result<E, ProjectionError> {
    Ok(E::decode(
        &e.event_type,
        e.schema_version as u32,
        e.data.clone(),
    )?)
}

#[async_trait::async_trait]
impl Projection for Entitlements {
    fn name(&self) -> &'static str {
        "entitlements"
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            "ent_tenants",
            "ent_workspaces",
            "ent_users",
            "ent_groups",
            "ent_members",
            "ent_roles",
            "ent_assignments",
            "entitlements",
        ]
    }

    async fn apply(&self, tx: &Transaction<'_>, e: &RecordedEvent) -> Result<(), ProjectionError> {
        match write(tx, e).await? {
            Affected::Nobody => Ok(()),
            Affected::Users(users) if users.is_empty() => Ok(()),
            Affected::Users(users) => recompute(tx, e.tenant_id, Some(&users)).await,
            Affected::Tenant => recompute(tx, e.tenant_id, None).await,
        }
    }

    /// Entitlements are a function of the `ent_*` tables, so a batch applies every event's
    /// writes in order and then re-derives each affected user (or tenant) once, instead of
    /// once per event.
    async fn apply_batch(
        &self,
        tx: &Transaction<'_>,
        events: &[RecordedEvent],
    ) -> Result<(), (usize, ProjectionError)> {
        // Per tenant, in order of first appearance: `None` means every user of the tenant.
        let mut dirty: Vec<(Uuid, Option<Vec<Uuid>>)> = Vec::new();
        let mut seen: std::collections::HashMap<Uuid, usize> = Default::default();
        for (i, e) in events.iter().enumerate() {
            let affected = write(tx, e).await.map_err(|err| (i, err))?;
            let at = *seen.entry(e.tenant_id).or_insert_with(|| {
                dirty.push((e.tenant_id, Some(Vec::new())));
                dirty.len() - 1
            });
            match (affected, &mut dirty[at].1) {
                (Affected::Nobody, _) | (_, None) => {}
                (Affected::Tenant, users) => *users = None,
                (Affected::Users(more), Some(users)) => users.extend(more),
            }
        }
        let last = events.len().saturating_sub(1);
        for (tenant, users) in dirty {
            match users {
                Some(mut users) if !users.is_empty() => {
                    users.sort_unstable();
                    users.dedup();
                    recompute(tx, tenant, Some(&users)).await
                }
                Some(_) => Ok(()),
                None => recompute(tx, tenant, None).await,
            }
            .map_err(|err| (last, err))?;
        }
        Ok(())
    }
}

/// Applies one event to the `ent_*` tables and says whose entitlements it may change.
async fn write(tx: &Transaction<'_>, e: &RecordedEvent) -> Result<Affected, ProjectionError> {
    let t = e.tenant_id;
    let affected = match e.stream_type.as_str() {
        "tenant" => match decode::<TenantEvent>(e)? {
            TenantEvent::Created(c) => {
                execute(
                    tx,
                    "INSERT INTO ent_tenants VALUES ($1, true)",
                    &[&c.tenant_id],
                )
                .await?;
                Affected::Nobody
            }
            TenantEvent::Blocked(_) | TenantEvent::Deleted(_) => {
                execute(
                    tx,
                    "UPDATE ent_tenants SET active = false WHERE tenant_id = $1",
                    &[&t],
                )
                .await?;
                Affected::Tenant
            }
            TenantEvent::Unblocked(_) => {
                execute(
                    tx,
                    "UPDATE ent_tenants SET active = true WHERE tenant_id = $1",
                    &[&t],
                )
                .await?;
                Affected::Tenant
            }
            TenantEvent::Renamed(_) | TenantEvent::Moved(_) => Affected::Nobody,
        },
        "workspace" => match decode::<WorkspaceEvent>(e)? {
            WorkspaceEvent::Created(c) => {
                execute(
                    tx,
                    "INSERT INTO ent_workspaces VALUES ($1, $2, true)",
                    &[&c.workspace_id, &t],
                )
                .await?;
                // Only tenant-wide grants reach a new workspace (no assignment names it yet),
                // so its entitlements are each user's tenant-scope row: copied, instead of
                // re-deriving the whole tenant. A user re-derived later in the same batch gets
                // every workspace, this one included, from scratch.
                execute(
                    tx,
                    "INSERT INTO entitlements (tenant_id, user_id, workspace_id, roles, permissions) \
                     SELECT tenant_id, user_id, $2, roles, permissions FROM entitlements \
                     WHERE tenant_id = $1 AND workspace_id = $3",
                    &[&t, &c.workspace_id, &TENANT_SCOPE],
                )
                .await?;
                Affected::Nobody
            }
            WorkspaceEvent::Deleted(d) => {
                execute(
                    tx,
                    "UPDATE ent_workspaces SET live = false WHERE workspace_id = $1",
                    &[&d.workspace_id],
                )
                .await?;
                execute(
                    tx,
                    "DELETE FROM entitlements WHERE tenant_id = $1 AND workspace_id = $2",
                    &[&t, &d.workspace_id],
                )
                .await?;
                Affected::Nobody
            }
            WorkspaceEvent::Renamed(_) => Affected::Nobody,
        },
        "user" => {
            let event = decode::<UserEvent>(e)?;
            let u = event.user_id();
            match event {
                UserEvent::Created(_) => {
                    execute(
                        tx,
                        "INSERT INTO ent_users VALUES ($1, $2, true, true)",
                        &[&u, &t],
                    )
                    .await?;
                    Affected::Nobody
                }
                UserEvent::Disabled(_) => {
                    execute(
                        tx,
                        "UPDATE ent_users SET active = false WHERE user_id = $1",
                        &[&u],
                    )
                    .await?;
                    Affected::Users(vec![u])
                }
                UserEvent::Enabled(_) => {
                    execute(
                        tx,
                        "UPDATE ent_users SET active = true WHERE user_id = $1",
                        &[&u],
                    )
                    .await?;
                    Affected::Users(vec![u])
                }
                UserEvent::Deleted(_) => {
                    execute(
                        tx,
                        "UPDATE ent_users SET active = false, live = false WHERE user_id = $1",
                        &[&u],
                    )
                    .await?;
                    Affected::Users(vec![u])
                }
                _ => Affected::Nobody,
            }
        }
        "service_account" => {
            let event = decode::<ServiceAccountEvent>(e)?;
            let (u, _) = event.ids();
            let statement = match event {
                ServiceAccountEvent::Created(_) => {
                    execute(
                        tx,
                        "INSERT INTO ent_users VALUES ($1, $2, true, true)",
                        &[&u, &t],
                    )
                    .await?;
                    None
                }
                ServiceAccountEvent::Disabled(_) => {
                    Some("UPDATE ent_users SET active = false WHERE user_id = $1")
                }
                ServiceAccountEvent::Enabled(_) => {
                    Some("UPDATE ent_users SET active = true WHERE user_id = $1")
                }
                ServiceAccountEvent::Deleted(_) => {
                    Some("UPDATE ent_users SET active = false, live = false WHERE user_id = $1")
                }
                _ => None,
            };
            match statement {
                Some(sql) => {
                    execute(tx, sql, &[&u]).await?;
                    Affected::Users(vec![u])
                }
                None => Affected::Nobody,
            }
        }
        "group" => match decode::<GroupEvent>(e)? {
            GroupEvent::Created(c) => {
                execute(
                    tx,
                    "INSERT INTO ent_groups VALUES ($1, $2, true)",
                    &[&c.group_id, &t],
                )
                .await?;
                Affected::Nobody
            }
            GroupEvent::MemberAdded(m) => {
                execute(
                    tx,
                    "INSERT INTO ent_members VALUES ($1, $2)",
                    &[&m.group_id, &m.user_id],
                )
                .await?;
                Affected::Users(vec![m.user_id])
            }
            GroupEvent::MemberRemoved(m) => {
                execute(
                    tx,
                    "DELETE FROM ent_members WHERE group_id = $1 AND user_id = $2",
                    &[&m.group_id, &m.user_id],
                )
                .await?;
                Affected::Users(vec![m.user_id])
            }
            GroupEvent::Deleted(d) => {
                let members = members(tx, d.group_id).await?;
                execute(
                    tx,
                    "UPDATE ent_groups SET live = false WHERE group_id = $1",
                    &[&d.group_id],
                )
                .await?;
                execute(
                    tx,
                    "DELETE FROM ent_members WHERE group_id = $1",
                    &[&d.group_id],
                )
                .await?;
                Affected::Users(members)
            }
        },
        "role" => match decode::<RoleEvent>(e)? {
            RoleEvent::Created(c) => {
                execute(
                    tx,
                    "INSERT INTO ent_roles VALUES ($1, $2, $3, $4, true)",
                    &[&c.role_id, &t, &c.workspace_id, &c.permissions],
                )
                .await?;
                Affected::Nobody
            }
            RoleEvent::PermissionsGranted(g) => {
                execute(
                    tx,
                    "UPDATE ent_roles SET permissions = ARRAY(SELECT DISTINCT p FROM \
                         unnest(permissions || $2::text[]) p) WHERE role_id = $1",
                    &[&g.role_id, &g.permissions],
                )
                .await?;
                Affected::Users(holders(tx, g.role_id).await?)
            }
            RoleEvent::PermissionsRevoked(r) => {
                execute(
                    tx,
                    "UPDATE ent_roles SET permissions = ARRAY(SELECT p FROM unnest(permissions) p \
                         WHERE p <> ALL($2::text[])) WHERE role_id = $1",
                    &[&r.role_id, &r.permissions],
                )
                .await?;
                Affected::Users(holders(tx, r.role_id).await?)
            }
            RoleEvent::Deleted(d) => {
                execute(
                    tx,
                    "UPDATE ent_roles SET live = false WHERE role_id = $1",
                    &[&d.role_id],
                )
                .await?;
                Affected::Users(holders(tx, d.role_id).await?)
            }
            RoleEvent::Renamed(_) => Affected::Nobody,
        },
        "assignment" => match decode::<AssignmentEvent>(e)? {
            AssignmentEvent::Created(c) => {
                execute(
                    tx,
                    "INSERT INTO ent_assignments VALUES ($1, $2, $3, $4, $5, $6)",
                    &[
                        &c.assignment_id,
                        &t,
                        &c.workspace_id,
                        &c.role_id,
                        &subject(c.subject_type),
                        &c.subject_id,
                    ],
                )
                .await?;
                Affected::Users(subject_users(tx, c.subject_type, c.subject_id).await?)
            }
            AssignmentEvent::Deleted(d) => {
                execute(
                    tx,
                    "DELETE FROM ent_assignments WHERE assignment_id = $1",
                    &[&d.assignment_id],
                )
                .await?;
                Affected::Users(subject_users(tx, d.subject_type, d.subject_id).await?)
            }
        },
        _ => Affected::Nobody,
    };
    Ok(affected)
}

async fn members(tx: &Transaction<'_>, group_id: Uuid) -> Result<Vec<Uuid>, ProjectionError> {
    let statement = tx
        .prepare_cached("SELECT user_id FROM ent_members WHERE group_id = $1")
        .await?;
    Ok(tx
        .query(&statement, &[&group_id])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// Users holding `role_id`, directly or through a group.
async fn holders(tx: &Transaction<'_>, role_id: Uuid) -> Result<Vec<Uuid>, ProjectionError> {
    let statement = tx
        .prepare_cached(
            "SELECT a.subject_id FROM ent_assignments a WHERE a.role_id = $1 AND a.subject_type = 'user' \
             UNION \
             SELECT m.user_id FROM ent_assignments a JOIN ent_members m ON m.group_id = a.subject_id \
             WHERE a.role_id = $1 AND a.subject_type = 'group'",
        )
        .await?;
    Ok(tx
        .query(&statement, &[&role_id])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

async fn subject_users(
    tx: &Transaction<'_>,
    subject_type: SubjectType,
    subject_id: Uuid,
) -> Result<Vec<Uuid>, ProjectionError> {
    match subject_type {
        SubjectType::User | SubjectType::ServiceAccount => Ok(vec![subject_id]),
        SubjectType::Group => members(tx, subject_id).await,
    }
}

/// Re-derives the entitlements of `users` (every user of the tenant when `None`). Two
/// statements each way rather than one with `$2 IS NULL OR …`: a generic plan of that form
/// cannot use the `(tenant_id, user_id, …)` key and reads the whole tenant every time.
async fn recompute(
    tx: &Transaction<'_>,
    tenant_id: Uuid,
    users: Option<&[Uuid]>,
) -> Result<(), ProjectionError> {
    match users {
        Some(users) => {
            let users = users.to_vec();
            execute(
                tx,
                "DELETE FROM entitlements WHERE tenant_id = $1 AND user_id = ANY($2)",
                &[&tenant_id, &users],
            )
            .await?;
            execute(tx, &DERIVE_USERS, &[&tenant_id, &TENANT_SCOPE, &users]).await?;
        }
        None => {
            execute(
                tx,
                "DELETE FROM entitlements WHERE tenant_id = $1",
                &[&tenant_id],
            )
            .await?;
            execute(tx, &DERIVE_TENANT, &[&tenant_id, &TENANT_SCOPE]).await?;
        }
    }
    Ok(())
}

/// Derives and inserts the entitlements of a tenant's active users, filtered by `{users}`.
/// `$1` is the tenant, `$2` the tenant scope's workspace id (and `$3` the users, when filtered).
const DERIVE: &str = "INSERT INTO entitlements (tenant_id, user_id, workspace_id, roles, permissions)
         WITH users AS (
             SELECT u.user_id FROM ent_users u
             JOIN ent_tenants t ON t.tenant_id = u.tenant_id AND t.active
             WHERE u.tenant_id = $1 AND u.active {users}
         ), subjects AS (
             SELECT user_id, 'user' AS subject_type, user_id AS subject_id FROM users
             UNION ALL
             SELECT u.user_id, 'group', m.group_id FROM users u
             JOIN ent_members m ON m.user_id = u.user_id
             JOIN ent_groups g ON g.group_id = m.group_id AND g.live
         ), grants AS (
             SELECT s.user_id, a.workspace_id AS scope, r.role_id, r.permissions
             FROM subjects s
             JOIN ent_assignments a ON a.tenant_id = $1 AND a.subject_type = s.subject_type
                                   AND a.subject_id = s.subject_id
             JOIN ent_roles r ON r.role_id = a.role_id AND r.live
         ), scoped AS (
             SELECT user_id, $2::uuid AS workspace_id, role_id, permissions FROM grants WHERE scope IS NULL
             UNION ALL
             SELECT g.user_id, w.workspace_id, g.role_id, g.permissions FROM grants g
             JOIN ent_workspaces w ON w.tenant_id = $1 AND w.live
                                  AND (g.scope IS NULL OR g.scope = w.workspace_id)
         ), by_roles AS (
             SELECT user_id, workspace_id, array_agg(DISTINCT role_id ORDER BY role_id) AS roles
             FROM scoped GROUP BY user_id, workspace_id
         ), by_permissions AS (
             SELECT user_id, workspace_id, array_agg(DISTINCT p ORDER BY p) AS permissions
             FROM scoped, unnest(permissions) AS p GROUP BY user_id, workspace_id
         )
         SELECT $1, r.user_id, r.workspace_id, r.roles, COALESCE(p.permissions, '{}')
         FROM by_roles r LEFT JOIN by_permissions p USING (user_id, workspace_id)";

static DERIVE_USERS: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| DERIVE.replace("{users}", "AND u.user_id = ANY($3)"));
static DERIVE_TENANT: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| DERIVE.replace("{users}", ""));

/// One scope of a user's entitlements.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScopeEntitlements {
    pub workspace_id: Uuid,
    pub policy_version: i64,
    pub roles: Vec<Uuid>,
    pub permissions: Vec<String>,
}

/// A user's entitlements in every workspace (or one), with the tenant's scope and counter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserEntitlements {
    pub tenant_id: Uuid,
    pub user_id: Uuid,
    pub policy_version: i64,
    /// Tenant-wide grants (what a token not scoped to a workspace carries).
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub tenant: Option<ScopeEntitlements>,
    pub workspaces: Vec<ScopeEntitlements>,
}

/// One indexed read. `None` when the user is not a live user of the tenant.
pub async fn lookup(
    client: &impl GenericClient,
    tenant_id: Uuid,
    user_id: Uuid,
    workspace_id: Option<Uuid>,
) -> Result<Option<UserEntitlements>, tokio_postgres::Error> {
    let statement = client
        .prepare_cached(
            "SELECT e.workspace_id, e.roles, e.permissions, COALESCE(pv.version, 0),
                    COALESCE((SELECT version FROM projections.policy_versions
                              WHERE tenant_id = $1 AND workspace_id = $4), 0)
             FROM projections.ent_users u
             LEFT JOIN projections.entitlements e
                    ON e.tenant_id = u.tenant_id AND e.user_id = u.user_id
                   AND ($3::uuid IS NULL OR e.workspace_id IN ($3, $4))
             LEFT JOIN projections.policy_versions pv
                    ON pv.tenant_id = e.tenant_id AND pv.workspace_id = e.workspace_id
             WHERE u.tenant_id = $1 AND u.user_id = $2 AND u.live
             ORDER BY e.workspace_id",
        )
        .await?;
    let rows = client
        .query(
            &statement,
            &[&tenant_id, &user_id, &workspace_id, &TENANT_SCOPE],
        )
        .await?;
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let mut result = UserEntitlements {
        tenant_id,
        user_id,
        policy_version: first.get(4),
        tenant: None,
        workspaces: vec![],
    };
    for row in &rows {
        let Some(workspace_id) = row.get::<_, Option<Uuid>>(0) else {
            continue;
        };
        let scope = ScopeEntitlements {
            workspace_id,
            policy_version: row.get(3),
            roles: row.get(1),
            permissions: row.get(2),
        };
        if workspace_id == TENANT_SCOPE {
            result.tenant = Some(scope);
        } else {
            result.workspaces.push(scope);
        }
    }
    Ok(Some(result))
}
