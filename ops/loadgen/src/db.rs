//! The database pool of the scenarios that read or write the service's tables directly.

use deadpool_postgres::Pool;
use secrecy::SecretString;

/// A pool of `size` connections to `database_url`, with the service's own settings.
pub fn pool(database_url: &str, size: usize) -> Result<Pool, charter::db::DbError> {
    charter::db::pool(&charter::config::DatabaseConfig {
        url: SecretString::from(database_url.to_owned()),
        pool_size: size,
        ..Default::default()
    })
}
