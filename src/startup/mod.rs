//! Builds the application: migrations, pool, projection runners, relay, HTTP server.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};
use charter_log::{checkpoint, listener};
use charter_projections::index::Index;
use charter_projections::Runner;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::auth::flows::Authenticator;
use crate::auth::rate_limit::RateLimits;
use crate::command::keyring::ensure_key;
use crate::command::Writer;
use crate::config::Config;
use crate::crypto::MasterKey;
use crate::db::{self, DbError};
use crate::http::{self, state::AppState};
use crate::relay::{Relay, RelayError, RelayStatus};
use crate::telemetry;
use crate::token::{KeyStore, Verifier};

mod tasks;

use tasks::{
    bootstrap_from_config, catch_up_from_far_behind, register_own_permissions,
    reload_keys_periodically,
};

/// How long the background tasks get to stop once the server has: the relay's final drain
/// and flush fit in it. With the default `http.shutdown_timeout_s` of 7 a SIGTERM ends the
/// process within 10 s.
pub const BACKGROUND_STOP: Duration = Duration::from_millis(2_500);

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("database: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("database pool: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("relay: {0}")]
    Relay(#[from] RelayError),
    #[error("http: {0}")]
    Io(#[from] std::io::Error),
    #[error("registering Charter's permissions: {0}")]
    Register(String),
    #[error("configuration: {0}")]
    Config(String),
    #[error("signing keys: {0}")]
    Keys(String),
    #[error("entitlement index: {0}")]
    Index(String),
    #[error("bootstrap: {0}")]
    Bootstrap(#[from] crate::auth::bootstrap::BootstrapError),
}

/// The master key from `keys.master_key`, which is required.
pub fn master_key(config: &Config) -> Result<MasterKey, StartupError> {
    use secrecy::ExposeSecret;
    let raw = config.keys.master_key.as_ref().ok_or_else(|| {
        StartupError::Config(
            "keys.master_key (CHARTER_KEYS__MASTER_KEY) is required: 32 bytes, base64 or hex \
             (openssl rand -base64 32)"
                .into(),
        )
    })?;
    MasterKey::parse(raw.expose_secret()).map_err(|e| StartupError::Config(e.to_string()))
}

pub struct Application {
    port: u16,
    server: Server,
    /// The operations listener (`ops.*`), when enabled, and its port.
    ops: Option<(u16, Server)>,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    pool: deadpool_postgres::Pool,
}

impl Application {
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        let applied = db::migrate(&config.database).await?;
        if !applied.is_empty() {
            tracing::info!(?applied, "applied migrations");
        }
        db::refuse_owning_service_role(&config.database).await?;
        let pool = db::pool(&config.database)?;
        let shutdown = CancellationToken::new();
        let (appended, wakeup) = listener::spawn(
            db::service(&config.database)?,
            config.database.heartbeat(),
            shutdown.clone(),
        );
        let mut tasks = Vec::new();

        if config.projections.enabled {
            let groups = charter_projections::runner_groups();
            // The runners have connections of their own: a burst of requests cannot starve them
            // (and read-your-writes waits depend on them making progress).
            let mut background = config.database.clone();
            background.pool_size = groups.len() + 1;
            let background = db::projection_pool(&background)?;
            let names: Vec<&str> = groups.iter().flatten().map(|p| p.name()).collect();
            checkpoint::ensure(&pool.get().await?, checkpoint::LIVE_SCHEMA, &names).await?;
            // Far behind (a fresh instance on an existing log), the read models first catch up
            // the way a replay rebuilds them. The runner meanwhile finds their locks taken
            // (Busy) and carries on from where the catch-up leaves them; both advance the same
            // checkpoints, so no event is applied twice.
            tasks.push(tokio::spawn(catch_up_from_far_behind(
                config.database.clone(),
                shutdown.clone(),
            )));
            for group in groups {
                let runner = Runner::group(
                    background.clone(),
                    group,
                    checkpoint::LIVE_SCHEMA,
                    config.projections.batch_size,
                );
                let runner = runner
                    .with_linger(Duration::from_millis(config.projections.linger_ms))
                    .with_max_attempts(config.projections.max_attempts)
                    .with_signal(appended.clone());
                let poll = Duration::from_millis(config.projections.poll_interval_ms);
                tasks.push(tokio::spawn(runner.run(
                    wakeup.clone(),
                    poll,
                    shutdown.clone(),
                )));
            }
        }

        // The entitlement index: loaded from the read models, then following the log.
        let index = Arc::new(
            Index::load(&mut pool.get().await?)
                .await
                .map_err(|e| StartupError::Index(e.to_string()))?,
        );
        index
            .catch_up(&pool)
            .await
            .map_err(|e| StartupError::Index(e.to_string()))?;
        tasks.push(tokio::spawn(index.clone().follow(
            pool.clone(),
            wakeup.clone(),
            Duration::from_millis(config.projections.poll_interval_ms),
            shutdown.clone(),
        )));

        let relay_status = RelayStatus::default();
        if config.relay.enabled {
            let relay = Relay::new(&config, relay_status.clone())?;
            tasks.push(tokio::spawn(relay.run(wakeup.clone(), shutdown.clone())));
        }

        let writer = Writer {
            pool: pool.clone(),
            appended,
        };
        register_own_permissions(&writer).await?;

        let master = master_key(&config)?;
        ensure_key(&writer, &master)
            .await
            .map_err(|e| StartupError::Keys(e.to_string()))?;
        let keys = KeyStore::load(&pool.get().await?, master)
            .await
            .map_err(|e| StartupError::Keys(e.to_string()))?;
        tasks.push(tokio::spawn(reload_keys_periodically(
            keys.clone(),
            pool.clone(),
            shutdown.clone(),
        )));
        let verifier = Verifier::new(keys.clone(), pool.clone(), &config.auth);
        verifier.spawn_invalidation(
            db::service(&config.database)?,
            config.database.heartbeat(),
            shutdown.clone(),
        );
        let limits = Arc::new(RateLimits::new(&config.rate_limit));
        tasks.push(limits.spawn_pruning(
            Duration::from_secs(config.rate_limit.prune_interval_s),
            shutdown.clone(),
        ));
        let auth = Authenticator::new(
            writer.clone(),
            keys,
            config.auth.clone(),
            limits,
            index.clone(),
        )
        .map_err(|e| StartupError::Config(e.to_string()))?;
        bootstrap_from_config(&writer, &config).await?;

        let listener = TcpListener::bind((config.http.host.as_str(), config.http.port))?;
        let port = listener.local_addr()?.port();
        let workers = match config.http.workers {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        };
        let shutdown_timeout = config.http.shutdown_timeout_s;
        let state = web::Data::new(AppState {
            pool: pool.clone(),
            writer,
            config: Arc::new(config),
            relay: relay_status,
            metrics: telemetry::metrics_handle(),
            verifier,
            auth,
            index,
        });
        // Forms (the OAuth endpoints) have the same body limit as JSON.
        let form_limit = state.config.http.max_body_bytes;
        let state_for_ops = state.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(web::FormConfig::default().limit(form_limit))
                .wrap(from_fn(http::authorize::authorize))
                .wrap(from_fn(http::middleware::edge))
                .wrap(from_fn(http::middleware::security_headers))
                .wrap(tracing_actix_web::TracingLogger::<telemetry::RequestSpan>::new())
                .configure(http::routes::configure)
        })
        .workers(workers)
        .shutdown_timeout(shutdown_timeout)
        .listen(listener)?
        .run();
        tracing::info!(port, "charter is listening");
        let ops = if state_for_ops.config.ops.enabled {
            let c = &state_for_ops.config.ops;
            let listener = TcpListener::bind((c.host.as_str(), c.port))?;
            let ops_port = listener.local_addr()?.port();
            let state = state_for_ops.clone();
            let server = HttpServer::new(move || {
                App::new()
                    .app_data(state.clone())
                    .wrap(from_fn(http::middleware::security_headers))
                    .configure(http::api::ops::routes)
            })
            .workers(1)
            // It stops with the public listener (SIGTERM reaches both).
            .shutdown_timeout(1)
            .listen(listener)?
            .run();
            tracing::info!(port = ops_port, "operations listener (/ready, /metrics)");
            Some((ops_port, server))
        } else {
            None
        };
        Ok(Self {
            port,
            server,
            ops,
            shutdown,
            tasks,
            pool,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The operations listener's port, when it is enabled.
    pub fn ops_port(&self) -> Option<u16> {
        self.ops.as_ref().map(|(port, _)| *port)
    }

    pub fn pool(&self) -> deadpool_postgres::Pool {
        self.pool.clone()
    }

    /// Serves until SIGINT/SIGTERM: stops accepting at once, gives in-flight requests up to
    /// `http.shutdown_timeout_s`, then stops the projectors and lets the relay publish what
    /// the last requests committed (bounded by [`BACKGROUND_STOP`]).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let ops = self.ops.map(|(_, server)| server);
        let ops_handle = ops.as_ref().map(|s| s.handle());
        let ops_task = ops.map(tokio::spawn);
        let result = self.server.await;
        if let Some(handle) = ops_handle {
            handle.stop(false).await;
        }
        if let Some(task) = ops_task {
            let _ = task.await;
        }
        tracing::info!("no request in flight; stopping the projectors and the relay");
        self.shutdown.cancel();
        let drain = futures::future::join_all(self.tasks);
        if tokio::time::timeout(BACKGROUND_STOP, drain).await.is_err() {
            tracing::warn!("background tasks did not stop within {BACKGROUND_STOP:?}");
        }
        result
    }
}
