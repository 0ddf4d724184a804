//! The Kafka side of the relay: an idempotent producer (`acks=all`) that sends a batch of
//! CloudEvents, or of policy_version bumps, and reports how long a prefix of it the broker
//! acknowledged.

use std::time::Duration;

use charter_events::cloudevent::to_cloudevent;
use charter_events::policy::PolicyMessage;
use charter_events::RecordedEvent;
use cloudevents::binding::rdkafka::{FutureRecordExt, MessageRecord};
use futures::future::join_all;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use uuid::Uuid;

use super::RelayError;
use crate::config::{KafkaConfig, KafkaSecurity};

pub struct Publisher {
    producer: FutureProducer,
    topic: String,
    policy_topic: String,
}

/// One policy_version bump, as published to the compacted policy topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyBump {
    pub tenant_id: Uuid,
    /// Nil for the tenant scope.
    pub workspace_id: Uuid,
    pub policy_version: i64,
}

impl PolicyBump {
    /// `<tenant_id>/<workspace_id>`, the nil uuid standing for the tenant scope: one key per
    /// counter, so compaction keeps each counter's latest value.
    pub fn key(&self) -> String {
        format!("{}/{}", self.tenant_id, self.workspace_id)
    }

    /// A [`PolicyMessage`]: `{"tenant_id", "workspace_id" (null for the tenant scope),
    /// "policy_version", "contract"}` (`schemas/policy-topic.json`).
    pub fn payload(&self) -> Vec<u8> {
        let message = PolicyMessage {
            tenant_id: self.tenant_id,
            workspace_id: (!self.workspace_id.is_nil()).then_some(self.workspace_id),
            policy_version: self.policy_version,
            contract: charter_events::policy::CONTRACT,
        };
        serde_json::to_vec(&message).expect("a policy message serializes")
    }
}

/// How far a batch got: the broker acknowledged the first `acknowledged` messages.
pub struct PartialPublish {
    pub acknowledged: usize,
    pub error: String,
}

/// Every client's settings: the brokers, and how the link to them is secured
/// (`kafka.security_protocol`, `kafka.ssl_*`, `kafka.sasl_*`). TLS verifies the broker's
/// certificate and host name (`ssl.endpoint.identification.algorithm=https`, librdkafka's
/// default, set here so no build default can turn it off).
pub fn client_config(kafka: &KafkaConfig) -> ClientConfig {
    use secrecy::ExposeSecret;
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &kafka.brokers)
        .set("client.id", "charter-relay")
        .set("socket.keepalive.enable", "true")
        .set("reconnect.backoff.max.ms", "1000")
        .set("security.protocol", kafka.security_protocol.as_str());
    if matches!(
        kafka.security_protocol,
        KafkaSecurity::Ssl | KafkaSecurity::SaslSsl
    ) {
        config.set("ssl.endpoint.identification.algorithm", "https");
        for (key, value) in [
            ("ssl.ca.location", &kafka.ssl_ca_location),
            ("ssl.certificate.location", &kafka.ssl_certificate_location),
            ("ssl.key.location", &kafka.ssl_key_location),
        ] {
            if let Some(value) = value {
                config.set(key, value);
            }
        }
    }
    if let Some(mechanism) = &kafka.sasl_mechanism {
        config.set("sasl.mechanism", mechanism);
    }
    if let Some(username) = &kafka.sasl_username {
        config.set("sasl.username", username);
    }
    if let Some(password) = &kafka.sasl_password {
        config.set("sasl.password", password.expose_secret());
    }
    config
}

/// The relay's producer settings: idempotent, `acks=all`. Public so that the relay benchmark's
/// bare-producer baseline (ops/loadgen) produces with exactly the same ones.
pub fn producer_config(kafka: &KafkaConfig) -> ClientConfig {
    let mut config = client_config(kafka);
    config
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("max.in.flight.requests.per.connection", "5")
        .set("linger.ms", "5")
        .set("message.timeout.ms", kafka.message_timeout_ms.to_string())
        .set("queue.buffering.max.messages", "200000");
    config
}

impl Publisher {
    pub fn new(kafka: &KafkaConfig) -> Result<Self, RelayError> {
        let producer = producer_config(kafka).create()?;
        Ok(Self {
            producer,
            topic: kafka.events_topic.clone(),
            policy_topic: kafka.policy_topic.clone(),
        })
    }

