//! The newest policy version of every scope, from Charter's compacted policy topic.
//!
//! Charter publishes each policy-version counter's newest value to `charter.iam.policy.v1`,
//! keyed `<tenant_id>/<workspace_id>` ([`charter_events::policy`]). The [`PolicyCache`]
//! reads the topic from the beginning, assigning every partition itself (it joins no consumer
//! group and commits nothing; librdkafka wants a `group.id` even to assign, so it gets a
//! private random one the broker never sees joined), and keeps the highest value of each counter. A token is stale when its
//! `policy_version` is below its scope's effective version, computed as Charter computes it
//! ([`charter_events::policy::effective`]).
//!
//! **Ready** means the cache has read every partition up to the high-water mark it found at
//! start. **Fresh as of** `t` means that, at `t`, it had read everything the broker held: a
//! probe asks the broker for its high-water marks every
//! [`PolicyCacheConfig::probe_interval`], and once the cache has read up to them it is fresh
//! as of the probe. While the broker is unreachable the cache keeps what it has and its
//! staleness grows; past [`PolicyCacheConfig::staleness_budget`] it either refuses every
//! check ([`OnStale::FailClosed`], the default) or goes on serving ([`OnStale::ServeStale`]).
//! [`PolicyCache::health`] and the metrics `charter_client_policy_ready`,
//! `charter_client_policy_staleness_seconds` and `charter_client_policy_messages_total`
//! show the state.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use uuid::Uuid;

use charter_events::access_token::Claims;
use charter_events::policy::{effective, PolicyMessage, CONTRACT};

/// What a cache past its staleness budget does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnStale {
    /// Refuse every check (503) until the cache is fresh again.
    FailClosed,
    /// Go on answering with the versions it has.
    ServeStale,
}

/// Where the policy topic is and how stale the cache may get.
#[derive(Debug, Clone)]
pub struct PolicyCacheConfig {
    /// `bootstrap.servers`.
    pub brokers: String,
    /// The policy topic (`kafka.policy_topic` of Charter).
    pub topic: String,
    /// How long the cache may go without being confirmed current.
    pub staleness_budget: Duration,
    /// What happens past the budget.
    pub on_stale: OnStale,
    /// How often the broker's high-water marks are read.
    pub probe_interval: Duration,
    /// Further librdkafka settings (TLS, SASL, ...).
    pub kafka: Vec<(String, String)>,
}

impl PolicyCacheConfig {
    /// The defaults: topic `charter.iam.policy.v1`, a 30 s budget, failing closed past it,
    /// probes every 500 ms.
    pub fn new(brokers: impl Into<String>) -> Self {
        Self {
            brokers: brokers.into(),
            topic: "charter.iam.policy.v1".into(),
            staleness_budget: Duration::from_secs(30),
            on_stale: OnStale::FailClosed,
            probe_interval: Duration::from_millis(500),
            kafka: Vec::new(),
        }
    }
}

/// Why the cache refused a token, or could not judge it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The token's version is below its scope's current one.
    #[error("the token is stale: its policy version {token} is older than the current {current}")]
    StaleToken {
        /// The token's `policy_version`.
        token: i64,
        /// The scope's effective version.
        current: i64,
    },
    /// The cache has not yet read the topic up to where it was at start.
    #[error("the policy cache is not ready yet")]
    NotReady,
    /// The cache has not been confirmed current for longer than its budget (fail closed).
    #[error("the policy cache is {staleness:?} stale, beyond its budget of {budget:?}")]
    BudgetExceeded {
        /// How long since the cache was last confirmed current.
        staleness: Duration,
        /// The configured budget.
        budget: Duration,
    },
}

/// The cache's state, for a health endpoint.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PolicyHealth {
    /// Whether it has caught up with the topic as it was at start.
    pub ready: bool,
    /// Whether checks are answered (ready, and within budget or serving stale).
    pub serving: bool,
    /// Milliseconds since the cache was last confirmed current (`None` before that).
    pub staleness_ms: Option<u64>,
    /// The configured budget, in milliseconds.
    pub budget_ms: u64,
    /// The number of counters held.
    pub counters: usize,
    /// Messages read since start.
    pub messages: u64,
    /// The last error the consumer or a probe reported, if the last probe failed.
    pub last_error: Option<String>,
}

/// A probe: when it asked, and each partition's `(low, high)` watermarks then.
struct Probe {
    at: Instant,
    marks: HashMap<i32, (i64, i64)>,
}

#[derive(Default)]
struct Progress {
    /// Each partition's next offset to read.
    next: HashMap<i32, i64>,
    /// Probes not yet caught up with, oldest first.
    pending: VecDeque<Probe>,
    last_error: Option<String>,
}

