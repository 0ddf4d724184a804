//! The connection pool and the embedded migrations.

use std::time::Duration;

use charter_log::pg::{client_config, crypto_provider, PgConnect, Tls};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_postgres::config::SslMode;

use crate::config::{DatabaseConfig, DatabaseTls, TlsMode};

refinery::embed_migrations!("migrations");

/// Every instance takes this session-level lock before migrating, so two instances starting
/// at once apply each migration exactly once.
const MIGRATION_LOCK: i64 = 0x6368_6172_7465_7201; // "charter\x01"

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("invalid database configuration: {0}")]
    Config(String),
    #[error("database.tls: {0}")]
    Tls(String),
    /// With its causes: a refused TLS handshake says why (an unknown issuer, another name).
    #[error("database: {}", chain(.0))]
    Postgres(#[from] tokio_postgres::Error),
    #[error("migration failed: {0}")]
    Migration(#[from] refinery::Error),
    /// A connection setting that is malformed, named by its key.
    #[error("{0}")]
    Setting(#[from] crate::config::ConfigError),
}

/// The service's connection: `database.url` with `database.tls`.
pub fn service(config: &DatabaseConfig) -> Result<PgConnect, DbError> {
    secured(config.pg_config()?, &config.tls)
}

/// The schema owner's connection: `database.migration_url` (or `url`) with `database.tls`.
pub fn owner(config: &DatabaseConfig) -> Result<PgConnect, DbError> {
    secured(config.migration_pg_config()?, &config.tls)
}

/// `pg` as `tls` says: plaintext, or TLS verified against the trusted authorities with the
/// server's name checked against the host (rustls always checks both).
fn secured(mut pg: tokio_postgres::Config, tls: &DatabaseTls) -> Result<PgConnect, DbError> {
    if tls.mode == TlsMode::Disable {
        return Ok(PgConnect::plain(pg));
    }
    let failed = |what: &str, path: &std::path::Path, e: &dyn std::fmt::Display| {
        DbError::Tls(format!("{what} {}: {e}", path.display()))
    };
    let mut roots = rustls::RootCertStore::empty();
    match &tls.ca_file {
        Some(path) => {
            for cert in CertificateDer::pem_file_iter(path)
                .map_err(|e| failed("reading ca_file", path, &e))?
            {
                let cert = cert.map_err(|e| failed("reading ca_file", path, &e))?;
                roots
                    .add(cert)
                    .map_err(|e| failed("a certificate of ca_file", path, &e))?;
            }
            if roots.is_empty() {
                return Err(failed("no certificate in ca_file", path, &"empty"));
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            for cert in native.certs {
                let _ = roots.add(cert);
            }
            if roots.is_empty() {
                return Err(DbError::Tls(
                    "verify-full without ca_file needs the system's certificate store, which is empty"
                        .into(),
                ));
            }
        }
    }
    let client = match (&tls.cert_file, &tls.key_file) {
        (None, None) => client_config(roots),
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .map_err(|e| failed("reading cert_file", cert, &e))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| failed("reading cert_file", cert, &e))?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| failed("reading key_file", key, &e))?;
            rustls::ClientConfig::builder_with_provider(crypto_provider())
                .with_safe_default_protocol_versions()
                .map_err(|e| DbError::Tls(e.to_string()))?
                .with_root_certificates(roots)
                .with_client_auth_cert(chain, key)
                .map_err(|e| DbError::Tls(format!("the client certificate: {e}")))?
        }
        _ => return Err(DbError::Tls("cert_file and key_file go together".into())),
    };
    pg.ssl_mode(SslMode::Require);
    Ok(PgConnect {
        config: pg,
        tls: Tls::new(client),
    })
}

/// An error and its sources, `a: b: c`.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

pub fn pool(config: &DatabaseConfig) -> Result<Pool, DbError> {
    build_pool(service(config)?, config, config.pool_size)
}

/// The projection runners' pool: their commits do not wait for the WAL flush. A read model
/// commits its writes with its checkpoint, so a commit lost in a crash is only applied again
/// from the log (the outboxes it writes are published at least once anyway).
pub fn projection_pool(config: &DatabaseConfig) -> Result<Pool, DbError> {
    let mut pg = service(config)?;
    pg.config.options("-c synchronous_commit=off");
    pg.config.application_name("charter-projections");
    build_pool(pg, config, config.pool_size)
}

