//! The outbox relay: publishes outbox rows to Kafka as binary-mode CloudEvents, in commit
//! order, and deletes each row only after the broker acknowledged it. It does the same for
//! `projections.policy_outbox`, the policy_version bumps the `policy_versions` projection
//! enqueues, which go to the compacted policy topic as plain JSON.
//!
//! Exactly one instance relays at a time: the leader holds a session-level advisory lock on a
//! dedicated connection, so the lock dies with the connection and a standby takes over.

mod producer;
pub mod status;

use std::time::{Duration, Instant};

use charter_log::listener::Wakeup;
use charter_log::reader::{event_from_row, EVENT_COLUMNS};
use tokio_postgres::Client;
use tokio_util::sync::CancellationToken;

pub use producer::{client_config, producer_config, PolicyBump, Publisher};
pub use status::RelayStatus;

use crate::config::{Config, KafkaConfig};

const LEADER_LOCK: i64 = 0x6368_6172_7465_7202; // "charter\x02"

/// On shutdown the leader publishes what the last requests committed for up to this long,
/// so a graceful stop leaves no backlog behind (the next leader would publish it anyway).
const FINAL_DRAIN: Duration = Duration::from_millis(1_500);
/// Then librdkafka gets this long to deliver what it still holds.
const FINAL_FLUSH: Duration = Duration::from_millis(500);

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("database: {0}")]
    Db(#[from] tokio_postgres::Error),
    #[error("log: {0}")]
    Log(#[from] charter_log::reader::LogError),
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("cloudevent: {0}")]
    CloudEvent(String),
    #[error("configuration: {0}")]
    Config(String),
    #[error("{published} of {total} messages acknowledged; first failure: {error}")]
    Partial {
        published: usize,
        total: usize,
        error: String,
    },
}

pub struct Relay {
    db: charter_log::pg::PgConnect,
    kafka: KafkaConfig,
    publisher: Publisher,
    batch_size: i64,
    poll: Duration,
    linger: Duration,
    status: RelayStatus,
    /// Whether the topics are known to exist (or are not ours to create).
    topics_ready: bool,
}

impl Relay {
    pub fn new(config: &Config, status: RelayStatus) -> Result<Self, RelayError> {
        Ok(Self {
            db: crate::db::service(&config.database)
                .map_err(|e| RelayError::Config(e.to_string()))?,
            kafka: config.kafka.clone(),
            publisher: Publisher::new(&config.kafka)?,
            batch_size: config.relay.batch_size,
            poll: Duration::from_millis(config.relay.poll_interval_ms),
            linger: Duration::from_millis(config.relay.linger_ms),
            status,
            topics_ready: !config.kafka.create_topics,
        })
    }