/// Probes kept waiting for the consumer; older ones are dropped first.
const MAX_PENDING: usize = 64;

struct Shared {
    config: PolicyCacheConfig,
    counters: RwLock<HashMap<(Uuid, Uuid), i64>>,
    progress: Mutex<Progress>,
    ready: AtomicBool,
    /// Nanoseconds after `epoch` at which the cache was last confirmed current; 0: never.
    fresh_as_of: AtomicU64,
    epoch: Instant,
    messages: AtomicU64,
    stop: AtomicBool,
}

/// Stops the cache's threads when the last clone of the cache is dropped.
struct Running(Arc<Shared>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.stop.store(true, Ordering::Release);
    }
}

/// The newest policy version of every scope. Cheap to clone; its two threads (one reads
/// the topic, one probes the broker) stop when the last clone is dropped.
#[derive(Clone)]
pub struct PolicyCache {
    shared: Arc<Shared>,
    _running: Arc<Running>,
}

impl PolicyCache {
    /// Starts reading the topic. Returns at once; [`PolicyCache::wait_ready`] waits for the
    /// catch-up.
    pub fn start(config: PolicyCacheConfig) -> Result<Self, KafkaError> {
        let mut client = ClientConfig::new();
        for (key, value) in &config.kafka {
            client.set(key, value);
        }
        // The settings the cache rests on come last: no setting of the caller's overrides them.
        client
            .set("bootstrap.servers", &config.brokers)
            // librdkafka refuses to assign without a `group.id`, though an assign-only
            // consumer never joins its group: a private, random one, never committed to, so
            // the broker holds no group state and no offset for it.
            .set(
                "group.id",
                format!("charter-client-policy-{}", Uuid::new_v4()),
            )
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "true")
            .set("auto.offset.reset", "earliest")
            .set("fetch.wait.max.ms", "10")
            .set("reconnect.backoff.max.ms", "1000");
        let consumer: Arc<BaseConsumer> = Arc::new(client.create()?);
        let shared = Arc::new(Shared::new(config));
        metrics::gauge!("charter_client_policy_ready").set(0.0);
        let (reader, prober) = (shared.clone(), shared.clone());
        let reading = consumer.clone();
        std::thread::Builder::new()
            .name("charter-policy-read".into())
            .spawn(move || read(&reader, &reading))
            .expect("spawn the policy reader");
        std::thread::Builder::new()
            .name("charter-policy-probe".into())
            .spawn(move || probe(&prober, &consumer))
            .expect("spawn the policy prober");
        Ok(Self {
            _running: Arc::new(Running(shared.clone())),
            shared,
        })
    }

    /// Waits until the cache is ready, for at most `timeout`; `false` if it is not.
    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while !self.is_ready() {
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }

    /// Whether the cache has caught up with the topic as it was at start.
    pub fn is_ready(&self) -> bool {
        self.shared.ready.load(Ordering::Acquire)
    }

    /// How long since the cache was last confirmed current (`None` before the first time).
    pub fn staleness(&self) -> Option<Duration> {
        self.shared.staleness()
    }

    /// The effective policy version of a scope: the tenant's counter, plus the workspace's
    /// for a workspace scope (0 for a counter never seen).
    pub fn effective_version(&self, tenant_id: Uuid, workspace_id: Option<Uuid>) -> i64 {
        let counters = self
            .shared
            .counters
            .read()
            .unwrap_or_else(|e| e.into_inner());
        let of = |workspace: Uuid| counters.get(&(tenant_id, workspace)).copied();
        effective(
            of(Uuid::nil()).unwrap_or(0),
            workspace_id.map(|w| of(w).unwrap_or(0)),
        )
    }

    /// Whether `claims` may be trusted as far as the policy version goes: the cache is ready
    /// and within budget (or serving stale), and the token is not older than its scope.
    pub fn check(&self, claims: &Claims) -> Result<(), PolicyError> {
        self.serving()?;
        let current = self.effective_version(claims.tenant_id, claims.workspace_id);
        if claims.policy_version < current {
            return Err(PolicyError::StaleToken {
                token: claims.policy_version,
                current,
            });
        }
        Ok(())
    }

    /// `Ok` while checks are answered.
    fn serving(&self) -> Result<(), PolicyError> {
        if !self.is_ready() {
            return Err(PolicyError::NotReady);
        }
        let config = &self.shared.config;
        if config.on_stale == OnStale::FailClosed {
            let staleness = self.staleness().unwrap_or(Duration::MAX);
            if staleness > config.staleness_budget {
                return Err(PolicyError::BudgetExceeded {
                    staleness,
                    budget: config.staleness_budget,
                });
            }
        }
        Ok(())
    }

    /// The cache's state.
    pub fn health(&self) -> PolicyHealth {
        let progress = self
            .shared
            .progress
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        PolicyHealth {
            ready: self.is_ready(),
            serving: self.serving().is_ok(),
            staleness_ms: self.staleness().map(|s| s.as_millis() as u64),
            budget_ms: self.shared.config.staleness_budget.as_millis() as u64,
            counters: self
                .shared
                .counters
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .len(),
            messages: self.shared.messages.load(Ordering::Relaxed),
            last_error: progress.last_error.clone(),
        }
    }
}

