//! `GET /v1/audit/events`: the append-only log as auditors read it, filtered, in the stable
//! global order, with cursor pagination. Platform auditors see every tenant; a tenant's
//! auditor (`iam.audit.read`) sees that tenant and its descendants. Secrets kept in internal
//! events (hashes, sealed keys) are redacted.

use actix_web::{web, HttpResponse};
use charter_log::LogPosition;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::command::CommandError;
use crate::http::docs::{Forbidden, NotFound};
use crate::http::principal::Principal;
use crate::http::problem::ApiError;
use crate::http::respond;
use crate::http::state::AppState;
use crate::store::audit::{self, AuditFilter, AuditItem};

const PERMISSION: &str = "iam.audit.read";
const MAX_LIMIT: i64 = 1_000;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Only this tenant's events (one within the caller's reach).
    pub tenant_id: Option<Uuid>,
    /// Only this stream's, e.g. `user-0193…`.
    #[param(max_length = 200)]
    pub stream_id: Option<String>,
    /// Only this stream type's, e.g. `user`.
    #[param(max_length = 200)]
    pub stream_type: Option<String>,
    /// Only this event type, e.g. `user.created`.
    #[param(max_length = 200)]
    pub event_type: Option<String>,
    /// Only this actor's, e.g. `user:0193…`.
    #[param(max_length = 200)]
    pub actor: Option<String>,
    pub correlation_id: Option<Uuid>,
    /// Inclusive lower bound of `recorded_at` (RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Exclusive upper bound of `recorded_at`.
    pub to: Option<DateTime<Utc>>,
    /// The `next_cursor` of the previous page.
    pub after: Option<String>,
    /// Page size (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

/// One page of the log, in the global order.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditPage {
    pub items: Vec<AuditItem>,
    /// Pass as `after=` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

fn bad_query(detail: &str) -> ApiError {
    ApiError::Malformed {
        slug: "invalid-query-parameter",
        detail: detail.to_owned(),
    }
}

/// The tenants the caller may read, narrowed to `tenant_id` when given (`None`: all).
async fn visible_tenants(
    state: &AppState,
    principal: &Principal,
    tenant_id: Option<Uuid>,
) -> Result<Option<Vec<Uuid>>, ApiError> {
    if principal.claims().has_platform_permission(PERMISSION) {
        return Ok(tenant_id.map(|t| vec![t]));
    }
    let own = principal.claims().tenant_id;
    principal.require(state, own, PERMISSION, false).await?;
    let client = state.pool.get().await?;
    let reach = crate::store::hierarchy::subtree(&client, own)
        .await
        .map_err(CommandError::from)?;
    match tenant_id {
        None => Ok(Some(reach)),
        Some(t) if reach.contains(&t) => Ok(Some(vec![t])),
        Some(t) => Err(ApiError::NotFound(format!("tenant {t} not found"))),
    }
}

/// Read the event log
///
/// Filtered, in the stable global order, with secrets `"[REDACTED]"`. Needs `iam.audit.read`:
/// platform-wide for every tenant, or in the caller's tenant for it and its descendants.
#[utoipa::path(
    get, path = "/v1/audit/events", tag = "audit", operation_id = "listAuditEvents",
    params(AuditParams),
    responses(
        (status = 200, description = "A page of events.", body = AuditPage),
        Forbidden, NotFound,
    ),
)]
#[tracing::instrument(skip_all)]
pub async fn events(
    state: web::Data<AppState>,
    principal: Principal,
    params: web::Query<AuditParams>,
) -> Result<HttpResponse, ApiError> {
    let p = params.into_inner();
    let limit = match p.limit {
        None => 100,
        Some(n @ 1..=MAX_LIMIT) => n,
        Some(_) => return Err(bad_query("limit must be between 1 and 1000")),
    };
    let after = match p.after.as_deref() {
        None => LogPosition::START,
        Some(cursor) => cursor
            .parse()
            .map_err(|_| bad_query("after must be a next_cursor returned by this endpoint"))?,
    };
    for (name, value) in [
        ("stream_id", &p.stream_id),
        ("stream_type", &p.stream_type),
        ("event_type", &p.event_type),
        ("actor", &p.actor),
    ] {
        respond::query_text(name, value.as_deref())?;
    }
    let filter = AuditFilter {
        tenants: visible_tenants(&state, &principal, p.tenant_id).await?,
        stream_id: p.stream_id,
        stream_type: p.stream_type,
        event_type: p.event_type,
        actor: p.actor,
        correlation_id: p.correlation_id,
        from: p.from,
        to: p.to,
    };
    let client = state.pool.get().await?;
    let events = audit::query(&client, &filter, after, limit)
        .await
        .map_err(CommandError::from)?;
    let items: Vec<AuditItem> = events.into_iter().map(AuditItem::from).collect();
    let next_cursor = (items.len() as i64 == limit)
        .then(|| items.last().map(|i| i.position.clone()))
        .flatten();
    Ok(HttpResponse::Ok().json(AuditPage { items, next_cursor }))
}

/// The head of the hash chain
///
/// The newest seal of the hash chain (404 before the first event is sealed). Write it down;
/// `charter audit verify` later proves the log was only appended to.
#[utoipa::path(
    get, path = "/v1/audit/head", tag = "audit", operation_id = "getAuditHead",
    responses(
        (status = 200, description = "The newest seal.",
            body = charter_projections::audit_chain::Head),
        Forbidden, NotFound,
    ),
)]
#[tracing::instrument(skip_all)]
pub async fn head(
    state: web::Data<AppState>,
    principal: Principal,
) -> Result<HttpResponse, ApiError> {
    visible_tenants(&state, &principal, None).await?;
    let client = state.pool.get().await?;
    match charter_projections::audit_chain::head(&client).await? {
        Some(head) => Ok(HttpResponse::Ok().json(head)),
        None => Err(ApiError::NotFound("nothing is sealed yet".into())),
    }
}