    /// Campaigns for leadership and relays while leader, until shutdown.
    pub async fn run(mut self, mut wakeup: Wakeup, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            self.ensure_topics().await;
            if let Err(e) = self.lead(&mut wakeup, &shutdown).await {
                tracing::warn!(error = %e, "relay lost its database connection");
            }
            self.status.set_leader(false);
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = shutdown.cancelled() => {}
            }
        }
        tracing::info!("relay stopped");
    }

    /// Creates the topics when they are ours to create and not known to exist yet.
    async fn ensure_topics(&mut self) {
        if self.topics_ready {
            return;
        }
        match self.publisher.ensure_topics(&self.kafka).await {
            Ok(()) => self.topics_ready = true,
            Err(e) => {
                self.status.failed(&e.to_string());
                tracing::warn!(error = %e, "could not ensure Kafka topics; retrying");
            }
        }
    }

    /// One leadership term: connect, take the lock (or wait for it), relay until the
    /// connection fails or shutdown.
    async fn lead(
        &mut self,
        wakeup: &mut Wakeup,
        shutdown: &CancellationToken,
    ) -> Result<(), RelayError> {
        let (client, connection) = self.db.connect().await?;
        let driver = tokio::spawn(connection);
        loop {
            let locked: bool = client
                .query_one("SELECT pg_try_advisory_lock($1)", &[&LEADER_LOCK])
                .await?
                .get(0);
            if locked {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                _ = shutdown.cancelled() => return Ok(()),
            }
        }
        self.status.set_leader(true);
        tracing::info!("relay is the leader");
        let mut failures = 0u32;
        while !shutdown.is_cancelled() {
            let pause = match self.step(&client).await {
                Ok(0) => self.poll,
                Ok(_) => {
                    failures = 0;
                    continue;
                }
                Err(RelayError::Db(e)) => return Err(RelayError::Db(e)),
                Err(e) => {
                    failures = failures.saturating_add(1);
                    self.status.failed(&e.to_string());
                    metrics::counter!("charter_relay_errors_total").increment(1);
                    tracing::warn!(error = %e, attempt = failures, "relay batch failed; retrying");
                    // A broker that restarted may have forgotten this producer's id and
                    // sequence numbers and now refuses it. A fresh producer gets a new id; the
                    // unacknowledged rows are still at the head of the outbox and go again,
                    // in order.
                    match Publisher::new(&self.kafka) {
                        Ok(p) => self.publisher = p,
                        Err(e) => tracing::warn!(error = %e, "could not recreate the producer"),
                    }
                    // Topics that could not be created at start (a broker too slow to
                    // answer then) are asked for again, or every batch fails for good with
                    // UnknownTopicOrPartition.
                    self.ensure_topics().await;
                    (Duration::from_millis(200) * 2u32.saturating_pow(failures.min(5)))
                        .min(Duration::from_secs(5))
                }
            };
            tokio::select! {
                _ = wakeup.changed() => tokio::time::sleep(self.linger).await,
                _ = tokio::time::sleep(pause) => {}
                _ = shutdown.cancelled() => {}
            }
        }
        self.final_drain(&client).await;
        // Deliver what a cut-off batch left queued while this instance still holds the lock:
        // released first, a successor could publish a newer version of a policy scope that
        // this producer's late message would then overwrite.
        self.publisher.flush(FINAL_FLUSH);
        driver.abort();
        Ok(())
    }

    /// Publishes the rest of the outbox, bounded by [`FINAL_DRAIN`]. A batch cut off by the
    /// deadline keeps its rows, which the next leader sends again (at-least-once).
    async fn final_drain(&self, client: &Client) {
        let started = Instant::now();
        let mut published = 0;
        loop {
            let left = FINAL_DRAIN.saturating_sub(started.elapsed());
            match tokio::time::timeout(left, self.step(client)).await {
                Ok(Ok(0)) => break,
                Ok(Ok(n)) => published += n,
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "the relay's final drain failed");
                    break;
                }
                Err(_) => {
                    tracing::warn!(published, "the relay's final drain ran out of time");
                    break;
                }
            }
        }
        tracing::info!(
            published,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "relay drained on shutdown"
        );
    }

    /// Publishes one batch from the head of the events outbox, then one from the head of the
    /// policy outbox; returns how many rows it removed.
    pub async fn step(&self, client: &Client) -> Result<usize, RelayError> {
        let events = self.step_events(client).await?;
        let policy = self.step_policy(client).await?;
        if events + policy == 0 {
            self.status.idle();
        }
        Ok(events + policy)
    }

    /// Publishes one batch from the head of the outbox; returns how many rows it removed.
    async fn step_events(&self, client: &Client) -> Result<usize, RelayError> {
        let rows = client
            .query(
                &format!(
                    "SELECT ob.id AS outbox_id, ob.enqueued_at, {EVENT_COLUMNS}
                     FROM (SELECT id, position, tx_id AS outbox_tx, enqueued_at FROM outbox
                           WHERE tx_id < pg_snapshot_xmin(pg_current_snapshot())
                           ORDER BY tx_id, id LIMIT $1) ob
                     JOIN events USING (position)
                     ORDER BY ob.outbox_tx, ob.id"
                ),
                &[&self.batch_size],
            )
            .await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let mut batch = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: i64 = row.get("outbox_id");
            let enqueued: chrono::DateTime<chrono::Utc> = row.get("enqueued_at");
            batch.push((id, enqueued, event_from_row(row)?));
        }
        let events: Vec<_> = batch.iter().map(|(_, _, e)| e).collect();
        let acknowledged = self.publisher.publish(&events).await;
        let done = acknowledged
            .as_ref()
            .map_or_else(|p| p.acknowledged, |n| *n);
        if done > 0 {
            let ids: Vec<i64> = batch[..done].iter().map(|(id, _, _)| *id).collect();
            client
                .execute("DELETE FROM outbox WHERE id = ANY($1)", &[&ids])
                .await?;
            let now = chrono::Utc::now();
            for (_, enqueued, _) in &batch[..done] {
                let latency = (now - *enqueued).to_std().unwrap_or_default();
                metrics::histogram!("charter_relay_commit_to_ack_seconds")
                    .record(latency.as_secs_f64());
            }
            metrics::counter!("charter_relay_published_total").increment(done as u64);
            self.status.published(Instant::now());
        }
        match acknowledged {
            Ok(n) => Ok(n),
            Err(p) => Err(RelayError::Partial {
                published: p.acknowledged,
                total: batch.len(),
                error: p.error,
            }),
        }
    }

    /// Publishes one batch from the head of `projections.policy_outbox`, in the same horizon
    /// order as the events outbox; returns how many rows it removed.
    async fn step_policy(&self, client: &Client) -> Result<usize, RelayError> {
        let rows = client
            .query(
                "SELECT id, enqueued_at, tenant_id, workspace_id, policy_version
                 FROM projections.policy_outbox
                 WHERE tx_id < pg_snapshot_xmin(pg_current_snapshot())
                 ORDER BY tx_id, id LIMIT $1",
                &[&self.batch_size],
            )
            .await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let bumps: Vec<PolicyBump> = rows
            .iter()
            .map(|row| PolicyBump {
                tenant_id: row.get("tenant_id"),
                workspace_id: row.get("workspace_id"),
                policy_version: row.get("policy_version"),
            })
            .collect();
        let acknowledged = self.publisher.publish_policy(&bumps).await;
        let done = acknowledged
            .as_ref()
            .map_or_else(|p| p.acknowledged, |n| *n);
        if done > 0 {
            // A row a newer bump overwrote meanwhile stays, and goes out in the next batch.
            let ids: Vec<i64> = rows[..done].iter().map(|r| r.get("id")).collect();
            let versions: Vec<i64> = bumps[..done].iter().map(|b| b.policy_version).collect();
            // Rows are locked in scope order, as the projection's upserts lock them, so the two
            // cannot deadlock.
            client
                .execute(
                    "WITH sent AS ( \
                       SELECT o.id FROM projections.policy_outbox o \
                       JOIN unnest($1::bigint[], $2::bigint[]) AS s(id, policy_version) \
                         ON o.id = s.id AND o.policy_version = s.policy_version \
                       ORDER BY o.tenant_id, o.workspace_id FOR UPDATE OF o) \
                     DELETE FROM projections.policy_outbox WHERE id IN (SELECT id FROM sent)",
                    &[&ids, &versions],
                )
                .await?;
            let now = chrono::Utc::now();
            for row in &rows[..done] {
                let enqueued: chrono::DateTime<chrono::Utc> = row.get("enqueued_at");
                let latency = (now - enqueued).to_std().unwrap_or_default();
                metrics::histogram!("charter_relay_policy_enqueue_to_ack_seconds")
                    .record(latency.as_secs_f64());
            }
            metrics::counter!("charter_relay_policy_published_total").increment(done as u64);
            self.status.published(Instant::now());
        }
        match acknowledged {
            Ok(n) => Ok(n),
            Err(p) => Err(RelayError::Partial {
                published: p.acknowledged,
                total: bumps.len(),
                error: p.error,
            }),
        }
    }
}

/// The size of both outboxes (events and policy_version bumps) and the age of their oldest
/// row, for `/metrics` and `/ready`.
pub async fn backlog(
    client: &impl deadpool_postgres::GenericClient,
) -> Result<(i64, f64), tokio_postgres::Error> {
    let row = client
        .query_one(
            "SELECT count(*), COALESCE(extract(epoch FROM clock_timestamp() - min(enqueued_at)), 0)::float8 \
             FROM (SELECT enqueued_at FROM outbox \
                   UNION ALL SELECT enqueued_at FROM projections.policy_outbox) pending",
            &[],
        )
        .await?;
    Ok((row.get(0), row.get(1)))
}
