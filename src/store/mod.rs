//! The write side's persistence: load a stream, append to it in the caller's transaction
//! (with its outbox rows), uniqueness claims and idempotency records. No business rules here.

pub mod audit;
pub mod claims;
pub mod events;
pub mod hierarchy;
pub mod idempotency;
pub mod locks;

use tokio_postgres::error::SqlState;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another transaction appended to the stream first.
    #[error("stream {stream_id} was changed concurrently")]
    Conflict { stream_id: String },
    #[error("{scope} {value:?} is already taken")]
    ClaimTaken { scope: String, value: String },
    /// A programming error: a transaction id was assigned before the stream was read, which
    /// would let a later version sort before an earlier one in the global order.
    #[error("a transaction id was assigned before the append; the global order would break")]
    TransactionNotFresh,
    /// Deadlock or serialization failure; retrying the transaction is safe.
    #[error("transient conflict: {0}")]
    Transient(String),
    #[error("corrupt record: {0}")]
    Corrupt(String),
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Db(tokio_postgres::Error),
    #[error(transparent)]
    Log(#[from] charter_projections::log::LogError),
    #[error(transparent)]
    Decode(#[from] charter_events::DecodeError),
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        StoreError::Unavailable(e.to_string())
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        if is_unavailable(&e) {
            return StoreError::Unavailable(e.to_string());
        }
        if matches!(
            e.code(),
            Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE
        ) {
            return StoreError::Transient(e.to_string());
        }
        StoreError::Db(e)
    }
}

/// Lost connections, refused connections, shutdowns and statement timeouts: worth a 503 and
/// a retry, not a 500. Everything else (including client-side encoding errors) is a bug.
pub fn is_unavailable(e: &tokio_postgres::Error) -> bool {
    use std::error::Error as _;
    if e.is_closed() || e.source().is_some_and(|s| s.is::<std::io::Error>()) {
        return true;
    }
    e.code().is_some_and(|code| {
        // 08: connection exception, 57: operator intervention (shutdown, cancel, timeout),
        // 53: insufficient resources.
        matches!(&code.code()[..2], "08" | "57" | "53")
    })
}

/// The name of the violated unique constraint, if `e` is a unique violation.
pub(crate) fn unique_violation(e: &tokio_postgres::Error) -> Option<&str> {
    let db = e.as_db_error()?;
    (*db.code() == SqlState::UNIQUE_VIOLATION).then(|| db.constraint().unwrap_or_default())
}
