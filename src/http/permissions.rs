//! `/v1/permissions`: services register the permissions they enforce; anyone can list them.

use std::collections::HashSet;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use charter_projections::permissions as read;
use serde::{Deserialize, Serialize};

use super::extract::{command_request, validated, JsonBody};
use super::problem::ApiError;
use super::respond::{self, wait_for_consistency};
use super::AppState;
use crate::command::permission::RegisterPermissions;
use crate::command::{self, Outcome};
use crate::domain::permission_registry::{PermissionRegistry, Register};
use crate::domain::validate::{self, FieldError};

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterBody {
    pub service: String,
    pub permissions: Vec<PermissionBody>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PermissionBody {
    pub name: String,
    pub label: String,
}

#[derive(Serialize)]
struct RegistryView {
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PermissionListParams {
    pub service: Option<String>,
    pub limit: Option<i64>,
    /// The last `name` of the previous page.
    pub after: Option<String>,
    pub consistency: Option<String>,
}

#[derive(Serialize)]
struct PermissionPage {
    items: Vec<read::PermissionRow>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

#[tracing::instrument(skip_all)]
pub async fn list(
    state: web::Data<AppState>,
    params: web::Query<PermissionListParams>,
) -> Result<HttpResponse, ApiError> {
    let limit = respond::limit(params.limit)?;
    wait_for_consistency(&state, params.consistency.as_deref()).await?;
    let client = state.pool.get().await?;
    let items = read::list(
        &client,
        params.service.as_deref(),
        params.after.as_deref(),
        limit,
    )
    .await?;
    let next_cursor = (items.len() as i64 == limit)
        .then(|| items.last().map(|p| p.name.clone()))
        .flatten();
    Ok(HttpResponse::Ok().json(PermissionPage { items, next_cursor }))
}
