//! `/v1/tenants/{tenant_id}/workspaces`: workspace commands and queries.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use charter_events::streams::workspace_stream;
use charter_projections::workspaces::{self as read, WorkspaceRow};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::command::workspace::WorkspaceHandler;
use crate::command::Outcome;
use crate::domain::validate;
use crate::domain::workspace::{Workspace, WorkspaceAction};
use crate::http::docs::{CommandRefusals, NotFound};
use crate::http::extract::{validated, CommandHeaders, JsonBody};
use crate::http::problem::ApiError;
use crate::http::respond::{self, CommandBody, ListParams, Page};
use crate::http::state::AppState;

#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceBody {
    /// Trimmed, 1-200 characters, no control characters; unique in the tenant, ignoring case.
    #[schema(max_length = 200)]
    pub name: String,
}

fn view(outcome: &Outcome<Workspace>) -> Option<WorkspaceRow> {
    let w = outcome.state.0.as_ref()?;
    Some(WorkspaceRow {
        id: w.id,
        tenant_id: w.tenant_id,
        name: w.name.clone(),
        version: outcome.version,
        created_at: outcome.created_at.unwrap_or_default(),
        updated_at: outcome.updated_at.unwrap_or_default(),
    })
}

async fn run(
    state: &AppState,
    req: &HttpRequest,
    handler: WorkspaceHandler,
    raw: &[u8],
    status: StatusCode,
) -> Result<HttpResponse, ApiError> {
    respond::run_command(state, req, handler, raw, status, view, |v| {
        format!("/v1/tenants/{}/workspaces/{}", v.tenant_id, v.id)
    })
    .await
}

fn valid_name(raw: &str) -> Result<String, ApiError> {
    validated(|e| validate::name("name", raw, e))
}

/// Create a workspace
#[utoipa::path(
    post, path = "/v1/tenants/{tenant_id}/workspaces", tag = "workspaces",
        operation_id = "createWorkspace",
    params(CommandHeaders),
    request_body = WorkspaceBody,
    responses(
        (status = 201, description = "The workspace was created.", body = CommandBody<WorkspaceRow>,
            headers(("ETag" = String, description = "The stream version"), ("Location" = String))),
        CommandRefusals,
    ),
)]
#[tracing::instrument(skip_all, fields(tenant_id = %path))]
pub async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<Uuid>,
    body: JsonBody<WorkspaceBody>,
) -> Result<HttpResponse, ApiError> {
    let workspace_id = Uuid::now_v7();
    let handler = WorkspaceHandler {
        tenant_id: *path,
        workspace_id,
        action: WorkspaceAction::Create {
            workspace_id,
            name: valid_name(&body.value.name)?,
        },
    };
    run(&state, &req, handler, &body.raw, StatusCode::CREATED).await
}

/// Rename a workspace
#[utoipa::path(
    patch, path = "/v1/tenants/{tenant_id}/workspaces/{workspace_id}", tag = "workspaces",
        operation_id = "renameWorkspace",
    params(CommandHeaders),
    request_body = WorkspaceBody,
    responses(
        (status = 200, description = "The workspace after the change.",
            body = CommandBody<WorkspaceRow>,
            headers(("ETag" = String, description = "The stream version"))),
        CommandRefusals,
    ),
)]
#[tracing::instrument(skip_all, fields(tenant_id = %path.0, workspace_id = %path.1))]
pub async fn update(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(Uuid, Uuid)>,
    body: JsonBody<WorkspaceBody>,
) -> Result<HttpResponse, ApiError> {
    let (tenant_id, workspace_id) = path.into_inner();
    let handler = WorkspaceHandler {
        tenant_id,
        workspace_id,
        action: WorkspaceAction::Rename {
            name: valid_name(&body.value.name)?,
        },
    };
    run(&state, &req, handler, &body.raw, StatusCode::OK).await
}

/// Delete a workspace
#[utoipa::path(
    delete, path = "/v1/tenants/{tenant_id}/workspaces/{workspace_id}", tag = "workspaces",
        operation_id = "deleteWorkspace",
    params(CommandHeaders),
    responses(
        (status = 200, description = "The deleted workspace.", body = CommandBody<WorkspaceRow>,
            headers(("ETag" = String, description = "The stream version"))),
        CommandRefusals,
    ),
)]
#[tracing::instrument(skip_all, fields(tenant_id = %path.0, workspace_id = %path.1))]
pub async fn delete(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (tenant_id, workspace_id) = path.into_inner();
    let handler = WorkspaceHandler {
        tenant_id,
        workspace_id,
        action: WorkspaceAction::Delete,
    };
    run(&state, &req, handler, b"", StatusCode::OK).await
}

super::reads::tenant_reads! {
    tag = "workspaces", id = workspace_id, noun = "workspace",
    get {
        /// Read a workspace
        path = "/v1/tenants/{tenant_id}/workspaces/{workspace_id}", operation_id = "getWorkspace",
        description = "The workspace, from the write side (always current).",
        body = WorkspaceRow, aggregate = Workspace, stream = workspace_stream,
        live = |s, tenant_id| s.0.as_ref().is_some_and(|w| w.tenant_id == tenant_id && !w.deleted),
    }
    list {
        /// List workspaces
        path = "/v1/tenants/{tenant_id}/workspaces", operation_id = "listWorkspaces",
        description = "A page of live workspaces.", row = WorkspaceRow, read = read::list,
    }
}
