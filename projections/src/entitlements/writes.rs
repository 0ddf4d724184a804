//! The SQL writes of the entitlement model: one statement per [`Change`], two for a deleted
//! group (it and its memberships), each touching a single key of an `ent_*` table.

use charter_events::RecordedEvent;
use uuid::Uuid;

use super::{changes, Change, Entitlements};
use crate::projection::{Param, ProjectionError, Write, Writes};

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
        Ok(changes(e)?
            .into_iter()
            .flat_map(|change| writes_of(change, e.tenant_id))
            .collect())
    }
}

/// Boxes each statement parameter of a [`Write`].
macro_rules! params {
    ($($p:expr),* $(,)?) => {
        vec![$(Box::new($p) as Param),*]
    };
}

/// The writes of `change`, made by an event of tenant `tenant`.
fn writes_of(change: Change, tenant: Uuid) -> Vec<Write> {
    let w = Write::new;
    match change {
        Change::TenantCreated(id) => vec![w(TENANT_CREATED, params![id])],
        Change::TenantActive(active) => vec![w(TENANT_ACTIVE, params![tenant, active])],
        Change::WorkspaceCreated(id) => vec![w(WORKSPACE_CREATED, params![id, tenant])],
        Change::WorkspaceDeleted(id) => vec![w(WORKSPACE_DELETED, params![id])],
        Change::PrincipalCreated(id) => vec![w(PRINCIPAL_CREATED, params![id, tenant])],
        Change::PrincipalActive(id, active) => vec![w(PRINCIPAL_ACTIVE, params![id, active])],
        Change::PrincipalDeleted(id) => vec![w(PRINCIPAL_DELETED, params![id])],
        Change::GroupCreated(id) => vec![w(GROUP_CREATED, params![id, tenant])],
        Change::GroupDeleted(id) => vec![
            w(GROUP_DELETED, params![id]),
            w(GROUP_MEMBERS_REMOVED, params![id]),
        ],
        Change::MemberAdded { group, user } => vec![w(MEMBER_ADDED, params![group, user])],
        Change::MemberRemoved { group, user } => vec![w(MEMBER_REMOVED, params![group, user])],
        Change::RoleCreated {
            role,
            workspace,
            permissions,
        } => vec![w(
            ROLE_CREATED,
            params![role, tenant, workspace, permissions],
        )],
        Change::PermissionsGranted { role, permissions } => {
            vec![w(PERMISSIONS_GRANTED, params![role, permissions])]
        }
        Change::PermissionsRevoked { role, permissions } => {
            vec![w(PERMISSIONS_REVOKED, params![role, permissions])]
        }
        Change::RoleDeleted(id) => vec![w(ROLE_DELETED, params![id])],
        Change::Bound(b) => vec![w(
            BOUND,
            params![
                b.assignment,
                tenant,
                b.workspace,
                b.role,
                b.subject_kind.as_str(),
                b.subject,
            ],
        )],
        Change::Unbound { assignment, .. } => vec![w(UNBOUND, params![assignment])],
    }
}

const TENANT_CREATED: &str = "INSERT INTO ent_tenants VALUES ($1, true)";
const TENANT_ACTIVE: &str = "UPDATE ent_tenants SET active = $2 WHERE tenant_id = $1";
const WORKSPACE_CREATED: &str = "INSERT INTO ent_workspaces VALUES ($1, $2, true)";
const WORKSPACE_DELETED: &str = "UPDATE ent_workspaces SET live = false WHERE workspace_id = $1";
const PRINCIPAL_CREATED: &str = "INSERT INTO ent_users VALUES ($1, $2, true, true)";
const PRINCIPAL_ACTIVE: &str = "UPDATE ent_users SET active = $2 WHERE user_id = $1";
const PRINCIPAL_DELETED: &str =
    "UPDATE ent_users SET active = false, live = false WHERE user_id = $1";
const GROUP_CREATED: &str = "INSERT INTO ent_groups VALUES ($1, $2, true)";
const GROUP_DELETED: &str = "UPDATE ent_groups SET live = false WHERE group_id = $1";
const GROUP_MEMBERS_REMOVED: &str = "DELETE FROM ent_members WHERE group_id = $1";
const MEMBER_ADDED: &str = "INSERT INTO ent_members VALUES ($1, $2)";
const MEMBER_REMOVED: &str = "DELETE FROM ent_members WHERE group_id = $1 AND user_id = $2";
const ROLE_CREATED: &str = "INSERT INTO ent_roles VALUES ($1, $2, $3, $4, true)";
const PERMISSIONS_GRANTED: &str =
    "UPDATE ent_roles SET permissions = ARRAY(SELECT DISTINCT p FROM \
     unnest(permissions || $2::text[]) p) WHERE role_id = $1";
const PERMISSIONS_REVOKED: &str = "UPDATE ent_roles SET permissions = ARRAY(SELECT p FROM \
     unnest(permissions) p WHERE p <> ALL($2::text[])) WHERE role_id = $1";
const ROLE_DELETED: &str = "UPDATE ent_roles SET live = false WHERE role_id = $1";
const BOUND: &str = "INSERT INTO ent_assignments VALUES ($1, $2, $3, $4, $5, $6)";
const UNBOUND: &str = "DELETE FROM ent_assignments WHERE assignment_id = $1";
