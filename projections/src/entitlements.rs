//! Read model `entitlements`: what was decided, never its fan-out. Bindings of a subject (a
//! user, a service account or a group) to a role in a scope (the tenant, or one workspace),
//! each role's permissions, group memberships, and whether each tenant, workspace, principal,
//! group and role is live. A change writes a fixed number of rows, whatever the size of the
//! tenant; resolving a user's permissions in a scope happens on read, in memory
//! ([`crate::index`]), or in SQL for audits ([`fan_out`]).
//!
//! Owns `ent_*`. Resolution rules (the same in [`fan_out`], in the index and in the model
//! test's naive fold):
//! - a tenant-wide binding applies to the tenant scope and to every live workspace;
//! - a workspace binding applies to that workspace only;
//! - a disabled or deleted principal, a blocked or deleted tenant, a deleted workspace, role
//!   or group yields nothing.
//!
//! Every event is first turned into [`Change`]s by [`changes`], a pure function: the SQL
//! writes here and the in-process index apply the same list, so the two cannot disagree on
//! what an event means.

use charter_events::assignment::{AssignmentEvent, SubjectType};
use charter_events::group::GroupEvent;
use charter_events::role::RoleEvent;
use charter_events::service_account::ServiceAccountEvent;
use charter_events::tenant::TenantEvent;
use charter_events::user::UserEvent;
use charter_events::workspace::WorkspaceEvent;
use charter_events::RecordedEvent;
use deadpool_postgres::GenericClient;
use serde::Serialize;
use uuid::Uuid;

use crate::projection::{decode, Param, ProjectionError, Write, Writes};

pub struct Entitlements;

/// The workspace id of the tenant scope.
pub const TENANT_SCOPE: Uuid = Uuid::nil();

/// One change to the entitlement model, in the tenant of the event that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    TenantCreated(Uuid),
    TenantActive(bool),
    WorkspaceCreated(Uuid),
    WorkspaceDeleted(Uuid),
    /// A user or a service account (principals share one id space).
    PrincipalCreated(Uuid),
    PrincipalActive(Uuid, bool),
    PrincipalDeleted(Uuid),
    GroupCreated(Uuid),
    /// The group and all its memberships go.
    GroupDeleted(Uuid),
    MemberAdded {
        group: Uuid,
        user: Uuid,
    },
    MemberRemoved {
        group: Uuid,
        user: Uuid,
    },
    RoleCreated {
        role: Uuid,
        workspace: Option<Uuid>,
        permissions: Vec<String>,
    },
    PermissionsGranted {
        role: Uuid,
        permissions: Vec<String>,
    },
    PermissionsRevoked {
        role: Uuid,
        permissions: Vec<String>,
    },
    RoleDeleted(Uuid),
    Bound(Binding),
    Unbound {
        assignment: Uuid,
        subject: Uuid,
    },
}

/// A subject's role in a scope (`workspace: None` is tenant-wide).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Binding {
    pub assignment: Uuid,
    pub subject: Uuid,
    pub subject_kind: SubjectKind,
    pub role: Uuid,
    pub workspace: Option<Uuid>,
}

/// Service accounts are principals like users: their bindings are stored as user bindings
/// (ids never collide).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SubjectKind {
    Principal,
    Group,
}

impl SubjectKind {
    pub fn of(t: SubjectType) -> Self {
        match t {
            SubjectType::User | SubjectType::ServiceAccount => SubjectKind::Principal,
            SubjectType::Group => SubjectKind::Group,
        }
    }

    /// How `ent_assignments.subject_type` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            SubjectKind::Principal => "user",
            SubjectKind::Group => "group",
        }
    }
}

