//! Consuming `charter.iam.events.v1`, for services that keep their own copies of Charter's
//! directory (a user list, a workspace catalogue, ...).
//!
//! Charter publishes every public event once it has committed, as a binary-mode CloudEvent
//! ([`charter_events::cloudevent`]), keyed so that one stream's events keep their order.
//! Delivery is **at least once**: a relay that crashes after publishing and before marking
//! the row sent publishes it again. The [`EventConsumer`]
//!
//! - reads the topic in a consumer group of the service's own;
//! - decodes each CloudEvent through the CloudEvents Kafka binding into an
//!   [`IamEvent`], upcasting superseded versions, so a handler sees current payloads only;
//! - skips a CloudEvent `id` it has already handled, within a bounded window of the most
//!   recent ids ([`EventConsumerConfig::dedupe_window`]);
//! - stores an event's offset only after its handler succeeded (librdkafka commits stored
//!   offsets every few seconds and when the consumer closes): a handler that fails stops
//!   [`EventConsumer::run`] with the consumer rewound to that event, so the next `run`, or
//!   whoever consumes next in the group, gets it again.
//!
//! The window makes a redelivery a no-op when it arrives within the last `dedupe_window`
//! events; a handler should still be idempotent (for example by comparing `stream_version`
//! with what it stored), because a redelivery after a restart, or further back than the
//! window, reaches it again.
//!
//! An event of a type this build does not know (a newer Charter) is skipped and counted in
//! `charter_client_events_skipped_total`, or stops the consumer with
//! [`UnknownEvents::Fail`].

use std::collections::{HashSet, VecDeque};
use std::future::Future;
use std::time::Duration;

use cloudevents::binding::rdkafka::MessageExt;
use cloudevents::event::ExtensionValue;
use cloudevents::{AttributesReader, Data};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::BorrowedMessage;
use rdkafka::{ClientConfig, Message, Offset};
use uuid::Uuid;

use charter_events::cloudevent::parse_type;
use charter_events::{DecodeError, IamEvent};

/// What the consumer does with an event type it cannot decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownEvents {
    /// Skip it, log it and count it (a tolerant reader: Charter may add event types).
    Skip,
    /// Stop with [`ConsumerError::Decode`], leaving it uncommitted.
    Fail,
}

/// Where the event topic is and how the consumer reads it.
#[derive(Debug, Clone)]
pub struct EventConsumerConfig {
    /// `bootstrap.servers`.
    pub brokers: String,
    /// The service's own consumer group.
    pub group_id: String,
    /// The event topic (`kafka.topic` of Charter).
    pub topic: String,
    /// How many of the most recent CloudEvent ids are remembered to skip redeliveries.
    pub dedupe_window: usize,
    /// Events of unknown types.
    pub unknown: UnknownEvents,
    /// Further librdkafka settings (TLS, SASL, `auto.offset.reset`, ...).
    pub kafka: Vec<(String, String)>,
}

impl EventConsumerConfig {
    /// The defaults: topic `charter.iam.events.v1`, a window of 10 000 ids, skipping unknown
    /// types, and a new group starting from the beginning of the topic.
    pub fn new(brokers: impl Into<String>, group_id: impl Into<String>) -> Self {
        Self {
            brokers: brokers.into(),
            group_id: group_id.into(),
            topic: "charter.iam.events.v1".into(),
            dedupe_window: 10_000,
            unknown: UnknownEvents::Skip,
            kafka: Vec::new(),
        }
    }
}

/// One event as delivered, with the envelope attributes a copy needs.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The CloudEvent `id`: the event's id in Charter's log.
    pub id: Uuid,
    /// The decoded event, in its current schema.
    pub event: IamEvent,
    /// The stream (aggregate) the event belongs to, from `subject`.
    pub stream_id: String,
    /// The event's version within its stream (`streamversion`).
    pub stream_version: i64,
    /// The event's global position in Charter's log (`position`).
    pub position: i64,
    /// The tenant (`tenantid`).
    pub tenant_id: Uuid,
    /// The workspace (`workspaceid`), for workspace-scoped events.
    pub workspace_id: Option<Uuid>,
    /// When Charter recorded it.
    pub time: Option<chrono::DateTime<chrono::Utc>>,
    /// The Kafka partition and offset it was read at.
    pub partition: i32,
    /// See [`Delivery::partition`].
    pub offset: i64,
}

