//! `/v1/tenants`: tenant commands and queries.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use charter_events::streams::tenant_stream;
use charter_projections::tenants::{self as directory, ListTenants, TenantRow};
use serde::{Deserialize, Deserializer, Serialize};
use uuid::Uuid;

use crate::http::docs::{CommandRefusals, Forbidden, NotFound};
use crate::http::extract::{
    command_request, validated, CommandHeaders, JsonBody, OptionalJsonBody,
};
use crate::http::principal::Principal;
use crate::http::problem::ApiError;

const READ: &str = "iam.tenants.read";
const WRITE: &str = "iam.tenants.write";
use crate::command::tenant::{ChangeTenantStatus, CreateTenant, UpdateTenant};
use crate::command::{self, Outcome};
use crate::domain::tenant::{Tenant, TenantCommand, TenantStatus};
use crate::domain::validate::{self, FieldError};
use crate::http::respond::{self, etag, CommandBody, Page};
use crate::http::state::AppState;

#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenantBody {
    /// Trimmed, 1-200 characters, no control characters.
    #[schema(max_length = 200)]
    pub name: String,
    /// Unique among all tenants, deleted ones included.
    #[schema(pattern = "^[a-z][a-z0-9-]{0,61}[a-z0-9]$")]
    pub slug: String,
    /// Create a child of this tenant (absent: a root tenant, which needs a platform grant).
    #[serde(default)]
    pub parent_id: Option<Uuid>,
}

/// Give `name`, `parent_id`, or both.
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTenantBody {
    /// Trimmed, 1-200 characters, no control characters.
    #[serde(default)]
    #[schema(max_length = 200)]
    pub name: Option<String>,
    /// Absent: unchanged. `null`: move to the root. An id: move below that tenant.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Uuid>)]
    pub parent_id: Option<Option<Uuid>>,
}

#[derive(Debug, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BlockBody {
    /// At most 1,000 characters once trimmed.
    #[serde(default)]
    #[schema(max_length = 1000)]
    pub reason: Option<String>,
}

/// The query of `GET /v1/tenants`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TenantListParams {
    /// Only the children of this tenant.
    pub parent_id: Option<Uuid>,
    /// Page size (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub after: Option<Uuid>,
    /// A `consistency_token` from a command response: wait until the list includes it.
    pub consistency: Option<String>,
}

/// Distinguishes an explicit `null` (`Some(None)`) from an absent field (`None`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

fn status_name(status: TenantStatus) -> &'static str {
    match status {
        TenantStatus::Active => "active",
        TenantStatus::Blocked => "blocked",
        TenantStatus::Deleted => "deleted",
    }
}

/// The API representation of a tenant, from the write side.
fn view(outcome: &Outcome<Tenant>) -> Option<TenantRow> {
    let t = outcome.state.0.as_ref()?;
    Some(TenantRow {
        id: t.id,
        name: t.name.clone(),
        slug: t.slug.clone(),
        parent_id: t.parent_id,
        status: status_name(t.status).into(),
        blocked_reason: t.blocked_reason.clone(),
        version: outcome.version,
        created_at: outcome.created_at.unwrap_or_default(),
        updated_at: outcome.updated_at.unwrap_or_default(),
    })
}

fn render(
    status: StatusCode,
) -> impl Fn(&Outcome<Tenant>) -> crate::store::idempotency::StoredResponse {
    move |outcome| {
        let location = (status == StatusCode::CREATED)
            .then(|| view(outcome).map(|t| format!("/v1/tenants/{}", t.id)))
            .flatten();
        respond::command(outcome, status, view(outcome), location)
    }
}