/// What `e` changes in the entitlement model (nothing, for events it does not depend on).
pub fn changes(e: &RecordedEvent) -> Result<Vec<Change>, ProjectionError> {
    use Change as C;
    let change = match e.stream_type.as_str() {
        "tenant" => match decode::<TenantEvent>(e)? {
            TenantEvent::Created(c) => C::TenantCreated(c.tenant_id),
            TenantEvent::Blocked(_) | TenantEvent::Deleted(_) => C::TenantActive(false),
            TenantEvent::Unblocked(_) => C::TenantActive(true),
            TenantEvent::Renamed(_) | TenantEvent::Moved(_) => return Ok(vec![]),
        },
        "workspace" => match decode::<WorkspaceEvent>(e)? {
            WorkspaceEvent::Created(c) => C::WorkspaceCreated(c.workspace_id),
            WorkspaceEvent::Deleted(d) => C::WorkspaceDeleted(d.workspace_id),
            WorkspaceEvent::Renamed(_) => return Ok(vec![]),
        },
        "user" => {
            let event = decode::<UserEvent>(e)?;
            let u = event.user_id();
            match event {
                UserEvent::Created(_) => C::PrincipalCreated(u),
                UserEvent::Disabled(_) => C::PrincipalActive(u, false),
                UserEvent::Enabled(_) => C::PrincipalActive(u, true),
                UserEvent::Deleted(_) => C::PrincipalDeleted(u),
                _ => return Ok(vec![]),
            }
        }
        "service_account" => {
            let event = decode::<ServiceAccountEvent>(e)?;
            let (u, _) = event.ids();
            match event {
                ServiceAccountEvent::Created(_) => C::PrincipalCreated(u),
                ServiceAccountEvent::Disabled(_) => C::PrincipalActive(u, false),
                ServiceAccountEvent::Enabled(_) => C::PrincipalActive(u, true),
                ServiceAccountEvent::Deleted(_) => C::PrincipalDeleted(u),
                _ => return Ok(vec![]),
            }
        }
        "group" => match decode::<GroupEvent>(e)? {
            GroupEvent::Created(c) => C::GroupCreated(c.group_id),
            GroupEvent::MemberAdded(m) => C::MemberAdded {
                group: m.group_id,
                user: m.user_id,
            },
            GroupEvent::MemberRemoved(m) => C::MemberRemoved {
                group: m.group_id,
                user: m.user_id,
            },
            GroupEvent::Deleted(d) => C::GroupDeleted(d.group_id),
        },
        "role" => match decode::<RoleEvent>(e)? {
            RoleEvent::Created(c) => C::RoleCreated {
                role: c.role_id,
                workspace: c.workspace_id,
                permissions: c.permissions,
            },
            RoleEvent::PermissionsGranted(g) => C::PermissionsGranted {
                role: g.role_id,
                permissions: g.permissions,
            },
            RoleEvent::PermissionsRevoked(r) => C::PermissionsRevoked {
                role: r.role_id,
                permissions: r.permissions,
            },
            RoleEvent::Deleted(d) => C::RoleDeleted(d.role_id),
            RoleEvent::Renamed(_) => return Ok(vec![]),
        },
        "assignment" => match decode::<AssignmentEvent>(e)? {
            AssignmentEvent::Created(c) => C::Bound(Binding {
                assignment: c.assignment_id,
                subject: c.subject_id,
                subject_kind: SubjectKind::of(c.subject_type),
                role: c.role_id,
                workspace: c.workspace_id,
            }),
            AssignmentEvent::Deleted(d) => C::Unbound {
                assignment: d.assignment_id,
                subject: d.subject_id,
            },
        },
        _ => return Ok(vec![]),
    };
    Ok(vec![change])
}

impl Writes for Entitlements {
    const NAME: &'static str = "entitlements";
    const TABLES: &'static [&'static str] = &[
        "ent_tenants",
        "ent_workspaces",
        "ent_users",
        "ent_groups",
        "ent_members",
        "ent_roles",
        "ent_assignments",
    ];

    /// At most two single-key writes per event.
    fn writes(&self, e: &RecordedEvent) -> Result<Vec<Write>, ProjectionError> {
        let t = e.tenant_id;
        let mut writes = Vec::new();
        for change in changes(e)? {
            let w = |sql: &'static str, params: Vec<Param>| Write::new(sql, params);
            match change {
                Change::TenantCreated(id) => writes.push(w(
                    "INSERT INTO ent_tenants VALUES ($1, true)",
                    vec![Box::new(id)],
                )),
                Change::TenantActive(active) => writes.push(w(
                    "UPDATE ent_tenants SET active = $2 WHERE tenant_id = $1",
                    vec![Box::new(t), Box::new(active)],
                )),
                Change::WorkspaceCreated(id) => writes.push(w(
                    "INSERT INTO ent_workspaces VALUES ($1, $2, true)",
                    vec![Box::new(id), Box::new(t)],
                )),
                Change::WorkspaceDeleted(id) => writes.push(w(
                    "UPDATE ent_workspaces SET live = false WHERE workspace_id = $1",
                    vec![Box::new(id)],
                )),
                Change::PrincipalCreated(id) => writes.push(w(
                    "INSERT INTO ent_users VALUES ($1, $2, true, true)",
                    vec![Box::new(id), Box::new(t)],
                )),
                Change::PrincipalActive(id, active) => writes.push(w(
                    "UPDATE ent_users SET active = $2 WHERE user_id = $1",
                    vec![Box::new(id), Box::new(active)],
                )),
                Change::PrincipalDeleted(id) => writes.push(w(
                    "UPDATE ent_users SET active = false, live = false WHERE user_id = $1",
                    vec![Box::new(id)],
                )),
                Change::GroupCreated(id) => writes.push(w(
                    "INSERT INTO ent_groups VALUES ($1, $2, true)",
                    vec![Box::new(id), Box::new(t)],
                )),
                Change::GroupDeleted(id) => {
                    writes.push(w(
                        "UPDATE ent_groups SET live = false WHERE group_id = $1",
                        vec![Box::new(id)],
                    ));
                    writes.push(w(
                        "DELETE FROM ent_members WHERE group_id = $1",
                        vec![Box::new(id)],
                    ));
                }
                Change::MemberAdded { group, user } => writes.push(w(
                    "INSERT INTO ent_members VALUES ($1, $2)",
                    vec![Box::new(group), Box::new(user)],
                )),
                Change::MemberRemoved { group, user } => writes.push(w(
                    "DELETE FROM ent_members WHERE group_id = $1 AND user_id = $2",
                    vec![Box::new(group), Box::new(user)],
                )),
                Change::RoleCreated {
                    role,
                    workspace,
                    permissions,
                } => writes.push(w(
                    "INSERT INTO ent_roles VALUES ($1, $2, $3, $4, true)",
                    vec![
                        Box::new(role),
                        Box::new(t),
                        Box::new(workspace),
                        Box::new(permissions),
                    ],
                )),
                Change::PermissionsGranted { role, permissions } => writes.push(w(
                    "UPDATE ent_roles SET permissions = ARRAY(SELECT DISTINCT p FROM \
                     unnest(permissions || $2::text[]) p) WHERE role_id = $1",
                    vec![Box::new(role), Box::new(permissions)],
                )),
                Change::PermissionsRevoked { role, permissions } => writes.push(w(
                    "UPDATE ent_roles SET permissions = ARRAY(SELECT p FROM unnest(permissions) p \
                     WHERE p <> ALL($2::text[])) WHERE role_id = $1",
                    vec![Box::new(role), Box::new(permissions)],
                )),
                Change::RoleDeleted(id) => writes.push(w(
                    "UPDATE ent_roles SET live = false WHERE role_id = $1",
                    vec![Box::new(id)],
                )),
                Change::Bound(b) => writes.push(w(
                    "INSERT INTO ent_assignments VALUES ($1, $2, $3, $4, $5, $6)",
                    vec![
                        Box::new(b.assignment),
                        Box::new(t),
                        Box::new(b.workspace),
                        Box::new(b.role),
                        Box::new(b.subject_kind.as_str()),
                        Box::new(b.subject),
                    ],
                )),
                Change::Unbound { assignment, .. } => writes.push(w(
                    "DELETE FROM ent_assignments WHERE assignment_id = $1",
                    vec![Box::new(assignment)],
                )),
            }
        }
        Ok(writes)
    }
}

