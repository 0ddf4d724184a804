//! `/v1/tenants/{tenant_id}/roles`: roles and their permissions.

use std::collections::BTreeSet;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use charter_events::streams::role_stream;
use charter_projections::roles::{self as read, RoleRow};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::command::role::{RoleHandler, RoleRequest};
use crate::command::Outcome;
use crate::domain::role::Role;
use crate::domain::validate::{self, FieldError};
use crate::http::docs::{CommandRefusals, NotFound, PermissionName};
use crate::http::extract::{validated, CommandHeaders, JsonBody};
use crate::http::principal::Principal;
use crate::http::problem::ApiError;
use crate::http::respond::{self, CommandBody, Page};
use crate::http::state::AppState;

/// At most this many permissions in one request.
const MAX_PERMISSIONS: usize = 500;

#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRoleBody {
    /// Trimmed, 1-200 characters, no control characters; unique in its scope.
    #[schema(max_length = 200)]
    pub name: String,
    /// Registered permission names, e.g. `iam.users.read` (at most 500).
    #[serde(default)]
    #[schema(inline, value_type = Vec<PermissionName>, max_items = 500)]
    pub permissions: Vec<String>,
    /// A role of one workspace of the tenant (absent: tenant-wide).
    #[serde(default)]
    pub workspace_id: Option<Uuid>,
}

#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenameRoleBody {
    /// Trimmed, 1-200 characters, no control characters; unique in its scope.
    #[schema(max_length = 200)]
    pub name: String,
}

#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PermissionsBody {
    /// Registered permission names (1-500).
    #[schema(inline, value_type = Vec<PermissionName>, min_items = 1, max_items = 500)]
    pub permissions: Vec<String>,
}

fn permission_set(names: &[String], errors: &mut Vec<FieldError>) -> BTreeSet<String> {
    if names.len() > MAX_PERMISSIONS {
        errors.push(FieldError::new(
            "permissions",
            format!("at most {MAX_PERMISSIONS} permissions"),
        ));
    }
    names
        .iter()
        .enumerate()
        .map(|(i, n)| validate::permission_name(&format!("permissions[{i}]"), n, errors))
        .collect()
}

fn view(outcome: &Outcome<Role>) -> Option<RoleRow> {
    let r = outcome.state.0.as_ref()?;
    Some(RoleRow {
        id: r.id,
        tenant_id: r.tenant_id,
        workspace_id: r.workspace_id,
        name: r.name.clone(),
        permissions: r.permissions.iter().cloned().collect(),
        template: r.template.clone(),
        version: outcome.version,
        created_at: outcome.created_at.unwrap_or_default(),
        updated_at: outcome.updated_at.unwrap_or_default(),
    })
}

async fn run(
    state: &AppState,
    req: &HttpRequest,
    handler: RoleHandler,
    raw: &[u8],
    status: StatusCode,
) -> Result<HttpResponse, ApiError> {
    respond::run_command(state, req, handler, raw, status, view, |v| {
        format!("/v1/tenants/{}/roles/{}", v.tenant_id, v.id)
    })
    .await
}

/// Create a role
///
/// For the tenant, or for one of its workspaces. Every permission must be registered.
#[utoipa::path(
    post, path = "/v1/tenants/{tenant_id}/roles", tag = "roles", operation_id = "createRole",
    params(CommandHeaders),
    request_body = CreateRoleBody,
    responses(
        (status = 201, description = "The role was created.", body = CommandBody<RoleRow>,
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
    body: JsonBody<CreateRoleBody>,
) -> Result<HttpResponse, ApiError> {
    let b = &body.value;
    let (name, permissions) = validated(|e| {
        (
            validate::name("name", &b.name, e),
            permission_set(&b.permissions, e),
        )
    })?;
    let handler = RoleHandler {
        tenant_id: *path,
        role_id: Uuid::now_v7(),
        authority: principal.authority(),
        request: RoleRequest::Create {
            name,
            permissions,
            workspace_id: b.workspace_id,
        },
    };
    run(&state, &req, handler, &body.raw, StatusCode::CREATED).await
}

/// Rename a role
#[utoipa::path(
    patch, path = "/v1/tenants/{tenant_id}/roles/{role_id}", tag = "roles",
        operation_id = "renameRole",
    params(CommandHeaders),
    request_body = RenameRoleBody,
    responses(
        (status = 200, description = "The role after the change.", body = CommandBody<RoleRow>,
            headers(("ETag" = String, description = "The stream version"))),
        CommandRefusals,
    ),
)]
#[tracing::instrument(skip_all, fields(tenant_id = %path.0, role_id = %path.1))]
pub async fn rename(
    state: web::Data<AppState>,
    req: HttpRequest,
    principal: Principal,
    path: web::Path<(Uuid, Uuid)>,
    body: JsonBody<RenameRoleBody>,
) -> Result<HttpResponse, ApiError> {
    let (tenant_id, role_id) = path.into_inner();
    let name = validated(|e| validate::name("name", &body.value.name, e))?;
    let handler = RoleHandler {
        tenant_id,
        role_id,
        authority: principal.authority(),
        request: RoleRequest::Rename { name },
    };
    run(&state, &req, handler, &body.raw, StatusCode::OK).await
}

