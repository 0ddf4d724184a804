//! What a run wrote: counts, timings and the rows the read models should then hold.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Rows the seeded tenants should have in the read models once the projections caught up.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Expected {
    pub tenants: u64,
    pub workspaces: u64,
    pub users: u64,
    pub users_live: u64,
    pub groups: u64,
    pub group_members: u64,
    pub roles: u64,
    pub assignments: u64,
    /// Of the seeded services (their registry rows, whoever registered them first).
    pub permissions: u64,
    pub sessions: u64,
}

/// What a run wrote: events, commands and transactions, how long it took, and what to expect.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    pub events: u64,
    pub commands: u64,
    pub transactions: u64,
    pub seconds: f64,
    pub per_type: BTreeMap<String, u64>,
    pub expected: Expected,
    pub tenant_ids: Vec<Uuid>,
    pub services: Vec<String>,
    pub first_recorded_at: DateTime<Utc>,
    pub last_recorded_at: DateTime<Utc>,
}

impl Summary {
    pub fn events_per_second(&self) -> f64 {
        self.events as f64 / self.seconds.max(1e-9)
    }
}
