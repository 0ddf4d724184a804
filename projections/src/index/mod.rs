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

mod tenant;

use std::collections::HashSet;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use charter_events::permission::PermissionEvent;
use charter_events::{DomainEvent, RecordedEvent};
use deadpool_postgres::{GenericClient, Pool};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub use tenant::{Bound, Intern, Permission, Principal, TenantIndex};

use crate::entitlements::{changes, Change, UserEntitlements, TENANT_SCOPE};
use crate::policy_versions::{bump_for, Bump};
use charter_log::listener::Wakeup;
use charter_log::reader::{self, LogError};
use charter_log::LogPosition;

/// How many events one read of the log takes.
pub const BATCH: i64 = 5_000;

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("database pool: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("database: {0}")]
    Db(#[from] tokio_postgres::Error),
    #[error(transparent)]
    Log(#[from] LogError),
}

/// One immutable state of the index.
#[derive(Clone, Default)]
pub struct Snapshot {
    /// Every event up to here is applied (every part of the index).
    pub at: LogPosition,
    tenants: imbl::HashMap<Uuid, Arc<TenantIndex>>,
    /// The permission registry (names only).
    registry: imbl::HashSet<Permission>,
}

impl Snapshot {
    pub fn tenant(&self, id: Uuid) -> Option<&TenantIndex> {
        self.tenants.get(&id).map(|t| &**t)
    }

    /// Whether `name` is a registered permission.
    pub fn is_registered(&self, name: &str) -> bool {
        self.registry.contains(name)
    }

    /// The tenants, sorted by id.
    pub fn tenant_ids(&self) -> Vec<Uuid> {
        let mut ids: Vec<Uuid> = self.tenants.keys().copied().collect();
        ids.sort();
        ids
    }

    /// A user's (or service account's) entitlements: tenant-wide, and in every live workspace
    /// where a workspace binding adds to them, or in `workspace` only. `None` when the tenant
    /// has no such live principal.
    pub fn lookup(
        &self,
        tenant_id: Uuid,
        user_id: Uuid,
        workspace: Option<Uuid>,
    ) -> Option<UserEntitlements> {
        let tenant = self.tenant(tenant_id)?;
        tenant.principal(user_id)?;
        let workspaces = match workspace {
            Some(w) => tenant.resolve(user_id, Some(w)).into_iter().collect(),
            None => tenant
                .bound_workspaces(user_id)
                .into_iter()
                .filter_map(|w| tenant.resolve(user_id, Some(w)))
                .collect(),
        };
        Some(UserEntitlements {
            tenant_id,
            user_id,
            policy_version: tenant.policy_version(None),
            tenant: tenant.resolve(user_id, None),
            workspaces,
        })
    }

    /// Every active principal × scope (nil, then each live workspace) of `tenant_id` with at
    /// least one role, as [`crate::entitlements::fan_out`] derives it from the read model.
    pub fn fan_out(&self, tenant_id: Uuid) -> Vec<crate::entitlements::FanOutRow> {
        let Some(tenant) = self.tenant(tenant_id) else {
            return vec![];
        };
        let scopes: Vec<Option<Uuid>> = std::iter::once(None)
            .chain(tenant.live_workspaces().into_iter().map(Some))
            .collect();
        let mut rows = Vec::new();
        for user in tenant.principal_ids() {
            for scope in &scopes {
                if let Some(s) = tenant.resolve(user, *scope) {
                    rows.push((user, s.workspace_id, s.roles, s.permissions));
                }
            }
        }
        rows.sort();
        rows
    }

    /// The counters of `tenant_id`: `(workspace or nil, value)` for each counter bumped at
    /// least once, sorted (what `policy_versions` holds).
    pub fn counters(&self, tenant_id: Uuid) -> Vec<(Uuid, i64)> {
        let Some(t) = self.tenant(tenant_id) else {
            return vec![];
        };
        let mut all: Vec<(Uuid, i64)> = t.counters.iter().map(|(w, v)| (*w, *v)).collect();
        if t.counter > 0 {
            all.push((TENANT_SCOPE, t.counter));
        }
        all.sort();
        all
    }

    /// Bindings held in the index, over every tenant.
    pub fn binding_count(&self) -> usize {
        self.tenants.values().map(|t| t.binding_count()).sum()
    }
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

struct Writer {
    parts: Parts,
    names: Names,
}

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

    /// Loads the index from the live read models, in one repeatable-read snapshot so that
    /// every table and its checkpoint agree.
    pub async fn load(client: &mut deadpool_postgres::Client) -> Result<Self, IndexError> {
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        tx.batch_execute("SET LOCAL search_path TO projections, public")
            .await?;
        let checkpoint = |name: &'static str| {
            let tx = &tx;
            async move {
                let row = tx
                    .query_opt(
                        "SELECT tx_id::text::bigint, position FROM checkpoints WHERE name = $1",
                        &[&name],
                    )
                    .await?;
                Ok::<_, tokio_postgres::Error>(row.map_or(LogPosition::START, |r| LogPosition {
                    tx_id: r.get(0),
                    position: r.get(1),
                }))
            }
        };
        let parts = Parts {
            entitlements: checkpoint("entitlements").await?,
            policy: checkpoint("policy_versions").await?,
            registry: checkpoint("permissions").await?,
        };
        let mut names = Names::default();
        let mut tenants: std::collections::HashMap<Uuid, TenantIndex> = Default::default();
        for r in tx
            .query("SELECT tenant_id, active FROM ent_tenants", &[])
            .await?
        {
            tenants.entry(r.get(0)).or_default().active = r.get(1);
        }
        for r in tx
            .query(
                "SELECT tenant_id, workspace_id FROM ent_workspaces WHERE live",
                &[],
            )
            .await?
        {
            tenants
                .entry(r.get(0))
                .or_default()
                .workspaces
                .insert(r.get(1));
        }
        for r in tx
            .query("SELECT tenant_id, group_id FROM ent_groups WHERE live", &[])
            .await?
        {
            tenants.entry(r.get(0)).or_default().groups.insert(r.get(1));
        }
        let mut memberships: std::collections::HashMap<Uuid, Vec<Uuid>> = Default::default();
        for r in tx
            .query(
                "SELECT m.user_id, m.group_id FROM ent_members m \
                 JOIN ent_groups g ON g.group_id = m.group_id AND g.live ORDER BY 1, 2",
                &[],
            )
            .await?
        {
            memberships.entry(r.get(0)).or_default().push(r.get(1));
        }
        for r in tx
            .query(
                "SELECT tenant_id, user_id, active FROM ent_users WHERE live",
                &[],
            )
            .await?
        {
            let id: Uuid = r.get(1);
            let groups = memberships.remove(&id).unwrap_or_default();
            tenants.entry(r.get(0)).or_default().principals.insert(
                id,
                Principal {
                    active: r.get(2),
                    groups: groups.into(),
                },
            );
        }
        for r in tx
            .query(
                "SELECT tenant_id, role_id, permissions FROM ent_roles WHERE live",
                &[],
            )
            .await?
        {
            let permissions: Vec<String> = r.get(2);
            let change = Change::RoleCreated {
                role: r.get(1),
                workspace: None,
                permissions,
            };
            tenants
                .entry(r.get(0))
                .or_default()
                .apply(&change, &mut names);
        }
        let mut bindings: std::collections::HashMap<(Uuid, Uuid), Vec<Bound>> = Default::default();
        for r in tx
            .query(
                "SELECT tenant_id, subject_id, assignment_id, role_id, workspace_id \
                 FROM ent_assignments ORDER BY assignment_id",
                &[],
            )
            .await?
        {
            bindings
                .entry((r.get(0), r.get(1)))
                .or_default()
                .push(Bound {
                    assignment: r.get(2),
                    role: r.get(3),
                    workspace: r.get(4),
                });
        }
        for ((tenant, subject), held) in bindings {
            tenants
                .entry(tenant)
                .or_default()
                .bindings
                .insert(subject, held.into());
        }
        for r in tx
            .query(
                "SELECT tenant_id, workspace_id, version FROM policy_versions",
                &[],
            )
            .await?
        {
            let t = tenants.entry(r.get(0)).or_default();
            let (w, v): (Uuid, i64) = (r.get(1), r.get(2));
            if w == TENANT_SCOPE {
                t.counter = v;
            } else {
                t.counters.insert(w, v);
            }
        }
        let mut registry = imbl::HashSet::new();
        for r in tx.query("SELECT name FROM permissions", &[]).await? {
            registry.insert(names.intern(r.get(0)));
        }
        tx.commit().await?;
        let snapshot = Snapshot {
            at: LogPosition::START,
            tenants: tenants.into_iter().map(|(k, v)| (k, Arc::new(v))).collect(),
            registry,
        };
        Ok(Self::from_parts(snapshot, parts, names))
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
            if at > parts.registry && e.stream_type == PermissionEvent::STREAM_TYPE {
                match PermissionEvent::decode(
                    &e.event_type,
                    e.schema_version as u32,
                    e.data.clone(),
                ) {
                    Ok(PermissionEvent::Registered(r)) => {
                        next.registry.insert(names.intern(&r.name));
                    }
                    Ok(_) => {}
                    Err(err) => skipped("permissions", e, &err.into()),
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
