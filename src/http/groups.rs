//! `/v1/tenants/{tenant_id}/groups`: groups and their members.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use charter_events::streams::group_stream;
use charter_projections::groups as read;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::extract::{validated, CommandHeaders, JsonBody};
use super::openapi::{CommandRefusals, NotFound};
use super::principal::Principal;
use super::problem::ApiError;
use super::respond::{self, CommandBody, ListParams, Page};
use super::AppState;
use crate::command::group::{GroupHandler, GroupRequest};
use crate::command::Outcome;
use crate::domain::group::Group;
use crate::domain::validate;

#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupBody {
    /// Trimmed, 1-200 characters, no control characters; unique in the tenant.
    #[schema(max_length = 200)]
    pub name: String,
}

/// A group with its members, from the write side.
#[derive(Serialize, utoipa::ToSchema)]
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

/// Create a group
#[utoipa::path(
    post, path = "/v1/tenants/{tenant_id}/groups", tag = "groups", operation_id = "createGroup",
    params(CommandHeaders),
    request_body = GroupBody,
    responses(
        (status = 201, description = "The group was created.", body = CommandBody<GroupView>,
            headers(("ETag" = String, description = "The stream version"), ("Location" = String))),
        CommandRefusals,
    ),
)]
#[tracing::instrument(skip_all, fields(tenant_id = %path))]
pub async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    principal: Principal,
    path: web::Path<Uuid>,
    body: JsonBody<GroupBody>,
) -> Result<HttpResponse, ApiError> {
    let name = validated(|e| validate::name("name", &body.value.name, e))?;
    let handler = GroupHandler {
        tenant_id: *path,
        group_id: Uuid::now_v7(),
        authority: principal.authority(),
        request: GroupRequest::Create { name },
    };
    run(&state, &req, handler, &body.raw, StatusCode::CREATED).await
}

/// Delete a group
#[utoipa::path(
    delete, path = "/v1/tenants/{tenant_id}/groups/{group_id}", tag = "groups",
        operation_id = "deleteGroup",
    params(CommandHeaders),
    responses(
        (status = 200, description = "The deleted group.", body = CommandBody<GroupView>,
            headers(("ETag" = String, description = "The stream version"))),
        CommandRefusals,
    ),
)]
#[tracing::instrument(skip_all, fields(tenant_id = %path.0, group_id = %path.1))]
pub async fn delete(
    state: web::Data<AppState>,
    req: HttpRequest,
    principal: Principal,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (tenant_id, group_id) = path.into_inner();
    let handler = GroupHandler {
        tenant_id,
        group_id,
        authority: principal.authority(),
        request: GroupRequest::Delete,
    };
    run(&state, &req, handler, b"", StatusCode::OK).await
}

/// Add a member
///
/// A live user of the same tenant.
#[utoipa::path(
    put, path = "/v1/tenants/{tenant_id}/groups/{group_id}/members/{user_id}", tag = "groups",
        operation_id = "addGroupMember",
    params(CommandHeaders),
    responses(
        (status = 200, description = "The group after the change (idempotent).",
            body = CommandBody<GroupView>,
            headers(("ETag" = String, description = "The stream version"))),
        CommandRefusals,
    ),
)]
#[tracing::instrument(skip_all, fields(tenant_id = %path.0, group_id = %path.1, user_id = %path.2))]
pub async fn add_member(
    state: web::Data<AppState>,
    req: HttpRequest,
    principal: Principal,
    path: web::Path<(Uuid, Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (tenant_id, group_id, user_id) = path.into_inner();
    let handler = GroupHandler {
        tenant_id,
        group_id,
        authority: principal.authority(),
        request: GroupRequest::AddMember { user_id },
    };
    run(&state, &req, handler, b"", StatusCode::OK).await
}

/// Remove a member
#[utoipa::path(
    delete, path = "/v1/tenants/{tenant_id}/groups/{group_id}/members/{user_id}", tag = "groups",
        operation_id = "removeGroupMember",
    params(CommandHeaders),
    responses(
        (status = 200, description = "The group after the change.", body = CommandBody<GroupView>,
            headers(("ETag" = String, description = "The stream version"))),
        CommandRefusals,
    ),
)]
#[tracing::instrument(skip_all, fields(tenant_id = %path.0, group_id = %path.1, user_id = %path.2))]
pub async fn remove_member(
    state: web::Data<AppState>,
    req: HttpRequest,
    principal: Principal,
    path: web::Path<(Uuid, Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (tenant_id, group_id, user_id) = path.into_inner();
    let handler = GroupHandler {
        tenant_id,
        group_id,
        authority: principal.authority(),
        request: GroupRequest::RemoveMember { user_id },
    };
    run(&state, &req, handler, b"", StatusCode::OK).await
}

/// Read a group
#[utoipa::path(
    get, path = "/v1/tenants/{tenant_id}/groups/{group_id}", tag = "groups",
        operation_id = "getGroup",
    responses(
        (status = 200, description = "The group with its members, from the write side.",
            body = GroupView,
            headers(("ETag" = String, description = "The stream version"))),
        NotFound,
    ),
)]
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

/// List groups
#[utoipa::path(
    get, path = "/v1/tenants/{tenant_id}/groups", tag = "groups", operation_id = "listGroups",
    params(ListParams),
    responses(
        (status = 200, description = "A page of live groups with their member counts.",
            body = Page<charter_projections::groups::GroupRow>),
        NotFound,
    ),
)]
#[tracing::instrument(skip_all, fields(tenant_id = %path))]
pub async fn list(
    state: web::Data<AppState>,
    path: web::Path<Uuid>,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let limit = params.limit()?;
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
