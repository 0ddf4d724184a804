//! The write-side index of the tenant hierarchy (`tenant_hierarchy`), kept in the same
//! transaction as the `tenant.created` and `tenant.moved` events it mirrors. Read it under the
//! hierarchy lock (`locks::hierarchy`).

use deadpool_postgres::GenericClient;
use uuid::Uuid;

use super::StoreError;

/// Walks never go further than this, whatever the data says.
const WALK_LIMIT: i32 = 64;

/// A tenant's ancestors, nearest first.
pub async fn ancestors(
    client: &impl GenericClient,
    tenant_id: Uuid,
) -> Result<Vec<Uuid>, StoreError> {
    let rows = client
        .query(
            "WITH RECURSIVE up (id, depth) AS (
                 SELECT parent_id, 1 FROM tenant_hierarchy WHERE tenant_id = $1
                 UNION ALL
                 SELECT h.parent_id, up.depth + 1
                 FROM tenant_hierarchy h JOIN up ON h.tenant_id = up.id
                 WHERE up.depth < $2
             )
             SELECT id FROM up WHERE id IS NOT NULL ORDER BY depth",
            &[&tenant_id, &WALK_LIMIT],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Levels in the subtree rooted at `tenant_id`, itself included (1 for a leaf).
pub async fn subtree_height(
    client: &impl GenericClient,
    tenant_id: Uuid,
) -> Result<usize, StoreError> {
    let row = client
        .query_one(
            "WITH RECURSIVE down (id, depth) AS (
                 SELECT $1::uuid, 1
                 UNION ALL
                 SELECT h.tenant_id, down.depth + 1
                 FROM tenant_hierarchy h JOIN down ON h.parent_id = down.id
                 WHERE down.depth < $2
             )
             SELECT max(depth) FROM down",
            &[&tenant_id, &WALK_LIMIT],
        )
        .await?;
    Ok(row.get::<_, i32>(0) as usize)
}

/// `tenant_id` and every tenant below it.
pub async fn subtree(
    client: &impl GenericClient,
    tenant_id: Uuid,
) -> Result<Vec<Uuid>, StoreError> {
    let rows = client
        .query(
            "WITH RECURSIVE down (id, depth) AS (
                 SELECT $1::uuid, 1
                 UNION ALL
                 SELECT h.tenant_id, down.depth + 1
                 FROM tenant_hierarchy h JOIN down ON h.parent_id = down.id
                 WHERE down.depth < $2
             )
             SELECT id FROM down",
            &[&tenant_id, &WALK_LIMIT],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Records that `tenant_id` now sits below `parent_id` (or at the root).
pub async fn set_parent(
    client: &impl GenericClient,
    tenant_id: Uuid,
    parent_id: Option<Uuid>,
) -> Result<(), StoreError> {
    client
        .execute(
            "INSERT INTO tenant_hierarchy (tenant_id, parent_id) VALUES ($1, $2)
             ON CONFLICT (tenant_id) DO UPDATE SET parent_id = EXCLUDED.parent_id",
            &[&tenant_id, &parent_id],
        )
        .await?;
    Ok(())
}
