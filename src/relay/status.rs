//! The relay's health as this instance sees it, for `/ready` and `/metrics`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::Serialize;

#[derive(Clone, Default)]
pub struct RelayStatus(Arc<Inner>);

#[derive(Default)]
struct Inner {
    leader: AtomicBool,
    broker_ok: AtomicBool,
    last_error: Mutex<Option<String>>,
    last_publish: Mutex<Option<Instant>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RelaySnapshot {
    /// Whether this instance holds the relay lock.
    pub leader: bool,
    /// `ok`, `degraded` (the last batch failed) or `standby`.
    pub state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds_since_last_publish: Option<f64>,
}

impl RelayStatus {
    pub fn set_leader(&self, leader: bool) {
        self.0.leader.store(leader, Ordering::Relaxed);
        metrics::gauge!("charter_relay_leader").set(if leader { 1.0 } else { 0.0 });
    }

    pub fn published(&self, at: Instant) {
        *self.0.last_publish.lock().expect("not poisoned") = Some(at);
        self.idle();
    }

    /// The last batch went through (or there was nothing to send).
    pub fn idle(&self) {
        self.0.broker_ok.store(true, Ordering::Relaxed);
        *self.0.last_error.lock().expect("not poisoned") = None;
        metrics::gauge!("charter_relay_broker_up").set(1.0);
    }

    pub fn failed(&self, error: &str) {
        self.0.broker_ok.store(false, Ordering::Relaxed);
        *self.0.last_error.lock().expect("not poisoned") = Some(error.to_owned());
        metrics::gauge!("charter_relay_broker_up").set(0.0);
    }

    pub fn snapshot(&self) -> RelaySnapshot {
        let leader = self.0.leader.load(Ordering::Relaxed);
        let last_error = self.0.last_error.lock().expect("not poisoned").clone();
        let state = match (leader, last_error.is_some()) {
            (_, true) => "degraded",
            (true, false) => "ok",
            (false, false) => "standby",
        };
        RelaySnapshot {
            leader,
            state,
            last_error,
            seconds_since_last_publish: self
                .0
                .last_publish
                .lock()
                .expect("not poisoned")
                .map(|t| t.elapsed().as_secs_f64()),
        }
    }
}
