//! `/health`, `/ready` and `/metrics`.
//!
//! The public listener answers `/health` and a plain `/ready` (`{"status"}` and the status
//! code, for load balancers). What an operator needs beyond that (the relay's backlog and
//! errors, each projection's position, failed events with their stream ids and database
//! errors, and the Prometheus metrics) is on the operations listener, `ops.host:ops.port`
//! (loopback by default), which serves nothing else.

use std::time::Duration;

use actix_web::{web, HttpResponse};
use charter_log::{checkpoint, reader};
use charter_projections::failures;
use serde::Serialize;
use serde_json::json;

use crate::db;
use crate::http::docs::OpenApiDocument;
use crate::http::problem::Problem;
use crate::http::state::AppState;
use crate::relay;

/// The body of `/health`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    /// Always `ok`.
    #[schema(pattern = "^ok$")]
    pub status: &'static str,
}

/// Liveness
///
/// The process is up and serving. Never touches the database.
#[utoipa::path(
    get, path = "/health", tag = "operations", operation_id = "health",
    responses((status = 200, description = "Alive.", body = Health)),
)]
pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

/// How many recorded poison events `/ready` lists (newest first; the count covers them all).
const FAILED_EVENTS_LISTED: i64 = 20;

/// The public body of `/ready`: the status alone.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Ready {
    /// `ok`, `degraded` (the broker is unreachable or an event failed to project: commands
    /// still succeed) or `unavailable`.
    #[schema(pattern = "^(ok|degraded|unavailable)$")]
    pub status: String,
}

/// Readiness
///
/// The database answers and carries this binary's migrations. A broker outage degrades but
/// does not unready the service, because commands still succeed into the outbox. So does a
/// poison event a projection recorded in `failed_events` and skipped: reads still work, but
/// one of them is missing an event until someone deals with it. The details are on the
/// operations listener (`ops.port`), not here.
#[utoipa::path(
    get, path = "/ready", tag = "operations", operation_id = "ready",
    responses(
        (status = 200, description = "Ready (`status` is `ok` or `degraded`).", body = Ready),
        (status = 503,
            description = "Not ready: the database is unreachable or lacks this binary's migrations (or the request timed out: a problem).",
            content((Ready = "application/json"), (Problem = "application/problem+json"))),
    ),
)]
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let (ok, body) = readiness(&state).await;
    let status = Ready {
        status: body["status"].as_str().unwrap_or("unavailable").to_owned(),
    };
    if ok {
        HttpResponse::Ok().json(status)
    } else {
        HttpResponse::ServiceUnavailable().json(status)
    }
}

/// `/ready` on the operations listener: the status with every detail (README, Operations).
pub async fn ready_detail(state: web::Data<AppState>) -> HttpResponse {
    let (ok, body) = readiness(&state).await;
    if ok {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// Whether the service is ready, and the report of why.
async fn readiness(state: &AppState) -> (bool, serde_json::Value) {
    let relay = state.relay.snapshot();
    let probe = async {
        let client = state.pool.get().await.map_err(|e| e.to_string())?;
        let applied = db::applied_migration(&client)
            .await
            .map_err(|e| e.to_string())?;
        let (backlog, lag) = relay::backlog(&client).await.map_err(|e| e.to_string())?;
        let head = reader::head(&client).await.map_err(|e| e.to_string())?;
        let checkpoints = checkpoint::all(&client, checkpoint::LIVE_SCHEMA)
            .await
            .map_err(|e| e.to_string())?;
        let failed = failures::count(&client, checkpoint::LIVE_SCHEMA)
            .await
            .map_err(|e| e.to_string())?;
        let recent = failures::recent(&client, checkpoint::LIVE_SCHEMA, FAILED_EVENTS_LISTED)
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>((applied, backlog, lag, head, checkpoints, failed, recent))
    };
    let timeout = Duration::from_millis(state.config.database.connect_timeout_ms + 500);
    let result = tokio::time::timeout(timeout, probe)
        .await
        .unwrap_or_else(|_| Err("timed out".into()));
    let expected = db::latest_migration();
    let (status, body) = match result {
        Err(e) => (
            false,
            json!({"status": "unavailable", "database": {"ok": false, "error": e}, "relay": relay}),
        ),
        Ok((applied, backlog, lag, head, checkpoints, failed, recent)) => {
            // Newer migrations are fine: during a rolling deploy the old release keeps serving.
            let migrations_ok = applied >= expected;
            let projections: Vec<_> = checkpoints
                .iter()
                .map(|(name, at)| json!({"name": name, "position": at.to_string(), "caught_up": *at >= head}))
                .collect();
            // The entitlement index follows the log on its own: it is caught up when it has
            // applied the head the read models are compared with, and stale when it has not
            // reached the head of the log for longer than the consistency timeout (or three
            // polls, when polls are slower).
            let index_at = state.index.position();
            let since = state.index.since_caught_up();
            let p = &state.config.projections;
            let allowed = p.consistency_timeout_ms.max(3 * p.poll_interval_ms);
            let index_stale = since.is_none_or(|d| d.as_millis() as u64 > allowed);
            let index = json!({
                "position": index_at.to_string(),
                "caught_up": index_at >= head,
                "last_at_head_ms_ago": since.map(|d| d.as_millis() as u64),
            });
            let degraded = relay.state == "degraded" || failed > 0 || index_stale;
            (
                migrations_ok,
                json!({
                    "status": if !migrations_ok { "unavailable" } else if degraded { "degraded" } else { "ok" },
                    "database": {"ok": true},
                    "migrations": {"ok": migrations_ok, "applied": applied, "expected": expected},
                    "relay": {"enabled": state.config.relay.enabled, "backlog": backlog, "lag_seconds": lag, "detail": relay},
                    "projections": projections,
                    "index": index,
                    "failed_events_count": failed,
                    "failed_events": recent,
                }),
            )
        }
    };
    (status, body)
}

/// Prometheus metrics, on the operations listener. The outbox and failed-event gauges are
/// read from the database at scrape time, so they are right whichever instance is the relay
/// leader or hit the event.
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    if let Ok(client) = state.pool.get().await {
        if let Ok((backlog, lag)) = relay::backlog(&client).await {
            metrics::gauge!("charter_outbox_backlog").set(backlog as f64);
            metrics::gauge!("charter_relay_lag_seconds").set(lag);
        }
        if let Ok(failed) = failures::count(&client, checkpoint::LIVE_SCHEMA).await {
            metrics::gauge!("charter_projection_failed_events").set(failed as f64);
        }
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}

/// The routes of the operations listener.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/health", web::get().to(health))
        .route("/ready", web::get().to(ready_detail))
        .route("/metrics", web::get().to(metrics))
        .default_service(web::to(|| async {
            use actix_web::ResponseError;
            crate::http::problem::ApiError::NotFound("no such route".into()).error_response()
        }));
}

/// `GET /openapi.json`: this document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    operation_id = "getOpenApi",
    responses((status = 200, description = "This OpenAPI document.",
        content_type = "application/json", body = Object)),
)]
pub async fn openapi(document: web::Data<OpenApiDocument>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(document.0)
}