    /// Creates the events and policy topics when they are missing.
    pub async fn ensure_topics(&self, kafka: &KafkaConfig) -> Result<(), RelayError> {
        let admin: AdminClient<DefaultClientContext> = client_config(kafka).create()?;
        let topics = [
            NewTopic::new(
                &kafka.events_topic,
                kafka.topic_partitions,
                TopicReplication::Fixed(1),
            ),
            NewTopic::new(
                &kafka.policy_topic,
                kafka.topic_partitions,
                TopicReplication::Fixed(1),
            )
            .set("cleanup.policy", "compact"),
        ];
        let options = AdminOptions::new()
            .operation_timeout(Some(Duration::from_secs(10)))
            .request_timeout(Some(Duration::from_secs(10)));
        for result in admin.create_topics(&topics, &options).await? {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => {
                    return Err(RelayError::Kafka(rdkafka::error::KafkaError::AdminOp(code)))
                        .inspect_err(|_| tracing::warn!(topic, ?code, "create topic failed"));
                }
            }
        }
        Ok(())
    }

    /// Sends `events` in order, keyed by tenant, and waits for every delivery report.
    /// `Ok(n)`: all `n` acknowledged. `Err`: only a prefix was.
    pub async fn publish(&self, events: &[&RecordedEvent]) -> Result<usize, PartialPublish> {
        let mut records = Vec::with_capacity(events.len());
        for event in events {
            let record = to_cloudevent(event)
                .map_err(|e| e.to_string())
                .and_then(|ce| MessageRecord::from_event(ce).map_err(|e| e.to_string()));
            match record {
                Ok(r) => records.push((event.tenant_id.to_string(), r)),
                Err(error) => {
                    // Cannot happen for events we wrote; stop before it rather than skip it.
                    return self.settle(Vec::new(), Some(error)).await;
                }
            }
        }
        let mut pending = Vec::with_capacity(records.len());
        let mut enqueue_error = None;
        for (key, record) in &records {
            let message = FutureRecord::to(&self.topic)
                .key(key)
                .message_record(record);
            match self.producer.send_result(message) {
                Ok(delivery) => pending.push(delivery),
                Err((e, _)) => {
                    enqueue_error = Some(e.to_string());
                    break;
                }
            }
        }
        self.settle(pending, enqueue_error).await
    }

    /// Sends `bumps` in order to the policy topic, keyed `<tenant_id>/<workspace_id>`, as plain
    /// JSON, and waits for every delivery report. `Ok(n)`: all `n` acknowledged. `Err`: only a
    /// prefix was.
    pub async fn publish_policy(&self, bumps: &[PolicyBump]) -> Result<usize, PartialPublish> {
        let mut pending = Vec::with_capacity(bumps.len());
        let mut enqueue_error = None;
        for bump in bumps {
            let (key, payload) = (bump.key(), bump.payload());
            let headers = OwnedHeaders::new().insert(Header {
                key: "content-type",
                value: Some("application/json"),
            });
            let message = FutureRecord::to(&self.policy_topic)
                .key(&key)
                .payload(&payload)
                .headers(headers);
            match self.producer.send_result(message) {
                Ok(delivery) => pending.push(delivery),
                Err((e, _)) => {
                    enqueue_error = Some(e.to_string());
                    break;
                }
            }
        }
        self.settle(pending, enqueue_error).await
    }

    /// Waits for every delivery report. The acknowledged prefix ends at the first message
    /// that failed; `enqueue_error` (a message that never left) ends it after `pending`.
    async fn settle(
        &self,
        pending: Vec<rdkafka::producer::DeliveryFuture>,
        enqueue_error: Option<String>,
    ) -> Result<usize, PartialPublish> {
        let mut acknowledged = 0;
        let mut error = None;
        for result in join_all(pending).await {
            match result {
                Ok(Ok(_)) if error.is_none() => acknowledged += 1,
                Ok(Ok(_)) => {}
                Ok(Err((e, _))) => {
                    error.get_or_insert_with(|| e.to_string());
                }
                Err(_) => {
                    error.get_or_insert_with(|| "delivery report lost".to_owned());
                }
            }
        }
        match error.or(enqueue_error) {
            None => Ok(acknowledged),
            Some(error) => Err(PartialPublish {
                acknowledged,
                error,
            }),
        }
    }

    pub fn flush(&self, timeout: Duration) {
        if let Err(e) = self.producer.flush(timeout) {
            tracing::warn!(error = %e, "relay flush incomplete");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_bump_is_keyed_by_scope_and_the_tenant_scope_has_no_workspace() {
        let tenant_id = Uuid::now_v7();
        let workspace_id = Uuid::now_v7();
        let tenant = PolicyBump {
            tenant_id,
            workspace_id: Uuid::nil(),
            policy_version: 3,
        };
        assert_eq!(tenant.key(), format!("{tenant_id}/{}", Uuid::nil()));
        let value: serde_json::Value = serde_json::from_slice(&tenant.payload()).unwrap();
        assert_eq!(
            value,
            json!({"tenant_id": tenant_id, "workspace_id": null, "policy_version": 3, "contract": 2})
        );
        let workspace = PolicyBump {
            workspace_id,
            ..tenant
        };
        assert_eq!(workspace.key(), format!("{tenant_id}/{workspace_id}"));
        let value: serde_json::Value = serde_json::from_slice(&workspace.payload()).unwrap();
        assert_eq!(
            value,
            json!({"tenant_id": tenant_id, "workspace_id": workspace_id, "policy_version": 3, "contract": 2})
        );
    }
}