impl Shared {
    fn new(config: PolicyCacheConfig) -> Self {
        Self {
            config,
            counters: RwLock::default(),
            progress: Mutex::default(),
            ready: AtomicBool::new(false),
            fresh_as_of: AtomicU64::new(0),
            epoch: Instant::now(),
            messages: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        }
    }

    fn staleness(&self) -> Option<Duration> {
        match self.fresh_as_of.load(Ordering::Acquire) {
            0 => None,
            at => Some(
                self.epoch
                    .elapsed()
                    .saturating_sub(Duration::from_nanos(at)),
            ),
        }
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    /// Folds one message's counter in: the highest value of each counter wins.
    fn fold(&self, payload: &[u8]) {
        let message: PolicyMessage = match serde_json::from_slice(payload) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "skipping a policy message that is not Charter's");
                return;
            }
        };
        // A counter of another contract cannot be compared with tokens of this one.
        if message.contract != CONTRACT {
            return;
        }
        // Counters start at 0 and only grow.
        if message.policy_version < 0 {
            tracing::warn!(
                version = message.policy_version,
                "skipping a negative policy counter"
            );
            return;
        }
        let key = (
            message.tenant_id,
            message.workspace_id.unwrap_or(Uuid::nil()),
        );
        let mut counters = self.counters.write().unwrap_or_else(|e| e.into_inner());
        let entry = counters.entry(key).or_insert(message.policy_version);
        *entry = (*entry).max(message.policy_version);
    }

    /// Marks the cache current as of every pending probe the consumer has caught up with.
    fn advance(&self, progress: &mut Progress) {
        let mut caught_up = None;
        while let Some(probe) = progress.pending.front() {
            let done = probe.marks.iter().all(|(partition, &(low, high))| {
                high <= low || progress.next.get(partition).is_some_and(|&n| n >= high)
            });
            if !done {
                break;
            }
            caught_up = progress.pending.pop_front().map(|p| p.at);
        }
        if let Some(at) = caught_up {
            let nanos = at.duration_since(self.epoch).as_nanos().max(1) as u64;
            self.fresh_as_of.fetch_max(nanos, Ordering::AcqRel);
            if !self.ready.swap(true, Ordering::AcqRel) {
                metrics::gauge!("charter_client_policy_ready").set(1.0);
                tracing::info!("the policy cache is ready");
            }
        }
    }
}

/// The reader thread: folds every message in and records how far each partition is read.
fn read(shared: &Shared, consumer: &BaseConsumer) {
    while !shared.stopped() {
        let Some(polled) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let partition = match polled {
            Ok(message) => {
                if let Some(payload) = message.payload() {
                    shared.fold(payload);
                }
                shared.messages.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("charter_client_policy_messages_total").increment(1);
                Some((message.partition(), message.offset() + 1))
            }
            Err(KafkaError::PartitionEOF(partition)) => Some((partition, -1)),
            Err(e) => {
                tracing::debug!(error = %e, "policy topic consumer");
                None
            }
        };
        if let Some((partition, after)) = partition {
            // The consumer's own position also steps over offsets compaction removed.
            let position = consumer.position().ok().and_then(|list| {
                list.find_partition(&shared.config.topic, partition)
                    .and_then(|p| match p.offset() {
                        Offset::Offset(o) => Some(o),
                        _ => None,
                    })
            });
            let next = after.max(position.unwrap_or(-1));
            let mut progress = shared.progress.lock().unwrap_or_else(|e| e.into_inner());
            let entry = progress.next.entry(partition).or_insert(next);
            *entry = (*entry).max(next);
            shared.advance(&mut progress);
        }
    }
}

