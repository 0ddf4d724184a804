//! Layered configuration: built-in defaults < a YAML file (`--config`) < `CHARTER_*`
//! environment variables, nested with `__` (`CHARTER_DATABASE__URL`, `CHARTER_HTTP__PORT`).
//! Secrets are `SecretString`s: they print as `[REDACTED]` in logs and `Debug` output.

use std::path::Path;
use std::time::Duration;

use figment::providers::{Env, Format, Serialized, Yaml};
use figment::Figment;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Config {
    pub http: HttpConfig,
    pub ops: OpsConfig,
    pub database: DatabaseConfig,
    pub kafka: KafkaConfig,
    pub relay: RelayConfig,
    pub projections: ProjectionsConfig,
    pub auth: AuthConfig,
    pub rate_limit: RateLimitConfig,
    pub keys: KeysConfig,
    pub bootstrap: BootstrapConfig,
    pub log: LogConfig,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// PBKDF2-HMAC-SHA256 iterations for new password hashes (existing hashes keep theirs).
    pub pbkdf2_iterations: std::num::NonZeroU32,
    /// `iss` of the tokens Charter mints, and the issuer of its OpenID configuration.
    pub issuer: String,
    /// `aud` of the tokens Charter mints and accepts.
    pub audience: String,
    pub access_token_ttl_s: u64,
    pub refresh_token_ttl_s: u64,
    /// Consecutive failed logins that lock an account.
    pub lockout_threshold: u32,
    pub lockout_duration_s: u64,
    /// The issuer label authenticator apps show next to a TOTP entry.
    pub totp_issuer: String,
    /// Tokens whose dynamic checks passed are remembered (until a change that could
    /// invalidate any token is projected). At most this many.
    pub verify_cache_entries: usize,
    /// ...and for at most this long each, however quiet the invalidation channel is.
    pub verify_cache_max_age_ms: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            pbkdf2_iterations: std::num::NonZeroU32::new(600_000).expect("non-zero"),
            issuer: "http://127.0.0.1:8080".into(),
            audience: "charter".into(),
            access_token_ttl_s: 900,
            refresh_token_ttl_s: 30 * 24 * 3600,
            lockout_threshold: 5,
            lockout_duration_s: 900,
            totp_issuer: "Charter".into(),
            verify_cache_entries: 100_000,
            verify_cache_max_age_ms: 5_000,
        }
    }
}

/// Throttling of the credential endpoints, `/v1/auth/login` and `/v1/oauth/token`: a refused
/// attempt is a `429` with `Retry-After`, and costs neither a password hash nor a step toward
/// the lockout. Each limit is a GCRA bucket (governor): `burst` attempts at once, then one more
/// every `60 / per_minute` seconds.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    pub enabled: bool,
    /// Per client address, for each of the two endpoints separately.
    pub per_ip: LimitConfig,
    /// Per `(tenant, username)` on login (the username ignoring case, the tenant by id whether
    /// it was given by id or by slug).
    pub per_user: LimitConfig,
    /// Per `client_id` on the token endpoint.
    pub per_client: LimitConfig,
    /// Peers whose `X-Forwarded-For` is believed: the client address is then the rightmost
    /// entry that is not itself one of them. Empty (the default): the peer address, always.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// How often keys whose bucket has refilled are forgotten (bounds the memory).
    pub prune_interval_s: u64,
}

/// One bucket's size and refill rate.
#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LimitConfig {
    pub per_minute: std::num::NonZeroU32,
    pub burst: std::num::NonZeroU32,
}

impl LimitConfig {
    pub fn new(per_minute: u32, burst: u32) -> Self {
        let non_zero = |n: u32| std::num::NonZeroU32::new(n.max(1)).expect("at least 1");
        Self {
            per_minute: non_zero(per_minute),
            burst: non_zero(burst),
        }
    }
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            per_ip: LimitConfig::new(60, 30),
            per_user: LimitConfig::new(10, 10),
            per_client: LimitConfig::new(60, 30),
            trusted_proxies: Vec::new(),
            prune_interval_s: 60,
        }
    }
}

/// Signing keys: created on first start, their private halves sealed with the master key.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeysConfig {
    /// 32 bytes, base64 or hex (`openssl rand -base64 32`). Required to serve.
    #[serde(serialize_with = "redacted_opt")]
    pub master_key: Option<SecretString>,
}

