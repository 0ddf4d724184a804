//! Entitlement queries: the lookup, the permission check (one, or a batch) and the
//! policy-version counters. Each is answered from this instance's in-process entitlement
//! index, without a database round trip; `consistency=` waits until the index itself has
//! applied the token.

use actix_web::{web, HttpResponse};
use charter_projections::index::Snapshot;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::validate::{self, FieldError};
use crate::http::docs::{NotFound, PermissionName};
use crate::http::extract::{validated, JsonBody};
use crate::http::problem::ApiError;
use crate::http::respond::wait_for_index;
use crate::http::state::AppState;

/// The most items one batch `check` takes.
pub const MAX_CHECK_ITEMS: usize = 100;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ScopeParams {
    /// One workspace (absent: the tenant, and for a lookup the workspaces that add to it).
    pub workspace_id: Option<Uuid>,
    /// A `consistency_token` from a command response: wait until the answer includes it.
    pub consistency: Option<String>,
}

/// A user's entitlements
///
/// The effective roles and permissions, through groups: tenant-wide, and in each live
/// workspace where a workspace binding adds to them (a workspace not listed has exactly the
/// tenant-wide ones); with `workspace_id`, in that workspace. Answered from memory.
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
    wait_for_index(&state, params.consistency.as_deref()).await?;
    match state
        .index
        .snapshot()
        .lookup(tenant_id, user_id, params.workspace_id)
    {
        Some(found) => Ok(HttpResponse::Ok().json(found)),
        None => Err(ApiError::NotFound(format!("user {user_id} not found"))),
    }
}

/// One question, or a batch of them: either `user_id` and `permission` (and `workspace_id`),
/// or `items`.
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckBody {
    /// The user or service account (a single check).
    #[serde(default)]
    pub user_id: Option<Uuid>,
    /// A single check's permission.
    #[serde(default)]
    #[schema(value_type = Option<PermissionName>)]
    pub permission: Option<String>,
    /// A single check's workspace (absent: tenant-wide).
    #[serde(default)]
    pub workspace_id: Option<Uuid>,
    /// A batch: 1 to 100 questions, answered in order. Every permission must be registered,
    /// every user and workspace must be the tenant's.
    #[serde(default)]
    #[schema(max_items = 100, min_items = 1)]
    pub items: Option<Vec<CheckItem>>,
    /// A `consistency_token` from a command response: wait until the answer includes it.
    #[serde(default)]
    pub consistency: Option<String>,
}

/// One question of a batch.
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckItem {
    pub user_id: Uuid,
    #[schema(value_type = PermissionName)]
    pub permission: String,
    #[serde(default)]
    pub workspace_id: Option<Uuid>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CheckResult {
    pub allowed: bool,
    /// The scope's effective policy version the answer rests on.
    pub policy_version: i64,
}

/// The answers of a batch, in the order of its items.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CheckResults {
    pub results: Vec<CheckResult>,
}

/// A single check's answer, or a batch's.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum CheckAnswer {
    One(CheckResult),
    Batch(CheckResults),
}

