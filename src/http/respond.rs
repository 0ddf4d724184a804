//! Rendering command outcomes and lists, and replaying stored responses.

use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use charter_log::checkpoint;
use charter_log::LogPosition;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::extract::command_request;
use super::problem::ApiError;
use super::state::AppState;
use crate::command::{self, CommandHandler, Outcome};
use crate::domain::tenant::{Tenant, TenantStatus};
use crate::domain::Aggregate;
use crate::store::idempotency::StoredResponse;
use charter_events::streams::tenant_stream;

/// `ETag` of a stream version.
pub fn etag(version: i64) -> String {
    format!("\"{version}\"")
}

/// The body of every command response.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CommandBody<T: Serialize> {
    /// The resource's state after the command.
    pub data: T,
    /// Ids of the events the command appended (empty when it changed nothing).
    pub events: Vec<Uuid>,
    /// Pass as `consistency=` to a query to read this command's effects.
    pub consistency_token: String,
}

/// Renders an outcome as `status` with the resource `view`; `location` for creations.
pub fn command<A, T: Serialize>(
    outcome: &Outcome<A>,
    status: StatusCode,
    view: T,
    location: Option<String>,
) -> StoredResponse {
    let body = CommandBody {
        data: view,
        events: outcome.event_ids.clone(),
        consistency_token: outcome.token.to_string(),
    };
    StoredResponse {
        status: status.as_u16(),
        etag: Some(etag(outcome.version)),
        location,
        body: serde_json::to_value(body).expect("views serialize"),
    }
}

impl From<StoredResponse> for HttpResponse {
    fn from(r: StoredResponse) -> Self {
        let mut response =
            HttpResponse::build(StatusCode::from_u16(r.status).unwrap_or(StatusCode::OK));
        if let Some(etag) = r.etag {
            response.insert_header((header::ETAG, etag));
        }
        if let Some(location) = r.location {
            response.insert_header((header::LOCATION, location));
        }
        response.json(r.body)
    }
}

/// Query parameters shared by the lists of a tenant's resources.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Page size (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub after: Option<Uuid>,
    /// A `consistency_token` from a command response: wait until the list includes it.
    pub consistency: Option<String>,
}

impl ListParams {
    pub fn limit(&self) -> Result<i64, ApiError> {
        limit(self.limit)
    }
}

/// A page size: 1-200, 50 when absent.
pub fn limit(requested: Option<i64>) -> Result<i64, ApiError> {
    match requested {
        None => Ok(50),
        Some(n @ 1..=200) => Ok(n),
        Some(_) => Err(ApiError::Malformed {
            slug: "invalid-query-parameter",
            detail: "limit must be between 1 and 200".into(),
        }),
    }
}

/// The longest free-text query parameter (a filter or a cursor) the API takes.
pub const MAX_QUERY_TEXT: usize = 200;

/// A free-text query parameter: at most [`MAX_QUERY_TEXT`] characters and no U+0000 (which
/// PostgreSQL cannot compare with), else a 400 naming it.
pub fn query_text<'a>(name: &str, value: Option<&'a str>) -> Result<Option<&'a str>, ApiError> {
    match value {
        Some(v) if v.contains('\0') => Err(ApiError::Malformed {
            slug: "invalid-query-parameter",
            detail: format!("{name} must not contain U+0000"),
        }),
        Some(v) if v.chars().count() > MAX_QUERY_TEXT => Err(ApiError::Malformed {
            slug: "invalid-query-parameter",
            detail: format!("{name} must be at most {MAX_QUERY_TEXT} characters"),
        }),
        v => Ok(v),
    }
}

/// One page of a list, in keyset order.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Page<T: Serialize> {
    pub items: Vec<T>,
    /// Pass as `after=` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<Uuid>,
}

impl<T: Serialize> Page<T> {
    pub fn new(items: Vec<T>, limit: i64, id: impl Fn(&T) -> Uuid) -> Self {
        let next_cursor = (items.len() as i64 == limit)
            .then(|| items.last().map(&id))
            .flatten();
        Page { items, next_cursor }
    }
}

/// A `consistency` parameter: a token a command returned, or 400.
fn parse_token(token: &str) -> Result<LogPosition, ApiError> {
    token.parse().map_err(|_| ApiError::Malformed {
        slug: "invalid-consistency-token",
        detail: "consistency must be a token returned by a command".into(),
    })
}