/// The first administrator, created (idempotently) at start-up when `tenant` is set.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct BootstrapConfig {
    /// Slug of the root tenant.
    pub tenant: Option<String>,
    pub username: Option<String>,
    pub email: Option<String>,
    #[serde(serialize_with = "redacted_opt")]
    pub password: Option<SecretString>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    pub host: String,
    /// 0 picks a free port (tests).
    pub port: u16,
    /// Request bodies above this size are refused with 413.
    pub max_body_bytes: usize,
    /// A request that takes longer is answered 503.
    pub request_timeout_ms: u64,
    /// Worker threads; 0 means one per core.
    pub workers: usize,
    /// How long in-flight requests may run on after SIGTERM (new connections are refused at
    /// once). The relay's final drain follows, within 2.5 s.
    pub shutdown_timeout_s: u64,
    /// The `Strict-Transport-Security` value sent with every response (e.g. `max-age=31536000;
    /// includeSubDomains`), for deployments served over HTTPS. Unset: none is sent.
    pub strict_transport_security: Option<String>,
}

/// The operations listener: `/ready` with its details (the relay, the projections, failed
/// events) and `/metrics`. Loopback by default; expose it only to the monitoring network.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpsConfig {
    pub enabled: bool,
    pub host: String,
    /// 0 picks a free port (tests).
    pub port: u16,
}

impl Default for OpsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            host: "127.0.0.1".into(),
            port: 8081,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// The service's connection. Its role should not own the schema.
    #[serde(serialize_with = "redacted")]
    pub url: SecretString,
    /// The connection migrations run on: the role that owns the schema. When it is a different
    /// role from `url`'s, Charter grants the service role only what it needs (SELECT and INSERT
    /// on `events`), so the service can never rewrite history. Defaults to `url`.
    #[serde(serialize_with = "redacted_opt")]
    pub migration_url: Option<SecretString>,
    pub pool_size: usize,
    /// Connecting, and waiting for a pooled connection, fail after this long (503).
    pub connect_timeout_ms: u64,
    /// Statements are cancelled after this long.
    pub statement_timeout_ms: u64,
    /// LISTEN connections (wake-ups, token-cache invalidation) send a round trip this often
    /// and give up on a connection that does not answer within as long, then reconnect.
    pub listen_heartbeat_ms: u64,
    /// TLS on every connection, the migration one included.
    pub tls: DatabaseTls,
}

/// How connections to PostgreSQL are encrypted.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseTls {
    pub mode: TlsMode,
    /// PEM file of the certificate authorities to trust; unset, the system's store.
    pub ca_file: Option<std::path::PathBuf>,
    /// A client certificate (PEM) and its key, for servers that require one.
    pub cert_file: Option<std::path::PathBuf>,
    pub key_file: Option<std::path::PathBuf>,
}

/// `disable`: plaintext (a local socket or loopback only). `verify-full`: TLS, with the
/// server's certificate checked against the trusted authorities and its name against the
/// host connected to (libpq's `sslmode=verify-full`). There is no middle ground: encryption
/// without verification protects against nobody who can sit in the middle.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TlsMode {
    #[default]
    Disable,
    VerifyFull,
}

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

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RelayConfig {
    pub enabled: bool,
    pub batch_size: i64,
    /// Fallback poll interval when no NOTIFY arrives.
    pub poll_interval_ms: u64,
    /// Wait after a wake-up so that a batch accumulates under load.
    pub linger_ms: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProjectionsConfig {
    pub enabled: bool,
    pub batch_size: i64,
    pub poll_interval_ms: u64,
    /// Wait after a wake-up so that one transaction applies a batch under load.
    pub linger_ms: u64,
    /// Upper bound of a `consistency=` wait before answering 503.
    pub consistency_timeout_ms: u64,
    /// Consecutive failures of one event before it is recorded in `projections.failed_events`
    /// and skipped (database outages do not count).
    pub max_attempts: u32,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `json` (default) or `pretty`.
    pub format: String,
    /// An `EnvFilter` directive; `RUST_LOG` overrides it.
    pub level: String,
}

fn redacted<S: serde::Serializer>(_: &SecretString, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str("[REDACTED]")
}

fn redacted_opt<S: serde::Serializer>(v: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(_) => s.serialize_str("[REDACTED]"),
        None => s.serialize_none(),
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 8080,
            max_body_bytes: 64 * 1024,
            request_timeout_ms: 10_000,
            workers: 0,
            shutdown_timeout_s: 7,
            strict_transport_security: None,
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: SecretString::from("postgres://charter:charter@127.0.0.1:5432/charter"),
            migration_url: None,
            pool_size: 32,
            connect_timeout_ms: 2_000,
            statement_timeout_ms: 10_000,
            listen_heartbeat_ms: 2_000,
            tls: DatabaseTls::default(),
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

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            batch_size: 1_000,
            poll_interval_ms: 200,
            linger_ms: 5,
        }
    }
}

impl Default for ProjectionsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            batch_size: 500,
            poll_interval_ms: 200,
            linger_ms: 5,
            consistency_timeout_ms: 5_000,
            max_attempts: 5,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: "json".into(),
            level: "info".into(),
        }
    }
}

