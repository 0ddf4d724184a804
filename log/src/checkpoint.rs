//! Projection checkpoints: where each read model stands in the global order.

use std::time::{Duration, Instant};

use deadpool_postgres::{GenericClient, Pool};

use crate::LogPosition;

/// The schema that holds the live read models.
pub const LIVE_SCHEMA: &str = "projections";

/// Creates missing checkpoint rows (at the start of the log) for the given projections.
pub async fn ensure(
    client: &impl GenericClient,
    schema: &str,
    names: &[&str],
) -> Result<(), tokio_postgres::Error> {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    client
        .execute(
            &format!(
                "INSERT INTO {schema}.checkpoints (name) SELECT unnest($1::text[]) \
                 ON CONFLICT (name) DO NOTHING"
            ),
            &[&names],
        )
        .await?;
    Ok(())
}

/// Every checkpoint, by projection name.
pub async fn all(
    client: &impl GenericClient,
    schema: &str,
) -> Result<Vec<(String, LogPosition)>, tokio_postgres::Error> {
    let rows = client
        .query(
            &format!(
                "SELECT name, tx_id::text::bigint, position FROM {schema}.checkpoints ORDER BY name"
            ),
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            (
                r.get(0),
                LogPosition {
                    tx_id: r.get(1),
                    position: r.get(2),
                },
            )
        })
        .collect())
}

/// True when every live projection has processed `token`.
pub async fn reached(
    client: &impl GenericClient,
    token: LogPosition,
) -> Result<bool, tokio_postgres::Error> {
    let row = client
        .query_one(
            &format!(
                "SELECT count(*) FROM {LIVE_SCHEMA}.checkpoints \
                 WHERE (tx_id, position) < ($1::text::xid8, $2)"
            ),
            &[&token.tx_id.to_string(), &token.position],
        )
        .await?;
    Ok(row.get::<_, i64>(0) == 0)
}

#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    #[error("database pool: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error(transparent)]
    Db(#[from] tokio_postgres::Error),
}

/// Waits, at most `timeout`, until every live projection has processed `token`.
/// Returns whether it got there. Holds a pooled connection only while it checks, so many
/// waiting readers cannot starve the pool.
pub async fn wait_for(
    pool: &Pool,
    token: LogPosition,
    timeout: Duration,
) -> Result<bool, WaitError> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        if reached(&pool.get().await?, token).await? {
            return Ok(true);
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(pause.min(deadline - now)).await;
        pause = (pause * 2).min(Duration::from_millis(25));
    }
}
