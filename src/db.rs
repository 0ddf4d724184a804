//! The connection pool and the embedded migrations.

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

use crate::config::DatabaseConfig;

refinery::embed_migrations!("migrations");

/// Every instance takes this session-level lock before migrating, so two instances starting
/// at once apply each migration exactly once.
const MIGRATION_LOCK: i64 = 0x6368_6172_7465_7201; // "charter\x01"

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("invalid database configuration: {0}")]
    Config(String),
    #[error("database: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("migration failed: {0}")]
    Migration(#[from] refinery::Error),
}

pub fn pool(config: &DatabaseConfig) -> Result<Pool, DbError> {
    build_pool(config.pg_config()?, config, config.pool_size)
}

/// `size` connections as the schema owner, for tools that create schemas (replay). Commits
/// do not wait for the WAL flush: what they write is scratch until promoted, and promotion
/// commits durably (it sets `synchronous_commit` back on).
pub fn owner_pool(config: &DatabaseConfig, size: usize) -> Result<Pool, DbError> {
    let mut pg = config.migration_pg_config()?;
    // Re-deriving entitlements sorts a user × workspace × permission fan-out: in memory.
    pg.options("-c synchronous_commit=off -c work_mem=64MB");
    pg.application_name("charter-replay");
    build_pool(pg, config, size)
}

fn build_pool(
    pg: tokio_postgres::Config,
    config: &DatabaseConfig,
    size: usize,
) -> Result<Pool, DbError> {
    let timeout = Some(Duration::from_millis(config.connect_timeout_ms));
    let manager = Manager::from_config(
        pg,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(timeout)
        .create_timeout(timeout)
        .recycle_timeout(timeout)
        .build()
        .map_err(|e| DbError::Config(e.to_string()))
}

/// What the service role may do once migrations ran as a separate owner. `events` is
/// SELECT/INSERT only: the service can append history, never rewrite it.
const SERVICE_GRANTS: &str = "
    GRANT USAGE ON SCHEMA public, projections TO {role};
    GRANT SELECT, INSERT ON events TO {role};
    GRANT SELECT, INSERT, UPDATE, DELETE ON outbox, unique_claims, idempotency_keys,
        tenant_hierarchy TO {role};
    GRANT SELECT ON refinery_schema_history TO {role};
    GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA projections TO {role};
    GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role};
";

/// Applies the embedded migrations that are not applied yet, as the schema owner, then grants
/// the service role its privileges. Safe to run concurrently.
pub async fn migrate(config: &DatabaseConfig) -> Result<Vec<String>, DbError> {
    let owner = config.migration_pg_config()?;
    let service_role = config.pg_config()?.get_user().map(str::to_owned);
    let (mut client, connection) = owner.connect(NoTls).await?;
    let driver = tokio::spawn(connection);
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    let report = migrations::runner().run_async(&mut client).await;
    if report.is_ok() {
        if let Some(role) = service_role.filter(|r| Some(r.as_str()) != owner.get_user()) {
            let role = format!("\"{}\"", role.replace('"', "\"\""));
            client
                .batch_execute(&SERVICE_GRANTS.replace("{role}", &role))
                .await?;
        }
    }
    // Unlocking explicitly keeps the lock's life obvious; closing the connection would too.
    let _ = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await;
    drop(client);
    let _ = driver.await;
    let applied = report?
        .applied_migrations()
        .iter()
        .map(|m| m.to_string())
        .collect();
    Ok(applied)
}

/// The newest migration embedded in this binary.
pub fn latest_migration() -> i32 {
    migrations::runner()
        .get_migrations()
        .iter()
        .map(|m| m.version())
        .max()
        .unwrap_or(0)
}

/// The newest migration applied to the database (0 when none).
pub async fn applied_migration(
    client: &impl deadpool_postgres::GenericClient,
) -> Result<i32, tokio_postgres::Error> {
    let row = client
        .query_one(
            "SELECT COALESCE(max(version), 0)::int4 FROM refinery_schema_history",
            &[],
        )
        .await?;
    Ok(row.get(0))
}
