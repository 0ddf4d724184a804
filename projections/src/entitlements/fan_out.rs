//! The entitlement fan-out derived in SQL from the `ent_*` tables: what auditors and tests
//! compare the in-process index with.

use deadpool_postgres::GenericClient;
use uuid::Uuid;

use super::TENANT_SCOPE;

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
