//! The seed generator's one error enum.

/// Why a run failed: the database, the log it must fit around, the generator or the options.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("database: {0}")]
    Db(#[from] tokio_postgres::Error),
    #[error("database pool: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("reading the existing log: {0}")]
    Store(#[from] charter::store::StoreError),
    #[error("generator: {0}")]
    Generator(String),
    #[error("invalid options: {0}")]
    Options(String),
}