/// `size` connections as the schema owner, for tools that create schemas (replay). Commits
/// do not wait for the WAL flush: what they write is scratch until promoted, and promotion
/// commits durably (it sets `synchronous_commit` back on).
pub fn owner_pool(config: &DatabaseConfig, size: usize) -> Result<Pool, DbError> {
    let mut pg = owner(config)?;
    // Room for the replay's comparisons (sorting checksums of large tables) in memory.
    pg.config
        .options("-c synchronous_commit=off -c work_mem=64MB");
    pg.config.application_name("charter-replay");
    build_pool(pg, config, size)
}

fn build_pool(pg: PgConnect, config: &DatabaseConfig, size: usize) -> Result<Pool, DbError> {
    let timeout = Some(Duration::from_millis(config.connect_timeout_ms));
    let manager = Manager::from_config(
        pg.config,
        pg.tls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(timeout)
        .create_timeout(timeout)
        .recycle_timeout(timeout)
        .build()
        .map_err(|e| DbError::Config(e.to_string()))
}

/// What the service role may do once migrations ran as a separate owner. `events` is
/// SELECT/INSERT only: the service can append history, never rewrite it.
const SERVICE_GRANTS: &str = "
    GRANT USAGE ON SCHEMA public, projections TO {role};
    GRANT SELECT, INSERT ON events TO {role};
    GRANT SELECT, INSERT, UPDATE, DELETE ON outbox, unique_claims, idempotency_keys,
        tenant_hierarchy TO {role};
    GRANT SELECT ON refinery_schema_history TO {role};
    GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA projections TO {role};
    GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role};
";

/// Applies the embedded migrations that are not applied yet, as the schema owner, then grants
/// the service role its privileges. Safe to run concurrently.
pub async fn migrate(config: &DatabaseConfig) -> Result<Vec<String>, DbError> {
    let owner = owner(config)?;
    let service_role = config.pg_config()?.get_user().map(str::to_owned);
    let (mut client, connection) = owner.connect().await?;
    let driver = tokio::spawn(connection);
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    let report = migrations::runner().run_async(&mut client).await;
    if report.is_ok() {
        if let Some(role) = service_role.filter(|r| Some(r.as_str()) != owner.config.get_user()) {
            let role = format!("\"{}\"", role.replace('"', "\"\""));
            client
                .batch_execute(&SERVICE_GRANTS.replace("{role}", &role))
                .await?;
        }
    }
    // Unlocking explicitly keeps the lock's life obvious; closing the connection would too.
    let _ = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await;
    drop(client);
    let _ = driver.await;
    let applied = report?
        .applied_migrations()
        .iter()
        .map(|m| m.to_string())
        .collect();
    Ok(applied)
}

/// Refuses a service role that could rewrite history: one that owns `events` (and so could
/// drop or disable its guard trigger and revoke nothing from itself) or is a superuser. It
/// happens when `database.migration_url` is unset and `database.url` is the schema owner's.
pub async fn refuse_owning_service_role(config: &DatabaseConfig) -> Result<(), DbError> {
    let (client, connection) = service(config)?.connect().await?;
    let driver = tokio::spawn(connection);
    let row = client
        .query_one(
            "SELECT current_user::text, \
                    pg_get_userbyid(c.relowner) = current_user, \
                    (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) \
             FROM pg_class c WHERE c.oid = 'public.events'::regclass",
            &[],
        )
        .await;
    drop(client);
    let _ = driver.await;
    let row = row?;
    let (role, owns, superuser): (String, bool, bool) = (row.get(0), row.get(1), row.get(2));
    if owns || superuser {
        let what = if owns {
            "owns the `events` table"
        } else {
            "is a superuser"
        };
        return Err(DbError::Config(format!(
            "the service role {role:?} {what}, so it could drop the append-only guard and rewrite \
             history. Connect the service as a role that does not own the schema \
             (database.url, CHARTER_DATABASE__URL) and run migrations as the owner \
             (database.migration_url, CHARTER_DATABASE__MIGRATION_URL)"
        )));
    }
    Ok(())
}

/// The newest migration embedded in this binary.
pub fn latest_migration() -> i32 {
    migrations::runner()
        .get_migrations()
        .iter()
        .map(|m| m.version())
        .max()
        .unwrap_or(0)
}

/// The newest migration applied to the database (0 when none).
pub async fn applied_migration(
    client: &impl deadpool_postgres::GenericClient,
) -> Result<i32, tokio_postgres::Error> {
    let row = client
        .query_one(
            "SELECT COALESCE(max(version), 0)::int4 FROM refinery_schema_history",
            &[],
        )
        .await?;
    Ok(row.get(0))
}