/// The probe thread: assigns the topic's partitions (new ones too) and reads the broker's
/// high-water marks every probe interval.
fn probe(shared: &Shared, consumer: &BaseConsumer) {
    let config = &shared.config;
    let timeout = config.probe_interval.max(Duration::from_secs(1));
    let mut partitions: Vec<i32> = Vec::new();
    let mut round = 0u64;
    while !shared.stopped() {
        if partitions.is_empty() || round % 20 == 0 {
            match discover_partitions(consumer, &config.topic, timeout) {
                Ok(found) => {
                    let new: Vec<i32> = found
                        .iter()
                        .copied()
                        .filter(|p| !partitions.contains(p))
                        .collect();
                    if !new.is_empty() {
                        // Without a group there is no incremental assignment: the whole list
                        // again, each known partition from where the reader is (re-reading a
                        // message it raced with is harmless: the highest value wins), each new
                        // one from the beginning.
                        let next = shared
                            .progress
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .next
                            .clone();
                        let mut list = TopicPartitionList::new();
                        for &p in partitions.iter().chain(&new) {
                            let offset = next
                                .get(&p)
                                .filter(|&&n| n >= 0)
                                .map_or(Offset::Beginning, |&n| Offset::Offset(n));
                            let _ = list.add_partition_offset(&config.topic, p, offset);
                        }
                        if let Err(e) = consumer.assign(&list) {
                            note_error(shared, format!("assigning {new:?}: {e}"));
                        } else {
                            partitions.extend(new);
                        }
                    }
                }
                Err(e) => note_error(shared, e),
            }
        }
        round += 1;
        if !partitions.is_empty() {
            let at = Instant::now();
            let marks: Result<HashMap<i32, (i64, i64)>, KafkaError> = partitions
                .iter()
                .map(|&p| Ok((p, consumer.fetch_watermarks(&config.topic, p, timeout)?)))
                .collect();
            match marks {
                Ok(marks) => {
                    let mut progress = shared.progress.lock().unwrap_or_else(|e| e.into_inner());
                    progress.last_error = None;
                    if progress.pending.len() >= MAX_PENDING {
                        progress.pending.pop_front();
                    }
                    progress.pending.push_back(Probe { at, marks });
                    shared.advance(&mut progress);
                }
                Err(e) => note_error(shared, format!("reading the high-water marks: {e}")),
            }
        }
        if let Some(staleness) = shared.staleness() {
            metrics::gauge!("charter_client_policy_staleness_seconds").set(staleness.as_secs_f64());
        }
        metrics::gauge!("charter_client_policy_counters").set(
            shared
                .counters
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .len() as f64,
        );
        std::thread::sleep(config.probe_interval);
    }
}

fn discover_partitions(
    consumer: &BaseConsumer,
    topic: &str,
    timeout: Duration,
) -> Result<Vec<i32>, String> {
    let metadata = consumer
        .fetch_metadata(Some(topic), timeout)
        .map_err(|e| format!("reading the metadata of {topic}: {e}"))?;
    let found = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .ok_or_else(|| format!("topic {topic} not found"))?;
    if let Some(e) = found.error() {
        return Err(format!("topic {topic}: {e:?}"));
    }
    Ok(found.partitions().iter().map(|p| p.id()).collect())
}

fn note_error(shared: &Shared, error: String) {
    tracing::debug!(%error, "policy cache");
    shared
        .progress
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .last_error = Some(error);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared() -> Shared {
        let shared = Shared::new(PolicyCacheConfig::new("unused:9092"));
        shared.stop.store(true, Ordering::Release);
        shared
    }

    fn message(tenant: Uuid, workspace: Option<Uuid>, version: i64, contract: u32) -> Vec<u8> {
        serde_json::to_vec(&PolicyMessage {
            tenant_id: tenant,
            workspace_id: workspace,
            policy_version: version,
            contract,
        })
        .unwrap()
    }

    #[test]
    fn the_highest_counter_wins_and_other_contracts_are_ignored() {
        let s = shared();
        let (t, w) = (Uuid::now_v7(), Uuid::now_v7());
        s.fold(&message(t, Some(w), 4, CONTRACT));
        s.fold(&message(t, Some(w), 3, CONTRACT));
        s.fold(&message(t, None, 2, CONTRACT));
        s.fold(&message(t, None, 99, CONTRACT + 1));
        s.fold(b"not json");
        let counters = s.counters.read().unwrap();
        assert_eq!(counters.get(&(t, w)), Some(&4));
        assert_eq!(counters.get(&(t, Uuid::nil())), Some(&2));
    }

    #[test]
    fn ready_and_fresh_only_once_every_partition_reached_the_probe() {
        let s = shared();
        let mut progress = Progress::default();
        let at = Instant::now();
        progress.pending.push_back(Probe {
            at,
            marks: HashMap::from([(0, (0, 5)), (1, (0, 0)), (2, (3, 3))]),
        });
        progress.next.insert(0, 4);
        s.advance(&mut progress);
        assert!(!s.ready.load(Ordering::Acquire), "partition 0 is behind");
        assert_eq!(s.staleness(), None);
        progress.next.insert(0, 5);
        s.advance(&mut progress);
        assert!(
            s.ready.load(Ordering::Acquire),
            "empty partitions need nothing"
        );
        assert!(s.staleness().unwrap() < Duration::from_secs(1));
        assert!(progress.pending.is_empty());
    }
}