/// Create a tenant
///
/// A root tenant needs a platform-wide `iam.tenants.write`; a child tenant needs it in the
/// parent or above. The tenant is seeded with the system roles `tenant_admin`, `auditor` and
/// `viewer` (four events in all).
#[utoipa::path(
    post, path = "/v1/tenants", tag = "tenants", operation_id = "createTenant",
    params(CommandHeaders),
    request_body = CreateTenantBody,
    responses(
        (status = 201, description = "The tenant was created.", body = CommandBody<TenantRow>,
            headers(("ETag" = String, description = "The stream version"), ("Location" = String))),
        CommandRefusals, Forbidden,
    ),
)]
#[tracing::instrument(skip_all)]
pub async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    principal: Principal,
    body: JsonBody<CreateTenantBody>,
) -> Result<HttpResponse, ApiError> {
    // A root tenant is the platform's business; a child tenant its parent's.
    match body.value.parent_id {
        Some(parent) => principal.require(&state, parent, WRITE, false).await?,
        None => principal.require_platform(WRITE)?,
    }
    let (name, slug) = validated(|e| {
        (
            validate::name("name", &body.value.name, e),
            validate::slug("slug", &body.value.slug, e),
        )
    })?;
    let handler = CreateTenant {
        tenant_id: Uuid::now_v7(),
        name,
        slug,
        parent_id: body.value.parent_id,
    };
    let request = command_request(&req, &body.raw)?;
    let response = command::execute(
        &state.writer,
        &handler,
        &request,
        render(StatusCode::CREATED),
    )
    .await?;
    Ok(response.into())
}

/// Rename or move a tenant
///
/// Moving also needs `iam.tenants.write` on the new parent (the root: platform-wide).
#[utoipa::path(
    patch, path = "/v1/tenants/{tenant_id}", tag = "tenants", operation_id = "updateTenant",
    params(CommandHeaders),
    request_body = UpdateTenantBody,
    responses(
        (status = 200, description = "The tenant after the change.", body = CommandBody<TenantRow>,
            headers(("ETag" = String, description = "The stream version"))),
        CommandRefusals,
    ),
)]
#[tracing::instrument(skip_all, fields(tenant_id = %path))]
pub async fn update(
    state: web::Data<AppState>,
    req: HttpRequest,
    principal: Principal,
    path: web::Path<Uuid>,
    body: JsonBody<UpdateTenantBody>,
) -> Result<HttpResponse, ApiError> {
    // Moving a tenant also needs the right to manage its new parent (the root: the platform).
    match body.value.parent_id {
        Some(Some(parent)) => principal.require(&state, parent, WRITE, false).await?,
        Some(None) => principal.require_platform(WRITE)?,
        None => {}
    }
    let mut errors = Vec::new();
    let name = body
        .value
        .name
        .as_deref()
        .map(|n| validate::name("name", n, &mut errors));
    if name.is_none() && body.value.parent_id.is_none() {
        errors.push(FieldError::new(
            "",
            "nothing to change: give name and/or parent_id",
        ));
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let handler = UpdateTenant {
        tenant_id: *path,
        name,
        parent_id: body.value.parent_id,
    };
    let request = command_request(&req, &body.raw)?;
    let response =
        command::execute(&state.writer, &handler, &request, render(StatusCode::OK)).await?;
    Ok(response.into())
}

async fn change_status(
    state: &AppState,
    req: &HttpRequest,
    tenant_id: Uuid,
    command: TenantCommand,
    raw: &[u8],
) -> Result<HttpResponse, ApiError> {
    let handler = ChangeTenantStatus { tenant_id, command };
    let request = command_request(req, raw)?;
    let response =
        command::execute(&state.writer, &handler, &request, render(StatusCode::OK)).await?;
    Ok(response.into())
}

/// Block a tenant
///
/// Nothing inside a blocked tenant can change, and its principals' tokens stop working. The
/// body is optional.
#[utoipa::path(
    post, path = "/v1/tenants/{tenant_id}/block", tag = "tenants", operation_id = "blockTenant",
    params(CommandHeaders),
    request_body(content = Option<BlockBody>, description = "Optional."),
    responses(
        (status = 200, description = "The tenant after the change.", body = CommandBody<TenantRow>,
            headers(("ETag" = String, description = "The stream version"))),
        CommandRefusals,
    ),
)]
#[tracing::instrument(skip_all, fields(tenant_id = %path))]
pub async fn block(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<Uuid>,
    body: OptionalJsonBody<BlockBody>,
) -> Result<HttpResponse, ApiError> {
    let (reason, raw) = match &body.0 {
        Some(b) => (b.value.reason.as_deref(), b.raw.as_ref()),
        None => (None, &b""[..]),
    };
    let reason = validated(|e| validate::reason("reason", reason, e))?;
    change_status(&state, &req, *path, TenantCommand::Block { reason }, raw).await
}

