//! Entitlement queries: the lookup, the permission check, and the policy-version counters.
//! Each is one indexed read of the entitlements and policy_versions read models.

use actix_web::{web, HttpResponse};
use charter_projections::{entitlements, policy_versions};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::extract::{validated, JsonBody};
use super::openapi::{NotFound, PermissionName};
use super::problem::ApiError;
use super::respond::wait_for_consistency;
use super::AppState;
use crate::domain::validate;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ScopeParams {
    /// One workspace (absent: the tenant, and for a lookup every workspace).
    pub workspace_id: Option<Uuid>,
    /// A `consistency_token` from a command response: wait until the read models include it.
    pub consistency: Option<String>,
}

/// A user's entitlements
///
/// The effective roles and permissions, through groups, tenant-wide and per workspace. One
/// indexed read.
#[utoipa::path(
    get, path = "/v1/tenants/{tenant_id}/users/{user_id}/entitlements", tag = "entitlements",
    operation_id = "getEntitlements",
    params(ScopeParams),
    responses(
        (status = 200, description = "The user's entitlements.",
            body = charter_projections::entitlements::UserEntitlements),
        NotFound,
    ),
)]
#[tracing::instrument(skip_all, fields(tenant_id = %path.0, user_id = %path.1))]
pub async fn lookup(
    state: web::Data<AppState>,
    path: web::Path<(Uuid, Uuid)>,
    params: web::Query<ScopeParams>,
) -> Result<HttpResponse, ApiError> {
    let (tenant_id, user_id) = path.into_inner();
    wait_for_consistency(&state, params.consistency.as_deref()).await?;
    let client = state.pool.get().await?;
    match entitlements::lookup(&client, tenant_id, user_id, params.workspace_id).await? {
        Some(found) => Ok(HttpResponse::Ok().json(found)),
        None => Err(ApiError::NotFound(format!("user {user_id} not found"))),
    }
}

#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckBody {
    pub user_id: Uuid,
    #[schema(value_type = PermissionName)]
    pub permission: String,
    #[serde(default)]
    pub workspace_id: Option<Uuid>,
    /// A `consistency_token` from a command response: wait until the read models include it.
    #[serde(default)]
    pub consistency: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CheckResult {
    pub allowed: bool,
    /// The scope's policy version the answer rests on.
    pub policy_version: i64,
}

/// Check a permission
///
/// Whether the user holds the permission tenant-wide, or in one workspace.
#[utoipa::path(
    post, path = "/v1/tenants/{tenant_id}/check", tag = "entitlements",
        operation_id = "checkPermission",
    request_body = CheckBody,
    responses(
        (status = 200, description = "The answer.", body = CheckResult),
        NotFound,
        (status = 422, description = "`validation-failed`, or `invalid-body`.",
            body = crate::http::problem::Problem, content_type = "application/problem+json"),
    ),
)]
#[tracing::instrument(skip_all, fields(tenant_id = %path))]
pub async fn check(
    state: web::Data<AppState>,
    path: web::Path<Uuid>,
    body: JsonBody<CheckBody>,
) -> Result<HttpResponse, ApiError> {
    let b = &body.value;
    let permission = validated(|e| validate::permission_name("permission", &b.permission, e))?;
    wait_for_consistency(&state, b.consistency.as_deref()).await?;
    let client = state.pool.get().await?;
    let found = entitlements::lookup(&client, *path, b.user_id, b.workspace_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("user {} not found", b.user_id)))?;
    let scope = match b.workspace_id {
        None => found.tenant.as_ref(),
        Some(w) => found.workspaces.iter().find(|s| s.workspace_id == w),
    };
    let policy_version = match b.workspace_id {
        None => found.policy_version,
        Some(w) => policy_versions::current(&client, *path, Some(w)).await?,
    };
    Ok(HttpResponse::Ok().json(CheckResult {
        allowed: scope.is_some_and(|s| s.permissions.contains(&permission)),
        policy_version,
    }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PolicyVersion {
    pub tenant_id: Uuid,
    /// `null` for the tenant's own counter.
    #[schema(required = true)]
    pub workspace_id: Option<Uuid>,
    pub policy_version: i64,
}

/// A policy-version counter
///
/// The counter of the tenant, or of one of its workspaces. A token carrying an older one is
/// stale.
#[utoipa::path(
    get, path = "/v1/tenants/{tenant_id}/policy-version", tag = "entitlements",
    operation_id = "getPolicyVersion",
    params(ScopeParams),
    responses(
        (status = 200, description = "The counter.", body = PolicyVersion),
        NotFound,
    ),
)]
#[tracing::instrument(skip_all, fields(tenant_id = %path))]
pub async fn policy_version(
    state: web::Data<AppState>,
    path: web::Path<Uuid>,
    params: web::Query<ScopeParams>,
) -> Result<HttpResponse, ApiError> {
    wait_for_consistency(&state, params.consistency.as_deref()).await?;
    if !super::tenants::exists(&state.pool, *path).await? {
        return Err(ApiError::NotFound(format!("tenant {} not found", *path)));
    }
    let client = state.pool.get().await?;
    let version = policy_versions::current(&client, *path, params.workspace_id).await?;
    Ok(HttpResponse::Ok().json(PolicyVersion {
        tenant_id: *path,
        workspace_id: params.workspace_id,
        policy_version: version,
    }))
}
