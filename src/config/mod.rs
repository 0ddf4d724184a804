//! Layered configuration: built-in defaults < a YAML file (`--config`) < `CHARTER_*`
//! environment variables, nested with `__` (`CHARTER_DATABASE__URL`, `CHARTER_HTTP__PORT`).
//! Secrets are `SecretString`s: they print as `[REDACTED]` in logs and `Debug` output.

mod auth;
mod database;
mod error;
mod http;
mod kafka;
mod runners;

pub use auth::{AuthConfig, BootstrapConfig, KeysConfig, LimitConfig, RateLimitConfig};
pub use database::{DatabaseConfig, DatabaseTls, TlsMode};
pub use error::ConfigError;
pub use http::{HttpConfig, OpsConfig};
pub use kafka::{KafkaConfig, KafkaSecurity};
pub use runners::{ProjectionsConfig, RelayConfig};

use std::path::Path;

use figment::providers::{Env, Format, Serialized, Yaml};
use figment::Figment;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// The whole configuration: one section a field, each named as its key prefix
/// (`database.url` is `config.database.url`).
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

/// The `log` section: the format and the filter of the logs on stderr.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `json` (default) or `pretty`.
    pub format: String,
    /// An `EnvFilter` directive; `RUST_LOG` overrides it.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: "json".into(),
            level: "info".into(),
        }
    }
}

/// What a secret serializes as.
const REDACTED: &str = "[REDACTED]";

/// Serializes a secret as `[REDACTED]`.
fn redacted<S: serde::Serializer>(_: &SecretString, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(REDACTED)
}

/// Serializes a secret that may be unset as `[REDACTED]` or nothing.
fn redacted_opt<S: serde::Serializer>(v: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(_) => s.serialize_str(REDACTED),
        None => s.serialize_none(),
    }
}

impl Config {
    /// Loads defaults, then `file` (if given), then `CHARTER_*` variables.
    /// A setting that is malformed is named with both ways to set it.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        Ok(Self::figment(file).extract()?)
    }

    /// The layers, not yet extracted.
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

    #[test]
    fn a_malformed_setting_is_named_with_both_ways_to_set_it() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("CHARTER_HTTP__PORT", "eighty");
            let e = Config::load(None).unwrap_err().to_string();
            assert_eq!(
                e,
                "http.port: invalid type: found string \"eighty\", expected u16 \
                 (set http.port in --config FILE, or CHARTER_HTTP__PORT)"
            );
            Ok(())
        });
    }

    #[test]
    fn a_malformed_setting_in_the_file_is_named_the_same_way() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("charter.yaml", "database:\n  tls:\n    mode: sometimes\n")?;
            let e = Config::load(Some(Path::new("charter.yaml")))
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("database.tls.mode: "), "{e}");
            assert!(
                e.ends_with(
                    "(set database.tls.mode in --config FILE, or CHARTER_DATABASE__TLS__MODE)"
                ),
                "{e}"
            );
            Ok(())
        });
    }

    #[test]
    fn an_unknown_key_is_named_with_where_it_was_given() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("CHARTER_HTTP__PROT", "1");
            let e = Config::load(None).unwrap_err().to_string();
            assert_eq!(
                e,
                "http.prot: no such setting (given in `CHARTER_` environment variable(s))"
            );
            Ok(())
        });
    }

    #[test]
    fn an_unset_database_url_is_named_with_both_ways_to_set_it() {
        figment::Jail::expect_with(|_| {
            let config = Config::load(None).map_err(|e| e.to_string())?;
            let e = config.database.pg_config().unwrap_err().to_string();
            assert_eq!(
                e,
                "database.url: not set (set database.url in --config FILE, or CHARTER_DATABASE__URL)"
            );
            let e = config
                .database
                .migration_pg_config()
                .unwrap_err()
                .to_string();
            assert!(
                e.starts_with("database.url: not set"),
                "falls back to url: {e}"
            );
            Ok(())
        });
    }

    #[test]
    fn a_malformed_database_url_is_named_without_its_password() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("CHARTER_DATABASE__URL", "postgres://u:hunter2@db:port/x");
            jail.set_env(
                "CHARTER_DATABASE__MIGRATION_URL",
                "postgres://o:swordfish@db/x",
            );
            let config = Config::load(None).map_err(|e| e.to_string())?;
            let e = config.database.pg_config().unwrap_err().to_string();
            assert!(
                e.starts_with("database.url: invalid connection string"),
                "{e}"
            );
            assert!(
                e.ends_with("(set database.url in --config FILE, or CHARTER_DATABASE__URL)"),
                "{e}"
            );
            assert!(!e.contains("hunter2"), "{e}");
            assert!(config.database.migration_pg_config().is_ok());
            jail.set_env(
                "CHARTER_DATABASE__MIGRATION_URL",
                "postgres://o:swordfish@db:port/x",
            );
            let config = Config::load(None).map_err(|e| e.to_string())?;
            let e = config
                .database
                .migration_pg_config()
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("database.migration_url: invalid connection string"));
            assert!(e.ends_with("or CHARTER_DATABASE__MIGRATION_URL)"), "{e}");
            assert!(!e.contains("swordfish"), "{e}");
            Ok(())
        });
    }
}
