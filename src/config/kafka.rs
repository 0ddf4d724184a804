//! The `kafka` section: the brokers, the topics, and how Charter authenticates to them.

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::redacted_opt;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaConfig {
    /// Comma-separated `host:port` list.
    pub brokers: String,
    pub events_topic: String,
    pub policy_topic: String,
    /// Create the topics at start-up when missing.
    pub create_topics: bool,
    pub topic_partitions: i32,
    /// How long librdkafka retries one message before the relay re-sends the batch.
    pub message_timeout_ms: u64,
    /// `plaintext`, `ssl`, `sasl_plaintext` or `sasl_ssl` (librdkafka's
    /// `security.protocol`). With `ssl` the broker's certificate is verified, its host name
    /// included.
    pub security_protocol: KafkaSecurity,
    /// PEM file of the certificate authorities to trust; unset, the system's store.
    pub ssl_ca_location: Option<String>,
    /// A client certificate and key (PEM), for brokers that require one.
    pub ssl_certificate_location: Option<String>,
    pub ssl_key_location: Option<String>,
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`, with the `sasl_*` protocols.
    pub sasl_mechanism: Option<String>,
    pub sasl_username: Option<String>,
    #[serde(serialize_with = "redacted_opt")]
    pub sasl_password: Option<SecretString>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KafkaSecurity {
    #[default]
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl KafkaSecurity {
    pub fn as_str(self) -> &'static str {
        match self {
            KafkaSecurity::Plaintext => "plaintext",
            KafkaSecurity::Ssl => "ssl",
            KafkaSecurity::SaslPlaintext => "sasl_plaintext",
            KafkaSecurity::SaslSsl => "sasl_ssl",
        }
    }
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            brokers: "127.0.0.1:9092".into(),
            events_topic: "charter.iam.events.v1".into(),
            policy_topic: "charter.iam.policy.v1".into(),
            create_topics: true,
            topic_partitions: 3,
            message_timeout_ms: 30_000,
            security_protocol: KafkaSecurity::Plaintext,
            ssl_ca_location: None,
            ssl_certificate_location: None,
            ssl_key_location: None,
            sasl_mechanism: None,
            sasl_username: None,
            sasl_password: None,
        }
    }
}
