//! The in-process entitlement index: every instance answers lookups, `check` and the
//! policy-version counters from memory.
//!
//! - **Loaded** from the read models at start (the `ent_*` tables, `policy_versions` and
//!   `permissions`, with their checkpoints, in one snapshot), then **kept current** by
//!   following the log itself, with the same [`changes`] and [`bump_for`] as the projections.
//!   A part loaded behind another (a checkpoint behind) is brought up by the same reads, and
//!   no part applies an event twice.
//! - **Lock-free for readers.** The state is an immutable [`Snapshot`] behind an
//!   [`ArcSwap`]: a reader takes the current one and keeps it as long as it likes. The single
//!   writer derives the next snapshot from the current one per batch of events (per-tenant
//!   values with structurally shared maps: a change copies what it touches, not the tenant)
//!   and swaps it in atomically.
//! - **Read-your-writes.** [`Index::wait_for`] waits until the index itself has applied a
//!   consistency token's position.
//!
//! An event that cannot be decoded is skipped here, as the projections skip it once it is
//! recorded in `failed_events`; `charter_index_skipped_events_total` counts them.

mod load;
mod snapshot;
mod tenant;

use std::collections::HashSet;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use charter_events::permission::PermissionEvent;
use charter_events::RecordedEvent;
use deadpool_postgres::{GenericClient, Pool};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use charter_log::listener::Wakeup;
use charter_log::reader::{self, LogError};
use charter_log::LogPosition;
pub use snapshot::Snapshot;
pub use tenant::{Bound, Intern, Permission, Principal, TenantIndex};

use crate::entitlements::{changes, Change};
use crate::policy_versions::{bump_for, Bump};
use crate::projection::decode_own;

/// How many events one read of the log takes.
pub const BATCH: i64 = 5_000;

