//! `/v1/tenants/{tenant_id}/groups`: groups and their members.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use charter_projections::groups as read;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::extract::{validated, JsonBody};
use super::problem::ApiError;
use super::respond::{self, ListParams};
use super::AppState;
use crate::command::group::{group_stream, GroupHandler, GroupRequest};
use crate::command::Outcome;
use crate::domain::group::Group;
use crate::domain::validate;

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GroupBody {
    pub name: String,
}

/// A group with its members, from the write side.
#[derive(Serialize)]
pub struct GroupView {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    pub members: Vec<Uuid>,
    pub version: i64,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

fn view(outcome: &Outcome<Group>) -> Option<GroupView> {
    let g = outcome.state.0.as_ref()?;
    Some(GroupView {
        id: g.id,
        tenant_id: g.tenant_id,
        name: g.name.clone(),
        members: g.members.iter().copied().collect(),
        version: outcome.version,
        created_at: outcome.created_at.unwrap_or_default(),
        updated_at: outcome.updated_at.unwrap_or_default(),
    })
}

async fn run(
    state: &AppState,
    req: &HttpRequest,
    handler: GroupHandler,
    raw: &[u8],
    status: StatusCode,
) -> Result<HttpResponse, ApiError> {
    respond::run_command(state, req, handler, raw, status, view, |v| {
        format!("/v1/tenants/{}/groups/{}", v.tenant_id, v.id)
    })
    .await
}

#[tracing::instrument(skip_all, fields(tenant_id = %path))]
pub async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<Uuid>,
    body: JsonBody<GroupBody>,
) -> Result<HttpResponse, ApiError> {
    let name = validated(|e| validate::name("name", &body.value.name, e))?;
    let handler = GroupHandler {
        tenant_id: *path,
        group_id: Uuid::now_v7(),
        request: GroupRequest::Create { name },
    };
    run(&state, &req, handler, &body.raw, StatusCode::CREATED).await
}

#[tracing::instrument(skip_all, fields(tenant_id = %path.0, group_id = %path.1))]
pub async fn delete(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (tenant_id, group_id) = path.into_inner();
    let handler = GroupHandler {
        tenant_id,
        group_id,
        request: GroupRequest::Delete,
    };
    run(&state, &req, handler, b"", StatusCode::OK).await
}

#[tracing::instrument(skip_all, fields(tenant_id = %path.0, group_id = %path.1, user_id = %path.2))]
pub async fn add_member(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(Uuid, Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (tenant_id, group_id, user_id) = path.into_inner();
    let handler = GroupHandler {
        tenant_id,
        group_id,
        request: GroupRequest::AddMember { user_id },
    };
    run(&state, &req, handler, b"", StatusCode::OK).await
}

#[tracing::instrument(skip_all, fields(tenant_id = %path.0, group_id = %path.1, user_id = %path.2))]
pub async fn remove_member(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(Uuid, Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (tenant_id, group_id, user_id) = path.into_inner();
    let handler = GroupHandler {
        tenant_id,
        group_id,
        request: GroupRequest::RemoveMember { user_id },
    };
    run(&state, &req, handler, b"", StatusCode::OK).await
}

#[tracing::instrument(skip_all, fields(tenant_id = %path.0, group_id = %path.1))]
pub async fn get(
    state: web::Data<AppState>,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (tenant_id, group_id) = path.into_inner();
    respond::get_current::<Group, _>(
        &state,
        tenant_id,
        &group_stream(group_id),
        |s| {
            s.0.as_ref()
                .is_some_and(|g| g.tenant_id == tenant_id && !g.deleted)
        },
        view,
        &format!("group {group_id}"),
    )
    .await
}

#[tracing::instrument(skip_all, fields(tenant_id = %path))]
pub async fn list(
    state: web::Data<AppState>,
    path: web::Path<Uuid>,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let limit = params.limit()?;
    params.reject_parent_id()?;
    let tenant_id = *path;
    let after = params.after;
    respond::tenant_page(
        &state,
        tenant_id,
        params.consistency.as_deref(),
        limit,
        |client| async move { read::list(&client, tenant_id, after, limit).await },
        |g| g.id,
    )
    .await
}

/// The routes under `/v1/tenants/{tenant_id}/groups`.
pub fn routes() -> actix_web::Scope {
    web::scope("/{tenant_id}/groups")
        .route("", web::post().to(create))
        .route("", web::get().to(list))
        .route("/{group_id}", web::get().to(get))
        .route("/{group_id}", web::delete().to(delete))
        .route("/{group_id}/members/{user_id}", web::put().to(add_member))
        .route(
            "/{group_id}/members/{user_id}",
            web::delete().to(remove_member),
        )
}