/// One scope of a user's entitlements.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScopeEntitlements {
    pub workspace_id: Uuid,
    /// The scope's effective policy version: the tenant's counter, plus the workspace's for a
    /// workspace.
    pub policy_version: i64,
    pub roles: Vec<Uuid>,
    pub permissions: Vec<String>,
}

/// A user's entitlements: tenant-wide, and in the workspaces that add to them (or in one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserEntitlements {
    pub tenant_id: Uuid,
    pub user_id: Uuid,
    /// The tenant's counter.
    pub policy_version: i64,
    /// Tenant-wide grants (what a token not scoped to a workspace carries). They apply in
    /// every live workspace too.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub tenant: Option<ScopeEntitlements>,
    /// Without `workspace_id`: each live workspace where a workspace binding adds to the
    /// tenant-wide grants, with its effective (tenant-wide included) roles and permissions. A
    /// live workspace not listed has exactly the tenant scope's. With `workspace_id`: that
    /// workspace, when anything applies in it.
    pub workspaces: Vec<ScopeEntitlements>,
}

/// One user × scope of the fan-out, as [`fan_out`] derives it: sorted roles and permissions.
pub type FanOutRow = (Uuid, Uuid, Vec<Uuid>, Vec<String>);

/// Every active user × scope (nil = the tenant scope, then every live workspace) of `tenant`
/// with at least one role, derived in SQL from the `ent_*` tables of the schema on the
/// `search_path`. Auditors and tests compare it with the in-process index; the service never
/// runs it.
pub async fn fan_out(
    client: &impl GenericClient,
    tenant_id: Uuid,
) -> Result<Vec<FanOutRow>, tokio_postgres::Error> {
    let rows = client.query(FAN_OUT, &[&tenant_id, &TENANT_SCOPE]).await?;
    Ok(rows
        .iter()
        .map(|r| {
            // Sorted by byte, as everywhere else (the database's collation may differ).
            let mut permissions: Vec<String> = r.get(3);
            permissions.sort();
            (r.get(0), r.get(1), r.get(2), permissions)
        })
        .collect())
}

const FAN_OUT: &str = "WITH users AS (
             SELECT u.user_id FROM ent_users u
             JOIN ent_tenants t ON t.tenant_id = u.tenant_id AND t.active
             WHERE u.tenant_id = $1 AND u.active
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
         SELECT r.user_id, r.workspace_id, r.roles, COALESCE(p.permissions, '{}')
         FROM by_roles r LEFT JOIN by_permissions p USING (user_id, workspace_id)
         ORDER BY 1, 2";
