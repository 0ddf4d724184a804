//! `/v1/permissions`: services register the permissions they enforce; anyone can list them.

use std::collections::HashSet;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use charter_projections::permissions as read;
use serde::{Deserialize, Serialize};

use crate::command::permission::RegisterPermissions;
use crate::command::{self, Outcome};
use crate::domain::permission_registry::{PermissionRegistry, Register};
use crate::domain::validate::{self, FieldError};
use crate::http::docs::{CommandRefusals, PermissionName};
use crate::http::extract::{command_request, validated, CommandHeaders, JsonBody};
use crate::http::problem::ApiError;
use crate::http::respond::{self, wait_for_consistency, CommandBody};
use crate::http::state::AppState;

#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterBody {
    /// The service that enforces the permissions.
    #[schema(pattern = "^[a-z][a-z0-9_-]{0,62}$")]
    pub service: String,
    /// 1-500 permissions, each named once.
    #[schema(min_items = 1, max_items = 500)]
    pub permissions: Vec<PermissionBody>,
}

#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PermissionBody {
    #[schema(value_type = PermissionName)]
    pub name: String,
    /// Trimmed, 1-200 characters, no control characters.
    #[schema(max_length = 200)]
    pub label: String,
}

/// The registry after a registration: every permission, with its label.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RegistryView {
    service: String,
    permissions: Vec<PermissionBody>,
}

/// At most this many permissions per registration.
const MAX_PERMISSIONS: usize = 500;

pub fn parse(body: &RegisterBody) -> Result<Register, ApiError> {
    validated(|e| {
        let service = validate::service("service", &body.service, e);
        if body.permissions.is_empty() || body.permissions.len() > MAX_PERMISSIONS {
            e.push(FieldError::new(
                "permissions",
                format!("must list 1-{MAX_PERMISSIONS} permissions"),
            ));
        }
        let mut seen = HashSet::new();
        let permissions = body
            .permissions
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let name = validate::permission_name(&format!("permissions[{i}].name"), &p.name, e);
                let label = validate::name(&format!("permissions[{i}].label"), &p.label, e);
                if !seen.insert(name.clone()) {
                    e.push(FieldError::new(
                        format!("permissions[{i}].name"),
                        "is listed twice",
                    ));
                }
                (name, label)
            })
            .collect();
        Register {
            service,
            permissions,
        }
    })
}

/// Register a service's permissions
///
/// Idempotent: a changed label appends a label change. A name another service owns is a 409.
#[utoipa::path(
    post, path = "/v1/permissions/register", tag = "permissions",
        operation_id = "registerPermissions",
    params(CommandHeaders),
    request_body = RegisterBody,
    responses(
        (status = 200, description = "The registry after the registration.",
            body = CommandBody<RegistryView>,
            headers(("ETag" = String, description = "The stream version"))),
        CommandRefusals,
    ),
)]
#[tracing::instrument(skip_all)]
pub async fn register(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: JsonBody<RegisterBody>,
) -> Result<HttpResponse, ApiError> {
    let command = parse(&body.value)?;
    let service = command.service.clone();
    let request = command_request(&req, &body.raw)?;
    let render = |outcome: &Outcome<PermissionRegistry>| {
        let view = RegistryView {
            service: service.clone(),
            permissions: outcome
                .state
                .permissions
                .iter()
                .map(|(name, label)| PermissionBody {
                    name: name.clone(),
                    label: label.clone(),
                })
                .collect(),
        };
        respond::command(outcome, StatusCode::OK, view, None)
    };
    let handler = RegisterPermissions(command);
    Ok(command::execute(&state.writer, &handler, &request, render)
        .await?
        .into())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PermissionListParams {
    /// Only this service's permissions.
    #[param(max_length = 200)]
    pub service: Option<String>,
    /// Page size (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page (a permission name).
    #[param(max_length = 200)]
    pub after: Option<String>,
    /// A `consistency_token` from a command response: wait until the list includes it.
    pub consistency: Option<String>,
}

/// One page of registered permissions, by name.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PermissionPage {
    items: Vec<read::PermissionRow>,
    /// Pass as `after=` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

/// List registered permissions
#[utoipa::path(
    get, path = "/v1/permissions", tag = "permissions", operation_id = "listPermissions",
    params(PermissionListParams),
    responses((status = 200, description = "A page of permissions.", body = PermissionPage)),
)]
#[tracing::instrument(skip_all)]
pub async fn list(
    state: web::Data<AppState>,
    params: web::Query<PermissionListParams>,
) -> Result<HttpResponse, ApiError> {
    let limit = respond::limit(params.limit)?;
    let service = respond::query_text("service", params.service.as_deref())?;
    let after = respond::query_text("after", params.after.as_deref())?;
    wait_for_consistency(&state, params.consistency.as_deref()).await?;
    let client = state.pool.get().await?;
    let items = read::list(&client, service, after, limit).await?;
    let next_cursor = (items.len() as i64 == limit)
        .then(|| items.last().map(|p| p.name.clone()))
        .flatten();
    Ok(HttpResponse::Ok().json(PermissionPage { items, next_cursor }))
}
