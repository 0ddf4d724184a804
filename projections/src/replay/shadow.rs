//! The shadow schema of a replay: created as an unlogged copy of the live tables, rebuilt from
//! the log (phase 1), promoted over the live read models when asked, and dropped.

use std::sync::atomic::Ordering;
use std::time::Duration;

use charter_log::checkpoint::{self, LIVE_SCHEMA};
use charter_log::reader;
use charter_log::LogPosition;
use deadpool_postgres::{GenericClient, Transaction};

use super::{fan_out, Progress, Replay, ReplayError};

impl Replay {
    /// Creates the shadow schema: an unlogged copy of every live table (also those a
    /// projection writes without owning, such as the policy outbox, which therefore never
    /// sees a replayed row) and checkpoints at the start of the log.
    pub async fn create_shadow(&self) -> Result<(), ReplayError> {
        let client = self.pool.get().await?;
        let live: Vec<String> = client
            .query(
                "SELECT tablename::text FROM pg_tables WHERE schemaname = $1 ORDER BY 1",
                &[&LIVE_SCHEMA],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let mut ddl = format!("CREATE SCHEMA {};", self.schema);
        for t in &live {
            ddl.push_str(&format!(
                "CREATE UNLOGGED TABLE {}.{t} (LIKE {LIVE_SCHEMA}.{t} INCLUDING ALL);",
                self.schema
            ));
        }
        client.batch_execute(&ddl).await?;
        let names: Vec<&str> = self.projections.iter().map(|p| p.name()).collect();
        checkpoint::ensure(&client, &self.schema, &names).await?;
        Ok(())
    }

    pub async fn drop_shadow(&self) -> Result<(), ReplayError> {
        let client = self.pool.get().await?;
        client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema))
            .await?;
        Ok(())
    }

    /// Phase 1: applies the log up to `target` to every shadow projection. The log is read
    /// once and each batch handed to every projection's runner, which applies it in its own
    /// transaction and connection. `progress` is called about every 250 ms. Returns the number
    /// of events read and when each projection finished.
    pub async fn rebuild(
        &self,
        target: LogPosition,
        mut progress: impl FnMut(Progress),
    ) -> Result<(u64, Vec<(&'static str, f64)>), ReplayError> {
        let total =
            reader::count_range(&self.pool.get().await?, LogPosition::START, target).await?;
        let (applied, all) = fan_out(
            self.pool.clone(),
            &self.projections,
            &self.schema,
            self.batch_size,
            LogPosition::START,
            target,
        );
        let mut all = Box::pin(all);
        let names: Vec<&'static str> = self.projections.iter().map(|p| p.name()).collect();
        let slowest = || {
            applied
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .min()
                .unwrap_or(total)
        };
        loop {
            tokio::select! {
                done = &mut all => {
                    let (read, finished) = done?;
                    progress(Progress { applied: read, total: read.max(total) });
                    return Ok((read, names.into_iter().zip(finished).collect()));
                }
                _ = tokio::time::sleep(Duration::from_millis(250)) => {
                    progress(Progress { applied: slowest(), total });
                }
            }
        }
    }

    /// Replaces the live rows of the projections' tables, failures and checkpoints with the
    /// shadow's. DELETE rather than TRUNCATE: readers keep reading the old rows until the
    /// commit, then see the new ones, and the live tables keep their triggers and grants.
    pub(super) async fn promote(
        &self,
        tx: &Transaction<'_>,
        names: &[String],
    ) -> Result<(), ReplayError> {
        let shadow = &self.schema;
        let failed: i64 = tx
            .query_one(
                &format!("SELECT count(*) FROM {shadow}.failed_events WHERE projection = ANY($1)"),
                &[&names],
            )
            .await?
            .get(0);
        if failed > 0 {
            return Err(ReplayError::ShadowFailed(failed));
        }
        let mut sql = String::new();
        for p in &self.projections {
            for t in p.tables() {
                sql.push_str(&format!(
                    "DELETE FROM {LIVE_SCHEMA}.{t}; \
                     INSERT INTO {LIVE_SCHEMA}.{t} OVERRIDING SYSTEM VALUE SELECT * FROM {shadow}.{t};"
                ));
            }
        }
        tx.batch_execute(&sql).await?;
        tx.execute(
            &format!("DELETE FROM {LIVE_SCHEMA}.failed_events WHERE projection = ANY($1)"),
            &[&names],
        )
        .await?;
        tx.execute(
            &format!(
                "INSERT INTO {LIVE_SCHEMA}.checkpoints (name, tx_id, position) \
                 SELECT name, tx_id, position FROM {shadow}.checkpoints WHERE name = ANY($1) \
                 ON CONFLICT (name) DO UPDATE SET tx_id = EXCLUDED.tx_id, \
                 position = EXCLUDED.position, updated_at = now()"
            ),
            &[&names],
        )
        .await?;
        // Anything may have changed: token verifiers drop their caches.
        tx.batch_execute("SELECT pg_notify('charter_auth', '')")
            .await?;
        Ok(())
    }
}
