//! The contract every read model implements.

use charter_events::RecordedEvent;
use deadpool_postgres::{GenericClient, Transaction};
use tokio_postgres::types::ToSql;

#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error(transparent)]
    Db(#[from] tokio_postgres::Error),
    #[error(transparent)]
    Decode(#[from] charter_events::DecodeError),
    #[error(transparent)]
    Log(#[from] crate::log::LogError),
    #[error("{0}")]
    Invariant(String),
}

/// A read model folded from the log. `apply` runs inside the runner's transaction, which also
/// advances the checkpoint, so each event takes effect exactly once. Tables are referenced
/// unqualified: the runner sets `search_path` to the live or the shadow schema.
#[async_trait::async_trait]
pub trait Projection: Send + Sync {
    /// Stable name, used as the checkpoint key.
    fn name(&self) -> &'static str;

    /// The tables this projection owns (replay rebuilds and compares exactly these).
    fn tables(&self) -> &'static [&'static str];

    /// Applies one event. Events the projection does not care about are ignored.
    async fn apply(
        &self,
        tx: &Transaction<'_>,
        event: &RecordedEvent,
    ) -> Result<(), ProjectionError>;

    /// Applies a batch of events in order, in one transaction. The default applies them one
    /// by one; a projection that can do better with set-based statements overrides it. On
    /// failure it returns the index of the event that failed, or of the last event when it
    /// cannot tell which one did (the runner then isolates the whole batch).
    async fn apply_batch(
        &self,
        tx: &Transaction<'_>,
        events: &[RecordedEvent],
    ) -> Result<(), (usize, ProjectionError)> {
        for (i, event) in events.iter().enumerate() {
            self.apply(tx, event).await.map_err(|e| (i, e))?;
        }
        Ok(())
    }
}

/// Executes `sql` through the connection's statement cache: one round trip instead of a
/// prepare and an execute.
pub async fn execute(
    client: &impl GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<u64, tokio_postgres::Error> {
    let statement = client.prepare_cached(sql).await?;
    client.execute(&statement, params).await
}