/// Why the consumer stopped.
#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    /// The consumer could not be created, or the broker reported an error.
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    /// A message is not a Charter CloudEvent, or its data does not decode.
    #[error("event at {partition}/{offset}: {reason}")]
    Decode {
        /// Where it is.
        partition: i32,
        /// See [`ConsumerError::Decode::partition`].
        offset: i64,
        /// What is wrong with it.
        reason: String,
    },
    /// The handler refused the event; it stays uncommitted.
    #[error("handler failed on event {id}: {source}")]
    Handler {
        /// The event's id.
        id: Uuid,
        /// What the handler returned.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// A bounded set of recent ids: the oldest is forgotten when it is full.
#[derive(Debug)]
struct Window {
    capacity: usize,
    order: VecDeque<Uuid>,
    ids: HashSet<Uuid>,
}

impl Window {
    fn new(capacity: usize) -> Self {
        Self {
            capacity,
            order: VecDeque::with_capacity(capacity.min(1 << 16)),
            ids: HashSet::with_capacity(capacity.min(1 << 16)),
        }
    }

    fn contains(&self, id: &Uuid) -> bool {
        self.ids.contains(id)
    }

    fn insert(&mut self, id: Uuid) {
        if self.capacity == 0 || !self.ids.insert(id) {
            return;
        }
        self.order.push_back(id);
        if self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.ids.remove(&old);
            }
        }
    }
}

/// What a message turned out to be.
enum Decoded {
    Event(Box<Delivery>),
    /// Not decodable, and [`UnknownEvents::Skip`] says to go on.
    Skipped,
}

/// Reads `charter.iam.events.v1` into [`IamEvent`]s, at least once, deduplicated within a
/// window.
pub struct EventConsumer {
    consumer: StreamConsumer,
    config: EventConsumerConfig,
    seen: Window,
}

impl EventConsumer {
    /// Creates the consumer and subscribes to the topic. Offsets are stored only by
    /// [`EventConsumer::run`] (or [`EventConsumer::commit`]), after the handler.
    pub fn new(config: EventConsumerConfig) -> Result<Self, ConsumerError> {
        let mut kafka = ClientConfig::new();
        kafka.set("auto.offset.reset", "earliest");
        for (k, v) in &config.kafka {
            kafka.set(k, v);
        }
        // What at least once rests on comes last: no setting of the caller's overrides it.
        kafka
            .set("bootstrap.servers", &config.brokers)
            .set("group.id", &config.group_id)
            .set("enable.auto.commit", "true")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false");
        let consumer: StreamConsumer = kafka.create()?;
        consumer.subscribe(&[config.topic.as_str()])?;
        Ok(Self {
            consumer,
            seen: Window::new(config.dedupe_window),
            config,
        })
    }