/// Unblock a tenant
#[utoipa::path(
    post, path = "/v1/tenants/{tenant_id}/unblock", tag = "tenants", operation_id = "unblockTenant",
    params(CommandHeaders),
    responses(
        (status = 200, description = "The tenant after the change.", body = CommandBody<TenantRow>,
            headers(("ETag" = String, description = "The stream version"))),
        CommandRefusals,
    ),
)]
#[tracing::instrument(skip_all, fields(tenant_id = %path))]
pub async fn unblock(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    change_status(&state, &req, *path, TenantCommand::Unblock, b"").await
}

/// Delete a tenant
///
/// A soft delete: the slug stays reserved.
#[utoipa::path(
    delete, path = "/v1/tenants/{tenant_id}", tag = "tenants", operation_id = "deleteTenant",
    params(CommandHeaders),
    responses(
        (status = 200, description = "The deleted tenant.", body = CommandBody<TenantRow>,
            headers(("ETag" = String, description = "The stream version"))),
        CommandRefusals,
    ),
)]
#[tracing::instrument(skip_all, fields(tenant_id = %path))]
pub async fn delete(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    change_status(&state, &req, *path, TenantCommand::Delete, b"").await
}

/// Read a tenant
#[utoipa::path(
    get, path = "/v1/tenants/{tenant_id}", tag = "tenants", operation_id = "getTenant",
    responses(
        (status = 200, description = "The tenant, from the write side (always current).",
            body = TenantRow, headers(("ETag" = String, description = "The stream version"))),
        NotFound,
    ),
)]
#[tracing::instrument(skip_all, fields(tenant_id = %path))]
pub async fn get(
    state: web::Data<AppState>,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let outcome = command::current::<Tenant>(&state.pool, &tenant_stream(*path)).await?;
    match view(&outcome) {
        Some(t) if t.status != "deleted" => Ok(HttpResponse::Ok()
            .insert_header((actix_web::http::header::ETAG, etag(t.version)))
            .json(t)),
        _ => Err(ApiError::NotFound(format!("tenant {} not found", *path))),
    }
}

/// List tenants
///
/// Platform readers see every tenant; anyone else their own tenant and its descendants.
#[utoipa::path(
    get, path = "/v1/tenants", tag = "tenants", operation_id = "listTenants",
    params(TenantListParams),
    responses(
        (status = 200, description = "A page of live tenants.", body = Page<TenantRow>),
        Forbidden,
    ),
)]
#[tracing::instrument(skip_all)]
pub async fn list(
    state: web::Data<AppState>,
    principal: Principal,
    params: web::Query<TenantListParams>,
) -> Result<HttpResponse, ApiError> {
    let limit = respond::limit(params.limit)?;
    // Platform readers see every tenant; anyone else their own tenant and its descendants.
    let within = if principal.claims().has_platform_permission(READ) {
        None
    } else {
        let own = principal.claims().tenant_id;
        principal.require(&state, own, READ, false).await?;
        Some(own)
    };
    respond::wait_for_consistency(&state, params.consistency.as_deref()).await?;
    let client = state.pool.get().await?;
    let items = directory::list(
        &client,
        &ListTenants {
            parent_id: params.parent_id,
            within,
            after: params.after,
            limit,
        },
    )
    .await?;
    Ok(HttpResponse::Ok().json(Page::new(items, limit, |t| t.id)))
}

/// A tenant as `GET /v1/tenants/{id}` shows it, from the write side; `None` if deleted.
pub async fn view_of(state: &AppState, tenant_id: Uuid) -> Result<Option<TenantRow>, ApiError> {
    let current = command::current::<Tenant>(&state.pool, &tenant_stream(tenant_id)).await?;
    Ok(view(&current).filter(|t| t.status != "deleted"))
}