impl Config {
    /// Loads defaults, then `file` (if given), then `CHARTER_*` variables.
    pub fn load(file: Option<&Path>) -> Result<Config, Box<figment::Error>> {
        Self::figment(file).extract().map_err(Box::new)
    }

    pub fn figment(file: Option<&Path>) -> Figment {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            figment = figment.merge(Yaml::file_exact(file));
        }
        // Only the sections we know: `CHARTER_URL` and friends in a developer's shell are not
        // configuration.
        let sections = [
            "http",
            "ops",
            "database",
            "kafka",
            "relay",
            "projections",
            "auth",
            "rate_limit",
            "keys",
            "bootstrap",
            "log",
        ];
        figment.merge(Env::prefixed("CHARTER_").split("__").filter(move |k| {
            let k = k.as_str().to_ascii_lowercase();
            sections.iter().any(|s| k.starts_with(&format!("{s}.")))
        }))
    }
}

impl DatabaseConfig {
    /// The heartbeat of LISTEN connections.
    pub fn heartbeat(&self) -> charter_log::listener::Heartbeat {
        charter_log::listener::Heartbeat {
            every: Duration::from_millis(self.listen_heartbeat_ms.max(1)),
        }
    }

    /// The connection settings, with timeouts applied.
    pub fn pg_config(&self) -> Result<tokio_postgres::Config, tokio_postgres::Error> {
        let mut config: tokio_postgres::Config = self.url.expose_secret().parse()?;
        config.connect_timeout(Duration::from_millis(self.connect_timeout_ms));
        config.options(format!(
            "-c statement_timeout={}",
            self.statement_timeout_ms
        ));
        config.application_name("charter");
        config.keepalives_idle(Duration::from_secs(30));
        Ok(config)
    }

    /// The schema owner's connection settings (no statement timeout: migrations may run long,
    /// and instances wait on each other's migrations).
    pub fn migration_pg_config(&self) -> Result<tokio_postgres::Config, tokio_postgres::Error> {
        let url = self.migration_url.as_ref().unwrap_or(&self.url);
        let mut config: tokio_postgres::Config = url.expose_secret().parse()?;
        config.connect_timeout(Duration::from_millis(self.connect_timeout_ms));
        config.application_name("charter-migrate");
        Ok(config)
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closure signature, not ours
mod tests {
    use super::*;

    #[test]
    fn layers_file_then_environment_and_redacts_secrets() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "charter.yaml",
                "http:\n  port: 9000\n  host: 0.0.0.0\ndatabase:\n  url: postgres://u:hunter2@db/x\n  migration_url: postgres://o:swordfish@db/x\n",
            )?;
            jail.set_env("CHARTER_HTTP__PORT", "9100");
            jail.set_env("CHARTER_KAFKA__BROKERS", "k1:9092,k2:9092");
            jail.set_env("CHARTER_URL", "http://ignored");
            let config =
                Config::load(Some(Path::new("charter.yaml"))).map_err(|e| e.to_string())?;
            assert_eq!(config.http.port, 9100, "env beats file");
            assert_eq!(config.http.host, "0.0.0.0", "file beats defaults");
            assert_eq!(config.kafka.brokers, "k1:9092,k2:9092");
            assert_eq!(config.relay.batch_size, 1_000, "defaults fill the rest");
            for secret in ["hunter2", "swordfish"] {
                assert!(!format!("{config:?}").contains(secret));
                assert!(!serde_json::to_string(&config).unwrap().contains(secret));
            }
            Ok(())
        });
    }

    #[test]
    fn rate_limits_layer_like_the_rest() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "charter.yaml",
                "rate_limit:\n  per_user:\n    burst: 3\n  trusted_proxies: [10.0.0.1]\n",
            )?;
            jail.set_env("CHARTER_RATE_LIMIT__PER_IP__PER_MINUTE", "600");
            let config =
                Config::load(Some(Path::new("charter.yaml"))).map_err(|e| e.to_string())?;
            let limits = &config.rate_limit;
            assert!(limits.enabled);
            assert_eq!(limits.per_user.burst.get(), 3, "file");
            assert_eq!(limits.per_user.per_minute.get(), 10, "default beside it");
            assert_eq!(limits.per_ip.per_minute.get(), 600, "env");
            assert_eq!(
                limits.trusted_proxies,
                ["10.0.0.1".parse::<std::net::IpAddr>().unwrap()]
            );
            jail.set_env("CHARTER_RATE_LIMIT__PER_CLIENT__BURST", "0");
            assert!(Config::load(None).is_err(), "a zero burst is refused");
            Ok(())
        });
    }

    #[test]
    fn rejects_unknown_keys_in_a_section() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("CHARTER_HTTP__PROT", "1");
            assert!(Config::load(None).is_err());
            Ok(())
        });
    }
}
