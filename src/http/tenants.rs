//! `/v1/tenants`: tenant commands and queries.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use charter_projections::tenants::{self as directory, ListTenants, TenantRow};
use serde::{Deserialize, Deserializer, Serialize};
use uuid::Uuid;

use super::extract::{command_request, validated, JsonBody, OptionalJsonBody};
use super::principal::Principal;
use super::problem::ApiError;

const READ: &str = "iam.tenants.read";
const WRITE: &str = "iam.tenants.write";
use super::respond::{self, etag, ListParams, Page};
use super::AppState;
use crate::command::tenant::{tenant_stream, ChangeTenantStatus, CreateTenant, UpdateTenant};
use crate::command::{self, Outcome};
use crate::domain::tenant::{Tenant, TenantCommand, TenantStatus};
use crate::domain::validate::{self, FieldError};

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTenantBody {
    pub name: String,
    pub slug: String,
    #[serde(default)]
    pub parent_id: Option<Uuid>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateTenantBody {
    #[serde(default)]
    pub name: Option<String>,
    /// Absent: unchanged. `null`: move to the root. An id: move below that tenant.
    #[serde(default, deserialize_with = "present")]
    pub parent_id: Option<Option<Uuid>>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BlockBody {
    #[serde(default)]
    pub reason: Option<String>,
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

#[tracing::instrument(skip_all, fields(tenant_id = %path))]
pub async fn unblock(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    change_status(&state, &req, *path, TenantCommand::Unblock, b"").await
}

#[tracing::instrument(skip_all, fields(tenant_id = %path))]
pub async fn delete(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    change_status(&state, &req, *path, TenantCommand::Delete, b"").await
}

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

#[tracing::instrument(skip_all)]
pub async fn list(
    state: web::Data<AppState>,
    principal: Principal,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let limit = params.limit()?;
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

/// `true` when the tenant exists and is not deleted (from the write side: never stale).
pub async fn exists(pool: &deadpool_postgres::Pool, tenant_id: Uuid) -> Result<bool, ApiError> {
    let current = command::current::<Tenant>(pool, &tenant_stream(tenant_id)).await?;
    Ok(current
        .state
        .0
        .is_some_and(|t| t.status != TenantStatus::Deleted))
}
