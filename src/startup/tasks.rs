//! What runs beside the server: the configured bootstrap, a far-behind instance's catch-up,
//! Charter's own permission registration and the periodic reload of the signing keys.

use std::time::Duration;

use charter_log::{checkpoint, LogPosition};
use tokio_util::sync::CancellationToken;

use crate::auth::bootstrap::{bootstrap, Bootstrap};
use crate::command::permission::RegisterPermissions;
use crate::command::{self, Writer};
use crate::config::Config;
use crate::db::{self};
use crate::domain::permission_registry::{Register, CHARTER_PERMISSIONS, CHARTER_SERVICE};
use crate::token::KeyStore;

use super::StartupError;

/// Runs the configured bootstrap, if `bootstrap.tenant` is set.
pub(super) async fn bootstrap_from_config(
    writer: &Writer,
    config: &Config,
) -> Result<(), StartupError> {
    use secrecy::ExposeSecret;
    let b = &config.bootstrap;
    let Some(tenant) = &b.tenant else {
        return Ok(());
    };
    let missing = |what: &str| {
        StartupError::Config(format!(
            "bootstrap.{what} is required with bootstrap.tenant"
        ))
    };
    let username = b.username.clone().ok_or_else(|| missing("username"))?;
    let password = b
        .password
        .as_ref()
        .ok_or_else(|| missing("password"))?
        .expose_secret()
        .to_owned();
    let request = Bootstrap {
        tenant_slug: tenant.clone(),
        email: b
            .email
            .clone()
            .unwrap_or_else(|| format!("{username}@{tenant}.invalid")),
        username,
        password,
    };
    let done = bootstrap(writer, config.auth.pbkdf2_iterations, &request).await?;
    // A token minted before the grant is projected would go stale as soon as it is: let the
    // read models catch up before anyone can log in.
    if config.projections.enabled {
        let timeout = Duration::from_secs(30);
        if !checkpoint::wait_for(&writer.pool, done.token, timeout)
            .await
            .unwrap_or(false)
        {
            tracing::warn!("the read models did not catch up with the bootstrap within 30 s");
        }
    }
    tracing::info!(tenant_id = %done.tenant_id, user_id = %done.user_id, "bootstrap administrator ready");
    Ok(())
}

/// How far behind the head of the log (in events) the read models must be for an instance
/// to catch up in parallel, one runner per read model, before its runner follows the log.
pub const CATCH_UP_THRESHOLD: u64 = 50_000;

/// Events per read and per transaction while catching up (as `charter replay`).
const CATCH_UP_BATCH: i64 = 5_000;

/// When the live read models are more than [`CATCH_UP_THRESHOLD`] events behind the head,
/// brings them up to it as a replay rebuilds: one reader, one runner per read model, each in
/// its own connection (`charter_projections::replay::fan_out`). Failures are logged; the
/// regular runner then carries on from wherever this stopped.
pub(super) async fn catch_up_from_far_behind(
    database: crate::config::DatabaseConfig,
    shutdown: CancellationToken,
) {
    let all = charter_projections::all();
    let mut config = database.clone();
    config.pool_size = all.len() + 2;
    let outcome = async {
        let pool = db::projection_pool(&config).map_err(|e| e.to_string())?;
        let client = pool.get().await.map_err(|e| e.to_string())?;
        let head = charter_log::reader::head(&client)
            .await
            .map_err(|e| e.to_string())?;
        let from = checkpoint::all(&client, checkpoint::LIVE_SCHEMA)
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|(_, at)| at)
            .min()
            .unwrap_or(LogPosition::START);
        let behind = charter_log::reader::count_range(&client, from, head)
            .await
            .map_err(|e| e.to_string())?;
        drop(client);
        if behind < CATCH_UP_THRESHOLD {
            return Ok(None);
        }
        tracing::info!(
            behind,
            "the read models are far behind the log: catching up in parallel"
        );
        let started = std::time::Instant::now();
        let (_, done) = charter_projections::replay::fan_out(
            pool,
            &all,
            checkpoint::LIVE_SCHEMA,
            CATCH_UP_BATCH,
            from,
            head,
        );
        let (read, _) = done.await.map_err(|e| e.to_string())?;
        Ok::<_, String>(Some((read, started.elapsed())))
    };
    tokio::select! {
        result = outcome => match result {
            Ok(Some((read, took))) => tracing::info!(events = read,
                events_per_second = (read as f64 / took.as_secs_f64().max(1e-9)).round(),
                "the read models caught up"),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "catching up in parallel failed; the runner carries on"),
        },
        _ = shutdown.cancelled() => {}
    }
}

/// Registers the `iam.*` permissions Charter enforces. Idempotent: instances starting together
/// race on the registry stream and the loser re-decides to "nothing to do".
pub(super) async fn register_own_permissions(writer: &Writer) -> Result<(), StartupError> {
    let command = Register {
        service: CHARTER_SERVICE.into(),
        permissions: CHARTER_PERMISSIONS
            .iter()
            .map(|(n, l)| (n.to_string(), l.to_string()))
            .collect(),
    };
    let request = command::system_request("system");
    command::run(writer, &RegisterPermissions(command), &request)
        .await
        .map_err(|e| StartupError::Register(e.to_string()))?;
    Ok(())
}

/// Every instance re-reads the keyring now and then, so a rotation made elsewhere starts
/// signing here too (verification also reloads on an unknown `kid`).
pub(super) async fn reload_keys_periodically(
    keys: KeyStore,
    pool: deadpool_postgres::Pool,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(crate::token::keys::RELOAD_INTERVAL) => {}
            _ = shutdown.cancelled() => return,
        }
        match pool.get().await {
            Ok(client) => {
                if let Err(e) = keys.reload(&client).await {
                    tracing::warn!(error = %e, "reloading the keyring failed");
                }
            }
            Err(e) => tracing::warn!(error = %e, "reloading the keyring: no connection"),
        }
    }
}
