//! The broker side of the relay scenarios: the relay's own producer settings, a metadata
//! client, partitions and high-water marks.

use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::FutureProducer;
use uuid::Uuid;

/// How long a metadata or watermark request may take.
pub const META_TIMEOUT: Duration = Duration::from_secs(10);

/// The service's Kafka settings with these brokers.
fn kafka(brokers: &str) -> charter::config::KafkaConfig {
    charter::config::KafkaConfig {
        brokers: brokers.to_owned(),
        ..Default::default()
    }
}

/// The relay's own producer settings (idempotent, acks=all, linger 5 ms, ...).
pub fn producer(brokers: &str) -> Result<FutureProducer, KafkaError> {
    charter::relay::producer_config(&kafka(brokers))
        .set("client.id", "charter-bench-raw")
        .create()
}

/// A client for metadata and high-water marks (ListOffsets); it never fetches.
pub fn client(brokers: &str) -> Result<BaseConsumer, KafkaError> {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("client.id", "charter-bench-watch")
        .set(
            "group.id",
            format!("charter-bench-{}", Uuid::new_v4().simple()),
        )
        .set("enable.auto.commit", "false")
        .create()
}

pub fn partitions(c: &BaseConsumer, topic: &str) -> Result<Vec<i32>, String> {
    let md = c
        .fetch_metadata(Some(topic), META_TIMEOUT)
        .map_err(|e| format!("metadata of {topic}: {e}"))?;
    let t = md
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .ok_or_else(|| format!("topic {topic} not in the metadata"))?;
    if let Some(e) = t.error() {
        return Err(format!("topic {topic}: {e:?}"));
    }
    let mut ps: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
    ps.sort_unstable();
    if ps.is_empty() {
        return Err(format!("topic {topic} has no partitions"));
    }
    Ok(ps)
}

/// (low, high) watermark per partition.
pub fn watermarks(c: &BaseConsumer, topic: &str, parts: &[i32]) -> Result<Vec<(i64, i64)>, String> {
    parts
        .iter()
        .map(|&p| {
            c.fetch_watermarks(topic, p, META_TIMEOUT)
                .map_err(|e| format!("watermarks of {topic}/{p}: {e}"))
        })
        .collect()
}

/// The sum of the high-water marks: the messages the topic has taken in all.
pub fn high_sum(w: &[(i64, i64)]) -> i64 {
    w.iter().map(|(_, h)| h).sum()
}

/// One partition's high-water mark.
pub fn high(c: &BaseConsumer, topic: &str, partition: i32) -> Result<i64, String> {
    c.fetch_watermarks(topic, partition, META_TIMEOUT)
        .map(|(_, h)| h)
        .map_err(|e| format!("watermarks of {topic}/{partition}: {e}"))
}
