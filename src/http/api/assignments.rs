//! `/v1/tenants/{tenant_id}/assignments`: roles given to users or groups.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use charter_events::assignment::SubjectType;
use charter_projections::assignments::{self as read, ListAssignments};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::command::assignment::{AssignmentHandler, AssignmentRequest};
use crate::command::{self, Outcome};
use crate::domain::assignment::Assignment;
use crate::domain::validate::FieldError;
use crate::http::docs::{CommandRefusals, NotFound};
use crate::http::extract::{command_request, validated, CommandHeaders, JsonBody};
use crate::http::principal::Principal;
use crate::http::problem::ApiError;
use crate::http::respond::{self, CommandBody, Page};
use crate::http::state::AppState;
use crate::store::idempotency::StoredResponse;

/// Give exactly one of `user_id`, `group_id` and `service_account_id`.
#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignmentBody {
    pub role_id: Uuid,
    #[serde(default)]
    pub user_id: Option<Uuid>,
    #[serde(default)]
    pub group_id: Option<Uuid>,
    #[serde(default)]
    pub service_account_id: Option<Uuid>,
    /// Assign in this workspace only (absent: tenant-wide, or the role's own workspace).
    #[serde(default)]
    pub workspace_id: Option<Uuid>,
}

/// An assignment as a command answers it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AssignmentView {
    pub id: Uuid,
    pub tenant_id: Uuid,
    #[schema(required = true)]
    pub workspace_id: Option<Uuid>,
    pub role_id: Uuid,
    pub subject_type: SubjectType,
    pub subject_id: Uuid,
}

fn render(status: StatusCode) -> impl Fn(&Outcome<Assignment>) -> StoredResponse {
    move |outcome| {
        let view = outcome.state.0.as_ref().map(|a| {
            let c = &a.created;
            AssignmentView {
                id: c.assignment_id,
                tenant_id: c.tenant_id,
                workspace_id: c.workspace_id,
                role_id: c.role_id,
                subject_type: c.subject_type,
                subject_id: c.subject_id,
            }
        });
        let location = (status == StatusCode::CREATED)
            .then(|| {
                outcome.state.0.as_ref().map(|a| {
                    format!(
                        "/v1/tenants/{}/assignments/{}",
                        a.created.tenant_id, a.created.assignment_id
                    )
                })
            })
            .flatten();
        respond::command(outcome, status, view, location)
    }
}

/// Assign a role
///
/// To a user, a group or a service account, tenant-wide or in one workspace. A workspace role is
/// assigned in its own workspace (the default) and nowhere else.
#[utoipa::path(
    post, path = "/v1/tenants/{tenant_id}/assignments", tag = "assignments",
        operation_id = "createAssignment",
    params(CommandHeaders),
    request_body = AssignmentBody,
    responses(
        (status = 201, description = "The assignment was created.",
            body = CommandBody<AssignmentView>,
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
    body: JsonBody<AssignmentBody>,
) -> Result<HttpResponse, ApiError> {
    let b = &body.value;
    let subject = match (b.user_id, b.group_id, b.service_account_id) {
        (Some(u), None, None) => Some((SubjectType::User, u)),
        (None, Some(g), None) => Some((SubjectType::Group, g)),
        (None, None, Some(s)) => Some((SubjectType::ServiceAccount, s)),
        _ => None,
    };
    let (subject_type, subject_id) = validated(|e| {
        subject.unwrap_or_else(|| {
            e.push(FieldError::new(
                "",
                "give exactly one of user_id, group_id and service_account_id",
            ));
            (SubjectType::User, Uuid::nil())
        })
    })?;
    let handler = AssignmentHandler {
        tenant_id: *path,
        assignment_id: Uuid::now_v7(),
        authority: principal.authority(),
        request: AssignmentRequest::Create {
            role_id: b.role_id,
            subject_type,
            subject_id,
            workspace_id: b.workspace_id,
        },
    };
    let request = command_request(&req, &body.raw)?;
    Ok(command::execute(
        &state.writer,
        &handler,
        &request,
        render(StatusCode::CREATED),
    )
    .await?
    .into())
}

/// Remove an assignment
#[utoipa::path(
    delete, path = "/v1/tenants/{tenant_id}/assignments/{assignment_id}", tag = "assignments",
        operation_id = "deleteAssignment",
    params(CommandHeaders),
    responses(
        (status = 200, description = "The removed assignment.", body = CommandBody<AssignmentView>,
            headers(("ETag" = String, description = "The stream version"))),
        CommandRefusals,
    ),
)]
#[tracing::instrument(skip_all, fields(tenant_id = %path.0, assignment_id = %path.1))]
pub async fn delete(
    state: web::Data<AppState>,
    req: HttpRequest,
    principal: Principal,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (tenant_id, assignment_id) = path.into_inner();
    let handler = AssignmentHandler {
        tenant_id,
        assignment_id,
        authority: principal.authority(),
        request: AssignmentRequest::Delete,
    };
    let request = command_request(&req, b"")?;
    Ok(
        command::execute(&state.writer, &handler, &request, render(StatusCode::OK))
            .await?
            .into(),
    )
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AssignmentListParams {
    /// Only this user's (direct) assignments.
    pub user_id: Option<Uuid>,
    /// Only this group's assignments.
    pub group_id: Option<Uuid>,
    /// Only the assignments in this workspace.
    pub workspace_id: Option<Uuid>,
    /// Page size (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub after: Option<Uuid>,
    /// A `consistency_token` from a command response: wait until the list includes it.
    pub consistency: Option<String>,
}

/// List assignments
#[utoipa::path(
    get, path = "/v1/tenants/{tenant_id}/assignments", tag = "assignments",
        operation_id = "listAssignments",
    params(AssignmentListParams),
    responses(
        (status = 200, description = "A page of assignments.",
            body = Page<charter_projections::assignments::AssignmentRow>),
        NotFound,
    ),
)]
#[tracing::instrument(skip_all, fields(tenant_id = %path))]
pub async fn list(
    state: web::Data<AppState>,
    path: web::Path<Uuid>,
    params: web::Query<AssignmentListParams>,
) -> Result<HttpResponse, ApiError> {
    let limit = respond::limit(params.limit)?;
    let tenant_id = *path;
    let query = ListAssignments {
        user_id: params.user_id,
        group_id: params.group_id,
        workspace_id: params.workspace_id,
        after: params.after,
        limit,
    };
    respond::tenant_page(
        &state,
        tenant_id,
        params.consistency.as_deref(),
        limit,
        |client| async move { read::list(&client, tenant_id, &query).await },
        |a| a.id,
    )
    .await
}