/// Grant permissions to a role
#[utoipa::path(
    post, path = "/v1/tenants/{tenant_id}/roles/{role_id}/permissions", tag = "roles",
        operation_id = "grantRolePermissions",
    params(CommandHeaders),
    request_body = PermissionsBody,
    responses(
        (status = 200,
            description = "The role after the change (only new permissions append an event).",
            body = CommandBody<RoleRow>,
            headers(("ETag" = String, description = "The stream version"))),
        CommandRefusals,
    ),
)]
#[tracing::instrument(skip_all, fields(tenant_id = %path.0, role_id = %path.1))]
pub async fn grant(
    state: web::Data<AppState>,
    req: HttpRequest,
    principal: Principal,
    path: web::Path<(Uuid, Uuid)>,
    body: JsonBody<PermissionsBody>,
) -> Result<HttpResponse, ApiError> {
    let (tenant_id, role_id) = path.into_inner();
    let permissions = validated(|e| {
        if body.value.permissions.is_empty() {
            e.push(FieldError::new("permissions", "must not be empty"));
        }
        permission_set(&body.value.permissions, e)
    })?;
    let handler = RoleHandler {
        tenant_id,
        role_id,
        authority: principal.authority(),
        request: RoleRequest::Grant { permissions },
    };
    run(&state, &req, handler, &body.raw, StatusCode::OK).await
}

/// Revoke a permission from a role
#[utoipa::path(
    delete, path = "/v1/tenants/{tenant_id}/roles/{role_id}/permissions/{name}", tag = "roles",
        operation_id = "revokeRolePermission",
    params(CommandHeaders),
    responses(
        (status = 200, description = "The role after the change.", body = CommandBody<RoleRow>,
            headers(("ETag" = String, description = "The stream version"))),
        CommandRefusals,
    ),
)]
#[tracing::instrument(skip_all, fields(tenant_id = %path.0, role_id = %path.1, name = %path.2))]
pub async fn revoke(
    state: web::Data<AppState>,
    req: HttpRequest,
    principal: Principal,
    path: web::Path<(Uuid, Uuid, String)>,
) -> Result<HttpResponse, ApiError> {
    let (tenant_id, role_id, name) = path.into_inner();
    let name = validated(|e| validate::permission_name("name", &name, e))?;
    let handler = RoleHandler {
        tenant_id,
        role_id,
        authority: principal.authority(),
        request: RoleRequest::Revoke {
            permissions: BTreeSet::from([name]),
        },
    };
    run(&state, &req, handler, b"", StatusCode::OK).await
}

/// Delete a role
#[utoipa::path(
    delete, path = "/v1/tenants/{tenant_id}/roles/{role_id}", tag = "roles",
        operation_id = "deleteRole",
    params(CommandHeaders),
    responses(
        (status = 200, description = "The deleted role.", body = CommandBody<RoleRow>,
            headers(("ETag" = String, description = "The stream version"))),
        CommandRefusals,
    ),
)]
#[tracing::instrument(skip_all, fields(tenant_id = %path.0, role_id = %path.1))]
pub async fn delete(
    state: web::Data<AppState>,
    req: HttpRequest,
    principal: Principal,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (tenant_id, role_id) = path.into_inner();
    let handler = RoleHandler {
        tenant_id,
        role_id,
        authority: principal.authority(),
        request: RoleRequest::Delete,
    };
    run(&state, &req, handler, b"", StatusCode::OK).await
}

super::reads::tenant_reads! {
    tag = "roles", id = role_id, noun = "role",
    get {
        /// Read a role
        path = "/v1/tenants/{tenant_id}/roles/{role_id}", operation_id = "getRole",
        description = "The role, from the write side.",
        body = RoleRow, aggregate = Role, stream = role_stream,
        live = |s, tenant_id| s.0.as_ref().is_some_and(|r| r.tenant_id == tenant_id && !r.deleted),
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RoleListParams {
    /// Only the roles of this workspace.
    pub workspace_id: Option<Uuid>,
    /// Page size (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub after: Option<Uuid>,
    /// A `consistency_token` from a command response: wait until the list includes it.
    pub consistency: Option<String>,
}

/// List roles
#[utoipa::path(
    get, path = "/v1/tenants/{tenant_id}/roles", tag = "roles", operation_id = "listRoles",
    params(RoleListParams),
    responses(
        (status = 200, description = "A page of live roles with their permissions.",
            body = Page<RoleRow>),
        NotFound,
    ),
)]
#[tracing::instrument(skip_all, fields(tenant_id = %path))]
pub async fn list(
    state: web::Data<AppState>,
    path: web::Path<Uuid>,
    params: web::Query<RoleListParams>,
) -> Result<HttpResponse, ApiError> {
    let limit = respond::limit(params.limit)?;
    let tenant_id = *path;
    let workspace_id = params.workspace_id;
    let after = params.after;
    respond::tenant_page(
        &state,
        tenant_id,
        params.consistency.as_deref(),
        limit,
        |client| async move { read::list(&client, tenant_id, workspace_id, after, limit).await },
        |r| r.id,
    )
    .await
}
