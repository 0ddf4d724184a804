//! Charter's event log as both sides see it: a position in the global order, reading the log
//! in commit-safe order, waking its followers after an append, the read models' checkpoints,
//! connecting to PostgreSQL, and the one table of PostgreSQL errors that are worth a retry.
//! The write side (the service) and the read side (`charter-projections`) both build on it;
//! it depends on neither.
#![forbid(unsafe_code)]

pub mod checkpoint;
pub mod listener;
pub mod pg;
pub mod position;
pub mod reader;
pub mod sqlstate;

pub use position::LogPosition;
