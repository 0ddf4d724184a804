//! The `relay` and `projections` sections: the background workers that publish the outbox
//! and keep the read models.

use serde::{Deserialize, Serialize};

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
