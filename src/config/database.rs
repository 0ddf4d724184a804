//! The `database` section: the service's and the schema owner's connections, the pool, and
//! TLS.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::{redacted, redacted_opt, ConfigError, REDACTED};

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

impl DatabaseConfig {
    /// The heartbeat of LISTEN connections.
    pub fn heartbeat(&self) -> charter_log::listener::Heartbeat {
        charter_log::listener::Heartbeat {
            every: Duration::from_millis(self.listen_heartbeat_ms.max(1)),
        }
    }

    /// The connection settings, with timeouts applied.
    pub fn pg_config(&self) -> Result<tokio_postgres::Config, ConfigError> {
        let mut config = parse_url("database.url", &self.url)?;
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
    pub fn migration_pg_config(&self) -> Result<tokio_postgres::Config, ConfigError> {
        let mut config = match &self.migration_url {
            Some(url) => parse_url("database.migration_url", url)?,
            None => parse_url("database.url", &self.url)?,
        };
        config.connect_timeout(Duration::from_millis(self.connect_timeout_ms));
        config.application_name("charter-migrate");
        Ok(config)
    }
}

/// `url`, the value of setting `key`, as connection settings; a malformed one is named by its
/// key (never by its value, which holds a password).
fn parse_url(key: &str, url: &SecretString) -> Result<tokio_postgres::Config, ConfigError> {
    // The defaults layer of `Config::load` is the serialized, so redacted, defaults: a URL no
    // file or variable set arrives as the placeholder.
    if url.expose_secret() == REDACTED {
        return Err(ConfigError::missing(key));
    }
    url.expose_secret()
        .parse()
        .map_err(|e: tokio_postgres::Error| {
            let problem = match std::error::Error::source(&e) {
                Some(cause) => format!("{e}: {cause}"),
                None => e.to_string(),
            };
            ConfigError::setting(key, problem)
        })
}