/// Why loading or following the index failed.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("database pool: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("database: {0}")]
    Db(#[from] tokio_postgres::Error),
    #[error(transparent)]
    Log(#[from] LogError),
}

/// Where each part of the index stands (they differ only when loaded from checkpoints that
/// differ).
#[derive(Debug, Clone, Copy)]
struct Parts {
    entitlements: LogPosition,
    policy: LogPosition,
    registry: LogPosition,
}

impl Parts {
    fn min(&self) -> LogPosition {
        self.entitlements.min(self.policy).min(self.registry)
    }
}

/// Interns permission names: each name is stored once per index.
#[derive(Default)]
pub struct Names(HashSet<Permission>);

impl Intern for Names {
    fn intern(&mut self, name: &str) -> Permission {
        if let Some(p) = self.0.get(name) {
            return p.clone();
        }
        let p: Permission = Arc::from(name);
        self.0.insert(p.clone());
        p
    }
}

/// What only the writer touches: where each part stands, and the interned names.
struct Writer {
    parts: Parts,
    names: Names,
}

/// The entitlement index: the current [`Snapshot`], and its single writer.
pub struct Index {
    current: ArcSwap<Snapshot>,
    reached: watch::Sender<LogPosition>,
    writer: std::sync::Mutex<Writer>,
    /// Unix time (ms) of the last read that found the index at the head of the log.
    caught_up_ms: AtomicI64,
}

impl Index {
    /// An empty index at the start of the log (tests and tools).
    pub fn empty() -> Self {
        Self::from_parts(
            Snapshot::default(),
            Parts {
                entitlements: LogPosition::START,
                policy: LogPosition::START,
                registry: LogPosition::START,
            },
            Names::default(),
        )
    }

    fn from_parts(snapshot: Snapshot, parts: Parts, names: Names) -> Self {
        let at = parts.min();
        let snapshot = Snapshot { at, ..snapshot };
        Index {
            current: ArcSwap::from_pointee(snapshot),
            reached: watch::Sender::new(at),
            writer: std::sync::Mutex::new(Writer { parts, names }),
            caught_up_ms: AtomicI64::new(0),
        }
    }

    /// The current snapshot. Lock-free; keep it for as long as one answer needs.
    pub fn snapshot(&self) -> arc_swap::Guard<Arc<Snapshot>> {
        self.current.load()
    }

    /// Where the index stands.
    pub fn position(&self) -> LogPosition {
        *self.reached.borrow()
    }

    /// Applies `events` (in log order, the first after the index's position; events it has
    /// applied are passed over) and publishes the next snapshot. One writer at a time.
    pub fn apply(&self, events: &[RecordedEvent]) {
        let Some(last) = events.last() else { return };
        let mut writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let Writer { parts, names } = &mut *writer;
        let mut next: Snapshot = (**self.current.load()).clone();
        let now = chrono::Utc::now();
        for e in events {
            let at = LogPosition {
                tx_id: e.tx_id,
                position: e.position,
            };
            if at > parts.entitlements {
                match changes(e) {
                    Ok(list) => {
                        for change in &list {
                            let key = match change {
                                Change::TenantCreated(id) => *id,
                                _ => e.tenant_id,
                            };
                            tenant_mut(&mut next, key).apply(change, names);
                        }
                    }
                    Err(err) => skipped("entitlements", e, &err),
                }
            }
            if at > parts.policy {
                match bump_for(e) {
                    Ok(Bump::None) => {}
                    Ok(Bump::Tenant) => tenant_mut(&mut next, e.tenant_id).bump(None),
                    Ok(Bump::Workspace(w)) => tenant_mut(&mut next, e.tenant_id).bump(Some(w)),
                    Err(err) => skipped("policy_versions", e, &err),
                }
            }
            if at > parts.registry {
                match decode_own::<PermissionEvent>(e) {
                    Ok(Some(PermissionEvent::Registered(r))) => {
                        next.registry.insert(names.intern(&r.name));
                    }
                    Ok(_) => {}
                    Err(err) => skipped("permissions", e, &err),
                }
            }
            let lag = (now - e.recorded_at).num_microseconds().unwrap_or(0).max(0);
            metrics::histogram!("charter_index_commit_lag_seconds").record(lag as f64 / 1e6);
        }
        let to = LogPosition {
            tx_id: last.tx_id,
            position: last.position,
        };
        parts.entitlements = parts.entitlements.max(to);
        parts.policy = parts.policy.max(to);
        parts.registry = parts.registry.max(to);
        next.at = parts.min();
        let at = next.at;
        self.current.store(Arc::new(next));
        self.reached.send_replace(at);
        metrics::counter!("charter_index_events_total").increment(events.len() as u64);
    }

    /// Reads and applies the log after the index's position, one batch; returns how many
    /// events it read.
    pub async fn step(&self, client: &impl GenericClient) -> Result<usize, IndexError> {
        let from = self
            .writer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .parts
            .min();
        let events = reader::read_after(client, from, BATCH).await?;
        self.apply(&events);
        if (events.len() as i64) < BATCH {
            self.caught_up_ms
                .store(chrono::Utc::now().timestamp_millis(), Ordering::Relaxed);
        }
        Ok(events.len())
    }

    /// Applies the log until it is drained.
    pub async fn catch_up(&self, pool: &Pool) -> Result<usize, IndexError> {
        let client = pool.get().await?;
        let mut total = 0;
        loop {
            let n = self.step(&client).await?;
            total += n;
            if (n as i64) < BATCH {
                return Ok(total);
            }
        }
    }

    /// How long ago the index last found itself at the head of the log (`None`: never).
    pub fn since_caught_up(&self) -> Option<Duration> {
        let at = self.caught_up_ms.load(Ordering::Relaxed);
        (at > 0).then(|| {
            Duration::from_millis((chrono::Utc::now().timestamp_millis() - at).max(0) as u64)
        })
    }

    /// Waits, at most `timeout`, until the index has applied `token`. Returns whether it did.
    pub async fn wait_for(&self, token: LogPosition, timeout: Duration) -> bool {
        let mut reached = self.reached.subscribe();
        tokio::time::timeout(timeout, reached.wait_for(|at| *at >= token))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Waits until the index has moved past `at`, or until `deadline`.
    pub async fn wait_past(&self, at: LogPosition, deadline: tokio::time::Instant) {
        let mut reached = self.reached.subscribe();
        let _ = tokio::time::timeout_at(deadline, reached.wait_for(|now| *now > at)).await;
    }

    /// Follows the log until shutdown: wakes on every append (NOTIFY, or this process's
    /// commits), polls every `poll` as a fallback, and backs off while reads fail.
    pub async fn follow(
        self: Arc<Self>,
        pool: Pool,
        mut wakeup: Wakeup,
        poll: Duration,
        shutdown: CancellationToken,
    ) {
        let mut failures: u32 = 0;
        while !shutdown.is_cancelled() {
            let read = match pool.get().await {
                Ok(client) => self.step(&client).await,
                Err(e) => Err(e.into()),
            };
            let pause = match read {
                Ok(n) if n as i64 == BATCH => {
                    failures = 0;
                    continue;
                }
                Ok(_) => {
                    failures = 0;
                    poll
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    metrics::counter!("charter_index_errors_total").increment(1);
                    tracing::warn!(error = %e, attempt = failures, "entitlement index: reading the log failed");
                    (Duration::from_millis(50) * 2u32.saturating_pow(failures.min(6))).min(poll)
                }
            };
            tokio::select! {
                _ = wakeup.changed(), if failures == 0 => {}
                _ = tokio::time::sleep(pause) => {}
                _ = shutdown.cancelled() => {}
            }
        }
    }
}

fn tenant_mut(snapshot: &mut Snapshot, tenant: Uuid) -> &mut TenantIndex {
    Arc::make_mut(snapshot.tenants.entry(tenant).or_default())
}

fn skipped(part: &'static str, e: &RecordedEvent, err: &crate::ProjectionError) {
    metrics::counter!("charter_index_skipped_events_total", "part" => part).increment(1);
    tracing::error!(part, event_id = %e.event_id, event_type = %e.event_type, position = e.position,
        error = %err, "entitlement index: event skipped");
}