/// Check a permission, or a batch of up to 100
///
/// Whether a user holds a permission tenant-wide, or in one workspace. With `items`, answers
/// each question in order (`{"results": [...]}`). Answered from memory.
#[utoipa::path(
    post, path = "/v1/tenants/{tenant_id}/check", tag = "entitlements",
        operation_id = "checkPermission",
    request_body = CheckBody,
    responses(
        (status = 200, description = "The answer (`CheckResult`), or the batch's answers \
            (`CheckResults`).", body = CheckAnswer),
        NotFound,
        (status = 422, description = "`validation-failed`: neither or both of a single check \
            and `items`, more than 100 items, an unregistered permission, or an item naming \
            a user or workspace the tenant does not have.",
            body = crate::http::problem::Problem, content_type = "application/problem+json"),
    ),
)]
#[tracing::instrument(skip_all, fields(tenant_id = %path))]
pub async fn check(
    state: web::Data<AppState>,
    path: web::Path<Uuid>,
    body: JsonBody<CheckBody>,
) -> Result<HttpResponse, ApiError> {
    let tenant_id = *path;
    let b = &body.value;
    match (&b.items, b.user_id, &b.permission) {
        (None, Some(user_id), Some(permission)) => {
            let permission = validated(|e| validate::permission_name("permission", permission, e))?;
            wait_for_index(&state, b.consistency.as_deref()).await?;
            let snapshot = state.index.snapshot();
            let tenant = snapshot
                .tenant(tenant_id)
                .filter(|t| t.principal(user_id).is_some())
                .ok_or_else(|| ApiError::NotFound(format!("user {user_id} not found")))?;
            Ok(HttpResponse::Ok().json(CheckAnswer::One(CheckResult {
                allowed: tenant.allows(user_id, b.workspace_id, &permission),
                policy_version: tenant.policy_version(b.workspace_id),
            })))
        }
        (Some(items), None, None) if b.workspace_id.is_none() => {
            if items.is_empty() || items.len() > MAX_CHECK_ITEMS {
                return Err(ApiError::validation(vec![FieldError::new(
                    "items",
                    format!("must hold 1 to {MAX_CHECK_ITEMS} items"),
                )]));
            }
            validated(|e| {
                for (i, item) in items.iter().enumerate() {
                    validate::permission_name(
                        &format!("items[{i}].permission"),
                        &item.permission,
                        e,
                    );
                }
            })?;
            wait_for_index(&state, b.consistency.as_deref()).await?;
            let snapshot = state.index.snapshot();
            Ok(HttpResponse::Ok().json(CheckAnswer::Batch(check_batch(
                &snapshot, tenant_id, items,
            )?)))
        }
        _ => Err(ApiError::validation(vec![FieldError::new(
            "",
            "give either user_id and permission (and workspace_id), or items",
        )])),
    }
}

/// Answers a batch from one snapshot. Any item naming an unregistered permission, or a user
/// or workspace this tenant does not have (another tenant's included), refuses the whole
/// batch, naming each such item, and answers nothing.
fn check_batch(
    snapshot: &Snapshot,
    tenant_id: Uuid,
    items: &[CheckItem],
) -> Result<CheckResults, ApiError> {
    let tenant = snapshot
        .tenant(tenant_id)
        .ok_or_else(|| ApiError::NotFound(format!("tenant {tenant_id} not found")))?;
    let mut errors = Vec::new();
    for (i, item) in items.iter().enumerate() {
        if !snapshot.is_registered(&item.permission) {
            errors.push(FieldError::new(
                format!("items[{i}].permission"),
                "is not a registered permission",
            ));
        }
        if tenant.principal(item.user_id).is_none() {
            errors.push(FieldError::new(
                format!("items[{i}].user_id"),
                "is not a user or service account of this tenant",
            ));
        }
        if item.workspace_id.is_some_and(|w| !tenant.has_workspace(w)) {
            errors.push(FieldError::new(
                format!("items[{i}].workspace_id"),
                "is not a workspace of this tenant",
            ));
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    Ok(CheckResults {
        results: items
            .iter()
            .map(|item| CheckResult {
                allowed: tenant.allows(item.user_id, item.workspace_id, &item.permission),
                policy_version: tenant.policy_version(item.workspace_id),
            })
            .collect(),
    })
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
/// The effective policy version of the tenant, or of one of its workspaces (the tenant's
/// counter plus the workspace's). A token carrying an older one is stale.
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
    wait_for_index(&state, params.consistency.as_deref()).await?;
    if !crate::http::respond::tenant_exists(&state.pool, *path).await? {
        return Err(ApiError::NotFound(format!("tenant {} not found", *path)));
    }
    let version = state
        .index
        .snapshot()
        .tenant(*path)
        .map_or(0, |t| t.policy_version(params.workspace_id));
    Ok(HttpResponse::Ok().json(PolicyVersion {
        tenant_id: *path,
        workspace_id: params.workspace_id,
        policy_version: version,
    }))
}
