//! `/v1/tenants/{tenant_id}/groups`: groups and their members.

use crate::command::group::{GroupHandler, GroupRequest};
use crate::command::Outcome;
use crate::domain::group::Group;
use crate::domain::validate;
use crate::http::docs::{CommandRefusals, NotFound};
use crate::http::extract::{validated, CommandHeaders, JsonBody};
use crate::http::principal::Principal;
use crate::http::problem::ApiError;
use crate::http::respond::{self, CommandBody, ListParams, Page};
use crate::http::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use charter_events::streams::group_stream;
use charter_projections::groups::{self as read, GroupRow};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

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

super::reads::tenant_reads! {
    tag = "groups", id = group_id, noun = "group",
    get {
        /// Read a group
        path = "/v1/tenants/{tenant_id}/groups/{group_id}", operation_id = "getGroup",
        description = "The group with its members, from the write side.",
        body = GroupView, aggregate = Group, stream = group_stream,
        live = |s, tenant_id| s.0.as_ref().is_some_and(|g| g.tenant_id == tenant_id && !g.deleted),
    }
    list {
        /// List groups
        path = "/v1/tenants/{tenant_id}/groups", operation_id = "listGroups",
        description = "A page of live groups with their member counts.", row = GroupRow,
        read = read::list,
    }
}
