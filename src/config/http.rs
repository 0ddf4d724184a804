//! The `http` and `ops` sections: the API listener and the operations listener.

use serde::{Deserialize, Serialize};

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
