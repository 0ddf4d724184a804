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
//! `charter_events` (`make`). [`check::LogChecker`] verifies that claim independently:
//! it folds the log through the real aggregates and replays each command's `decide`.
//!
//! **How it is written.** Events go in with `COPY ... (FORMAT binary)`, a transaction per
//! batch, one command after another: `position` and `tx_id` keep their defaults, so the
//! global `(tx_id, position)` order is the generation order and every stream's versions
//! rise with it (ADR 0001). The same transactions keep `unique_claims` and
//! `tenant_hierarchy` as the commands would have. No outbox rows are written: the relay
//! would otherwise publish the whole history to Kafka.
#![forbid(unsafe_code)]

mod access;
mod assignments;
pub mod check;
mod error;
mod existing;
mod gen;
mod groups;
mod make;
pub mod mix;
mod names;
mod options;
mod out;
mod rng;
mod roles;
mod setup;
mod summary;
mod tenants;
#[cfg(test)]
mod tests;
mod users;
mod workspaces;
mod world;
mod write;

pub use error::SeedError;
pub use existing::Existing;
pub use options::Options;
pub use summary::{Expected, Summary};
pub use world::Platform;
pub use write::run;
