//! A synthetic, domain-valid history written straight into the event store, for benchmarks of
//! whatever reads the log (`charter replay` above all). Used by `charter-loadgen seed-log`;
//! never on the service's request path.
//!
//! **What a history looks like.** Per million events, about: 40 tenants (the first with two
//! subsidiaries below it, about one in eight others nested too), 320 workspaces, 300 custom
//! roles besides the 3 system roles every tenant gets, 100,000 users, 10,000 groups, 200,000
//! memberships and 50,000 assignments, plus renames, email and display-name changes,
//! disables, deletes and the credential traffic that dominates real logs: 165,000 logins
//! (each `user.login_succeeded` + `session.started`), 40,000 failed logins with the lockouts
//! they cause, 110,000 refresh-token rotations, 35,000 logouts, MFA set-ups and password
//! changes. [`mix::MIX`] is the table; small histories keep at least one of every kind.
//!
//! **Valid by construction.** Every command is one the command side would have accepted:
//! the generator keeps the facts `prepare` loads and `decide` checks (tenant status, names
//! free, live users, groups, roles and workspaces of the same tenant, memberships, the
//! lockout policy, session state) and builds each event from the typed structs of
//! `charter_events` ([`make`]). [`check::LogChecker`] verifies that claim independently:
//! it folds the log through the real aggregates and replays each command's `decide`.
//!
//! **How it is written.** Events go in with `COPY ... (FORMAT binary)`, a transaction per
//! batch, one command after another: `position` and `tx_id` keep their defaults, so the
//! global `(tx_id, position)` order is the generation order and every stream's versions
//! rise with it (ADR 0001). The same transactions keep `unique_claims` and
//! `tenant_hierarchy` as the commands would have. No outbox rows are written: the relay
//! would otherwise publish the whole history to Kafka.

mod access;
mod assignments;
pub mod check;
mod gen;
mod groups;
mod make;
pub mod mix;
mod names;
mod out;
mod rng;
mod roles;
mod setup;
mod tenants;
mod users;
mod workspaces;
mod world;
mod write;

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use uuid::Uuid;

pub use world::Platform;
pub use write::run;

#[derive(Debug, Clone)]
pub struct Options {
    /// Events to write, exactly.
    pub events: u64,
    /// The same seed gives the same history (ids and times are anchored to the clock).
    pub seed: u64,
    /// How far back the history starts (it ends now, and never before the newest event).
    pub days: u32,
    /// Events per transaction (cut at a command boundary).
    pub batch_events: u64,
    /// Fold every generated command through the domain (`LogChecker`) before writing it.
    pub check: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            events: 1_000_000,
            seed: 1,
            days: 365,
            batch_events: 50_000,
            check: false,
        }
    }
}

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

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("database: {0}")]
    Db(#[from] tokio_postgres::Error),
    #[error("database pool: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("reading the existing log: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("generator: {0}")]
    Generator(String),
    #[error("invalid options: {0}")]
    Options(String),
}

/// What the database already holds that the history must fit around.
#[derive(Debug, Default, Clone)]
pub struct Existing {
    /// The administrator granted platform access (the bootstrap's), if any.
    pub platform: Option<Platform>,
    /// Registry streams by service: name → label, and the stream's version.
    pub registries: HashMap<String, (BTreeMap<String, String>, i64)>,
    /// `permission.name` claims: name → holding stream.
    pub permission_holders: HashMap<String, String>,
    pub slugs: HashSet<String>,
    pub last_recorded_at: Option<DateTime<Utc>>,
}

impl Existing {
    pub fn registry(&self, service: &str) -> (BTreeMap<String, String>, i64) {
        self.registries.get(service).cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::gen::Gen;
    use super::out::Out;
    use super::*;

    /// Generates in memory (no database), with the domain check on every command.
    fn generate(events: u64, seed: u64) -> Gen {
        let out = Out::new(Box::new(|_| true), 2_000, Some(check::LogChecker::new()));
        let end = Utc::now();
        let mut g = Gen::new(events, seed, end - chrono::Duration::days(30), end, out);
        g.run(&Existing::default()).unwrap();
        g
    }

    #[test]
    fn a_seeded_history_is_exact_complete_and_passes_the_domain_check() {
        let g = generate(5_000, 7);
        assert_eq!(g.out.events, 5_000);
        let missing: Vec<_> = (g.schedule.report().into_iter())
            .filter(|(_, _, done)| *done == 0)
            .collect();
        assert!(missing.is_empty(), "kinds that never ran: {missing:?}");
        let catalogue = charter_events::catalog::all_schemas();
        for t in g.out.per_type.keys() {
            assert!(catalogue.iter().any(|s| s.event_type == *t), "{t}");
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_history_shape() {
        let (a, b) = (generate(3_000, 11), generate(3_000, 11));
        assert_eq!(a.out.per_type, b.out.per_type);
        assert_eq!(a.out.commands, b.out.commands);
    }
}