/// Waits until the read models include `token` (read-your-writes), or answers 503.
pub async fn wait_for_consistency(state: &AppState, token: Option<&str>) -> Result<(), ApiError> {
    let Some(token) = token else { return Ok(()) };
    let token = parse_token(token)?;
    let timeout = std::time::Duration::from_millis(state.config.projections.consistency_timeout_ms);
    let reached = checkpoint::wait_for(&state.pool, token, timeout)
        .await
        .map_err(|e| match e {
            checkpoint::WaitError::Pool(e) => ApiError::from(e),
            checkpoint::WaitError::Db(e) => ApiError::from(e),
        })?;
    if reached {
        Ok(())
    } else {
        Err(ApiError::Unavailable {
            slug: "consistency-timeout",
            detail: format!(
                "the read models did not reach the consistency token within {} ms",
                timeout.as_millis()
            ),
        })
    }
}

/// Waits until this instance's entitlement index includes `token` (read-your-writes for
/// the queries it answers), or answers 503.
pub async fn wait_for_index(state: &AppState, token: Option<&str>) -> Result<(), ApiError> {
    let Some(token) = token else { return Ok(()) };
    let token = parse_token(token)?;
    let timeout = std::time::Duration::from_millis(state.config.projections.consistency_timeout_ms);
    if state.index.wait_for(token, timeout).await {
        Ok(())
    } else {
        Err(ApiError::Unavailable {
            slug: "consistency-timeout",
            detail: format!(
                "the entitlement index did not reach the consistency token within {} ms",
                timeout.as_millis()
            ),
        })
    }
}

/// Runs a command and renders its outcome: `view` of the new state (`None` for an empty
/// stream) and, for a 201, a `Location` built by `location`.
pub async fn run_command<H, V>(
    state: &AppState,
    req: &actix_web::HttpRequest,
    handler: H,
    raw: &[u8],
    status: StatusCode,
    view: impl Fn(&Outcome<H::Aggregate>) -> Option<V>,
    location: impl Fn(&V) -> String,
) -> Result<HttpResponse, ApiError>
where
    H: CommandHandler,
    V: Serialize,
{
    let request = command_request(req, raw)?;
    let render = |outcome: &Outcome<H::Aggregate>| {
        let view = view(outcome);
        let location = (status == StatusCode::CREATED)
            .then(|| view.as_ref().map(&location))
            .flatten();
        command(outcome, status, view, location)
    };
    Ok(
        crate::command::execute(&state.writer, &handler, &request, render)
            .await?
            .into(),
    )
}

/// `GET` of one resource from the write side: 404 unless `visible` holds for its state and
/// its tenant exists; otherwise `view` with the stream version as `ETag`.
pub async fn get_current<A, V>(
    state: &AppState,
    tenant_id: Uuid,
    stream_id: &str,
    visible: impl Fn(&A) -> bool,
    view: impl Fn(&Outcome<A>) -> Option<V>,
    what: &str,
) -> Result<HttpResponse, ApiError>
where
    A: Aggregate,
    V: Serialize,
{
    let outcome = crate::command::current::<A>(&state.pool, stream_id).await?;
    if !visible(&outcome.state) || !tenant_exists(&state.pool, tenant_id).await? {
        return Err(ApiError::NotFound(format!("{what} not found")));
    }
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, etag(outcome.version)))
        .json(view(&outcome)))
}

/// A page of one tenant's resources from a read model: waits for `consistency`, answers 404
/// when the tenant does not exist, then runs `read` on a pooled connection.
pub async fn tenant_page<T, F, Fut>(
    state: &AppState,
    tenant_id: Uuid,
    consistency: Option<&str>,
    limit: i64,
    read: F,
    id: impl Fn(&T) -> Uuid,
) -> Result<HttpResponse, ApiError>
where
    T: Serialize,
    F: FnOnce(deadpool_postgres::Object) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<T>, tokio_postgres::Error>>,
{
    wait_for_consistency(state, consistency).await?;
    if !tenant_exists(&state.pool, tenant_id).await? {
        return Err(ApiError::NotFound(format!("tenant {tenant_id} not found")));
    }
    let items = read(state.pool.get().await?).await?;
    Ok(HttpResponse::Ok().json(Page::new(items, limit, id)))
}

/// `true` when the tenant exists and is not deleted (from the write side: never stale).
pub async fn tenant_exists(
    pool: &deadpool_postgres::Pool,
    tenant_id: Uuid,
) -> Result<bool, ApiError> {
    let current = command::current::<Tenant>(pool, &tenant_stream(tenant_id)).await?;
    Ok(current
        .state
        .0
        .is_some_and(|t| t.status != TenantStatus::Deleted))
}