    /// Hands every event, in order within its stream, to `handler`, until the handler fails
    /// or the broker reports an error. A redelivered event within the window is committed
    /// without calling the handler again. On an error the consumer is rewound to the event
    /// that failed, so calling `run` again retries it.
    pub async fn run<F, Fut, E>(&mut self, mut handler: F) -> Result<(), ConsumerError>
    where
        F: FnMut(Delivery) -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        loop {
            let message = self.consumer.recv().await?;
            let (partition, offset) = (message.partition(), message.offset());
            let decoded = self.decode(&message);
            drop(message);
            let delivery = match decoded {
                Err(e) => return Err(self.rewind(partition, offset, e)),
                Ok(Decoded::Event(d)) => d,
                Ok(Decoded::Skipped) => {
                    self.commit_at(partition, offset)?;
                    continue;
                }
            };
            let id = delivery.id;
            if self.seen.contains(&id) {
                metrics::counter!("charter_client_events_duplicates_total").increment(1);
                tracing::debug!(%id, "skipping a redelivered event");
            } else {
                if let Err(e) = handler(*delivery).await {
                    let error = ConsumerError::Handler {
                        id,
                        source: e.into(),
                    };
                    return Err(self.rewind(partition, offset, error));
                }
                self.seen.insert(id);
                metrics::counter!("charter_client_events_handled_total").increment(1);
            }
            self.commit_at(partition, offset)?;
        }
    }

    /// Marks everything up to and including `delivery` in its partition as done, for
    /// callers that hand events on before they are done with them.
    pub fn commit(&self, delivery: &Delivery) -> Result<(), ConsumerError> {
        self.commit_at(delivery.partition, delivery.offset)
    }

    /// Stores the offset after `offset`; librdkafka commits it.
    fn commit_at(&self, partition: i32, offset: i64) -> Result<(), ConsumerError> {
        self.consumer
            .store_offset(&self.config.topic, partition, offset)?;
        Ok(())
    }

    /// Puts the consumer back on the event at `offset`, and commits what was stored so far,
    /// so that neither a retry nor the next member of the group skips it.
    fn rewind(&self, partition: i32, offset: i64, error: ConsumerError) -> ConsumerError {
        let seek = self.consumer.seek(
            &self.config.topic,
            partition,
            Offset::Offset(offset),
            Duration::from_secs(10),
        );
        if let Err(e) = seek {
            tracing::error!(partition, offset, error = %e, "could not rewind to a failed event");
            return ConsumerError::Kafka(e);
        }
        if let Err(e) = self.consumer.commit_consumer_state(CommitMode::Sync) {
            tracing::warn!(error = %e, "committing the stored offsets");
        }
        error
    }

    fn decode(&self, message: &BorrowedMessage<'_>) -> Result<Decoded, ConsumerError> {
        let (partition, offset) = (message.partition(), message.offset());
        match decode_message(message) {
            Ok(delivery) => Ok(Decoded::Event(Box::new(delivery))),
            Err(Undecodable::Unknown(reason)) if self.config.unknown == UnknownEvents::Skip => {
                metrics::counter!("charter_client_events_skipped_total").increment(1);
                tracing::warn!(partition, offset, %reason, "skipping an event this build does not know");
                Ok(Decoded::Skipped)
            }
            Err(Undecodable::Unknown(reason) | Undecodable::Invalid(reason)) => {
                Err(ConsumerError::Decode {
                    partition,
                    offset,
                    reason,
                })
            }
        }
    }

    /// Waits up to `timeout` for the group to assign partitions, so a test or a start-up
    /// probe knows the consumer is reading.
    pub async fn wait_assigned(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.consumer.assignment().is_ok_and(|a| a.count() > 0) {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

enum Undecodable {
    /// A type this build does not know: tolerable.
    Unknown(String),
    /// Not a Charter CloudEvent, or a known type with invalid data: never tolerable.
    Invalid(String),
}

fn decode_message(message: &BorrowedMessage<'_>) -> Result<Delivery, Undecodable> {
    let event = message
        .to_event()
        .map_err(|e| Undecodable::Invalid(format!("not a binary-mode CloudEvent: {e}")))?;
    decode_cloudevent(&event, message.partition(), message.offset())
}

fn decode_cloudevent(
    event: &cloudevents::Event,
    partition: i32,
    offset: i64,
) -> Result<Delivery, Undecodable> {
    let invalid = |what: &str| Undecodable::Invalid(what.to_owned());
    let (event_type, version) = parse_type(event.ty())
        .ok_or_else(|| Undecodable::Unknown(format!("type {} is not Charter's", event.ty())))?;
    let data = match event.data() {
        Some(Data::Json(v)) => v.clone(),
        Some(Data::Binary(b)) => {
            serde_json::from_slice(b).map_err(|e| invalid(&format!("data: {e}")))?
        }
        Some(Data::String(s)) => {
            serde_json::from_str(s).map_err(|e| invalid(&format!("data: {e}")))?
        }
        None => return Err(invalid("no data")),
    };
    let decoded = IamEvent::decode(event_type, version, data).map_err(|e| match e {
        DecodeError::UnknownType { .. } => Undecodable::Unknown(e.to_string()),
        DecodeError::InvalidData { .. } => Undecodable::Invalid(e.to_string()),
    })?;
    let id = Uuid::parse_str(event.id()).map_err(|_| invalid("id is not a UUID"))?;
    let ext_str = |name: &str| match event.extension(name) {
        Some(ExtensionValue::String(s)) => Some(s.clone()),
        Some(other) => Some(other.to_string()),
        None => None,
    };
    let ext_int = |name: &str| match event.extension(name) {
        Some(ExtensionValue::Integer(i)) => Some(*i),
        Some(ExtensionValue::String(s)) => s.parse().ok(),
        _ => None,
    };
    let tenant_id = ext_str("tenantid")
        .and_then(|s| Uuid::parse_str(&s).ok())
        .ok_or_else(|| invalid("tenantid is missing or not a UUID"))?;
    let workspace_id = match ext_str("workspaceid") {
        Some(s) => Some(Uuid::parse_str(&s).map_err(|_| invalid("workspaceid is not a UUID"))?),
        None => None,
    };
    Ok(Delivery {
        id,
        event: decoded,
        stream_id: event.subject().unwrap_or_default().to_owned(),
        stream_version: ext_int("streamversion")
            .ok_or_else(|| invalid("streamversion is missing"))?,
        position: ext_int("position").ok_or_else(|| invalid("position is missing"))?,
        tenant_id,
        workspace_id,
        time: event.time().copied(),
        partition,
        offset,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use charter_events::envelope::{Metadata, RecordedEvent};
    use charter_events::tenant::{TenantEvent, TenantRenamed};
    use charter_events::DomainEvent;

    fn recorded(event_type: &str, version: i32, data: serde_json::Value) -> RecordedEvent {
        RecordedEvent {
            event_id: Uuid::now_v7(),
            tx_id: 1,
            stream_type: "tenant".into(),
            stream_id: "tenant-1".into(),
            stream_version: 4,
            position: 42,
            tenant_id: Uuid::from_u128(7),
            workspace_id: None,
            event_type: event_type.into(),
            schema_version: version,
            data,
            metadata: Metadata::default(),
            recorded_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn a_published_event_decodes_with_its_envelope() {
        let renamed = TenantEvent::from(TenantRenamed {
            tenant_id: Uuid::from_u128(7),
            name: "Acme".into(),
        });
        let row = recorded("tenant.renamed", 1, renamed.to_data());
        let ce = charter_events::cloudevent::to_cloudevent(&row).unwrap();
        let d = decode_cloudevent(&ce, 0, 9).ok().expect("decodes");
        assert_eq!(d.event, IamEvent::Tenant(renamed));
        assert_eq!((d.id, d.stream_version, d.position), (row.event_id, 4, 42));
        assert_eq!((d.tenant_id, d.workspace_id), (Uuid::from_u128(7), None));
        assert_eq!(d.stream_id, "tenant-1");
    }

    #[test]
    fn unknown_types_are_told_apart_from_invalid_data() {
        let newer = recorded("tenant.renamed", 9, serde_json::json!({}));
        let ce = charter_events::cloudevent::to_cloudevent(&newer).unwrap();
        assert!(matches!(
            decode_cloudevent(&ce, 0, 0),
            Err(Undecodable::Unknown(_))
        ));
        let broken = recorded("tenant.renamed", 1, serde_json::json!({"name": 3}));
        let ce = charter_events::cloudevent::to_cloudevent(&broken).unwrap();
        assert!(matches!(
            decode_cloudevent(&ce, 0, 0),
            Err(Undecodable::Invalid(_))
        ));
    }

    #[test]
    fn the_window_forgets_the_oldest_id() {
        let mut w = Window::new(2);
        let ids: Vec<Uuid> = (1..=3).map(Uuid::from_u128).collect();
        w.insert(ids[0]);
        w.insert(ids[1]);
        w.insert(ids[1]);
        assert!(w.contains(&ids[0]) && w.contains(&ids[1]));
        w.insert(ids[2]);
        assert!(!w.contains(&ids[0]));
        assert!(w.contains(&ids[1]) && w.contains(&ids[2]));
        assert_eq!(w.order.len(), 2);
    }
}
