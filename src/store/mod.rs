//! The write side's persistence: load a stream, append to it in the caller's transaction
//! (with its outbox rows), uniqueness claims and idempotency records. No business rules here.

pub mod audit;
pub mod claims;
pub mod events;
pub mod hierarchy;
pub mod idempotency;
pub mod locks;

use charter_log::sqlstate::{self, ErrorClass};
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
    Log(#[from] charter_log::reader::LogError),
    #[error(transparent)]
    Decode(#[from] charter_events::DecodeError),
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        StoreError::Unavailable(e.to_string())
    }
}

/// Which SQLSTATEs are an outage (503) and which a lost race (run the command again) is
/// [`charter_log::sqlstate::TABLE`], the table the projections use too. Everything else
/// (including client-side encoding errors and the table's `Unsettled` codes, which only the
/// followers of the log wait out) is a bug: a 500.
impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        match sqlstate::classify_error(&e) {
            ErrorClass::Unavailable => StoreError::Unavailable(e.to_string()),
            ErrorClass::Conflict => StoreError::Transient(e.to_string()),
            ErrorClass::Unsettled | ErrorClass::Permanent => StoreError::Db(e),
        }
    }
}

/// The name of the violated unique constraint, if `e` is a unique violation.
pub(crate) fn unique_violation(e: &tokio_postgres::Error) -> Option<&str> {
    let db = e.as_db_error()?;
    (*db.code() == SqlState::UNIQUE_VIOLATION).then(|| db.constraint().unwrap_or_default())
}
