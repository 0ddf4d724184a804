//! Transaction-scoped advisory locks. They serialize decisions that read more than their own
//! stream, and they never assign a transaction id (see the ordering invariant in `events`).

use deadpool_postgres::GenericClient;
use uuid::Uuid;

use super::StoreError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Many holders: commands that need the tenant to stay as they read it.
    Shared,
    /// One holder: commands that change whether the tenant can be used (block, delete).
    Exclusive,
}

/// Locks one tenant's status until the transaction ends.
pub async fn tenant(client: &impl GenericClient, id: Uuid, mode: Mode) -> Result<(), StoreError> {
    let f = match mode {
        Mode::Shared => "pg_advisory_xact_lock_shared",
        Mode::Exclusive => "pg_advisory_xact_lock",
    };
    let statement = client
        .prepare_cached(&format!(
            "SELECT {f}(hashtextextended('tenant:' || $1::uuid, 0))"
        ))
        .await?;
    client.execute(&statement, &[&id]).await?;
    Ok(())
}

/// Guards the shape of the tenant hierarchy: moves hold it exclusively, so two concurrent
/// moves cannot together close a cycle (or exceed the depth) that neither sees alone; creates
/// below a parent hold it shared, so the ancestors they read stay put.
pub async fn hierarchy(client: &impl GenericClient, mode: Mode) -> Result<(), StoreError> {
    let f = match mode {
        Mode::Shared => "pg_advisory_xact_lock_shared",
        Mode::Exclusive => "pg_advisory_xact_lock",
    };
    client
        .execute(
            &format!("SELECT {f}(hashtextextended('tenant-hierarchy', 0))"),
            &[],
        )
        .await?;
    Ok(())
}

/// Serializes retries of one idempotency key.
pub async fn idempotency_key(
    client: &impl GenericClient,
    scope: &str,
    key: &str,
) -> Result<(), StoreError> {
    client
        .execute(
            "SELECT pg_advisory_xact_lock(hashtextextended('idem:' || $1 || ':' || $2, 0))",
            &[&scope, &key],
        )
        .await?;
    Ok(())
}
