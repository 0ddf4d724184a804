//! `/v1/tenants/{tenant_id}/service-accounts`: non-human principals with client credentials.
//! The secret is returned once, at creation or rotation, and stored only as a digest.

use crate::command::service_account::{ServiceAccountHandler, ServiceAccountRequest};
use crate::command::Outcome;
use crate::crypto::secrets;
use crate::domain::service_account::ServiceAccount;
use crate::domain::validate;
use crate::domain::validate::FieldError;
use crate::http::docs::{CommandRefusals, NotFound, PermissionPattern};
use crate::http::extract::{command_request, validated, CommandHeaders, JsonBody};
use crate::http::principal::Principal;
use crate::http::problem::ApiError;
use crate::http::respond::{self, CommandBody, ListParams, Page};
use crate::http::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use charter_events::streams::service_account_stream;
use charter_projections::service_accounts::{self as read, ServiceAccountRow};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use uuid::Uuid;

#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CreateServiceAccountBody)]
pub struct CreateBody {
    /// Trimmed, 1-200 characters, no control characters.
    #[schema(max_length = 200)]
    pub name: String,
}

/// A service account; `client_secret` only in the answer that issued it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ServiceAccountView {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub client_id: String,
    pub name: String,
    /// `active` or `disabled` (`deleted` only in the answer to the deletion).
    pub status: &'static str,
    /// Permission patterns granted in every tenant, sorted (empty: none). Its client
    /// credentials tokens carry them as `platform_permissions`.
    pub platform_permissions: Vec<String>,
    /// Only in the response that issued it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    pub version: i64,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

fn view(outcome: &Outcome<ServiceAccount>) -> Option<ServiceAccountView> {
    let s = outcome.state.0.as_ref()?;
    Some(ServiceAccountView {
        id: s.id,
        tenant_id: s.tenant_id,
        client_id: s.id.to_string(),
        name: s.name.clone(),
        status: if s.deleted {
            "deleted"
        } else if s.disabled {
            "disabled"
        } else {
            "active"
        },
        platform_permissions: s.platform_permissions.clone(),
        client_secret: None,
        version: outcome.version,
        created_at: outcome.created_at.unwrap_or_default(),
        updated_at: outcome.updated_at.unwrap_or_default(),
    })
}

/// A fresh client secret: `cs_` + 256 random bits.
fn new_secret() -> Result<String, ApiError> {
    secrets::token("cs_").map_err(|e| ApiError::Internal(e.to_string()))
}

/// Runs a command. A secret it issues is added to the response sent, never to the one stored
/// for an idempotent retry: a replay shows the account without its secret (shown once).
async fn run(
    state: &AppState,
    req: &HttpRequest,
    handler: ServiceAccountHandler,
    raw: &[u8],
    status: StatusCode,
    secret: Option<String>,
) -> Result<HttpResponse, ApiError> {
    let fresh = std::sync::atomic::AtomicBool::new(false);
    let render = |o: &Outcome<ServiceAccount>| {
        fresh.store(true, std::sync::atomic::Ordering::Relaxed);
        let view = view(o);
        let location = (status == StatusCode::CREATED)
            .then(|| {
                view.as_ref()
                    .map(|v| format!("/v1/tenants/{}/service-accounts/{}", v.tenant_id, v.id))
            })
            .flatten();
        respond::command(o, status, view, location)
    };
    let request = command_request(req, raw)?;
    let mut stored = crate::command::execute(&state.writer, &handler, &request, render).await?;
    if let Some(secret) = secret.filter(|_| fresh.load(std::sync::atomic::Ordering::Relaxed)) {
        stored.body["data"]["client_secret"] = secret.into();
    }
    let mut response = HttpResponse::from(stored);
    response.headers_mut().insert(
        actix_web::http::header::CACHE_CONTROL,
        actix_web::http::header::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}

/// Create a service account
#[utoipa::path(
    post, path = "/v1/tenants/{tenant_id}/service-accounts", tag = "service-accounts",
        operation_id = "createServiceAccount",
    params(CommandHeaders),
    request_body = CreateBody,
    responses(
        (status = 201,
            description = "The service account, with its `client_secret` (shown once; an idempotent replay omits it).", body = CommandBody<ServiceAccountView>,
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
    body: JsonBody<CreateBody>,
) -> Result<HttpResponse, ApiError> {
    let name = validated(|e| validate::name("name", &body.value.name, e))?;
    let secret = new_secret()?;
    let handler = ServiceAccountHandler {
        tenant_id: *path,
        service_account_id: Uuid::now_v7(),
        authority: principal.authority(),
        request: ServiceAccountRequest::Create {
            name,
            secret_hash: secrets::digest(&secret),
        },
    };
    run(
        &state,
        &req,
        handler,
        &body.raw,
        StatusCode::CREATED,
        Some(secret),
    )
    .await
}

async fn simple(
    state: web::Data<AppState>,
    req: HttpRequest,
    principal: Principal,
    path: web::Path<(Uuid, Uuid)>,
    request: ServiceAccountRequest,
    secret: Option<String>,
) -> Result<HttpResponse, ApiError> {
    let (tenant_id, service_account_id) = path.into_inner();
    let handler = ServiceAccountHandler {
        tenant_id,
        service_account_id,
        authority: principal.authority(),
        request,
    };
    run(&state, &req, handler, b"", StatusCode::OK, secret).await
}

/// Issue a new client secret
///
/// The old secret stops working at once.
#[utoipa::path(
    post, path = "/v1/tenants/{tenant_id}/service-accounts/{service_account_id}/rotate-secret",
        tag = "service-accounts", operation_id = "rotateServiceAccountSecret",
    params(CommandHeaders),
    responses(
        (status = 200,
            description = "The service account with its new `client_secret` (shown once).",
            body = CommandBody<ServiceAccountView>,
            headers(("ETag" = String, description = "The stream version"))),
        CommandRefusals,
    ),
)]
#[tracing::instrument(skip_all)]
pub async fn rotate_secret(
    state: web::Data<AppState>,
    req: HttpRequest,
    principal: Principal,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let secret = new_secret()?;
    let request = ServiceAccountRequest::RotateSecret {
        secret_hash: secrets::digest(&secret),
    };
    simple(state, req, principal, path, request, Some(secret)).await
}

#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlatformAccessBody {
    /// The whole new set of the account's platform-wide grants, at most 100 (`[]` takes
    /// them all away). Duplicates count once.
    #[schema(value_type = Vec<PermissionPattern>, max_items = 100)]
    pub permissions: Vec<String>,
}

/// At most this many patterns in one platform grant.
const MAX_PLATFORM_PERMISSIONS: usize = 100;

fn parse_platform_access(body: &PlatformAccessBody) -> Result<BTreeSet<String>, ApiError> {
    validated(|e| {
        if body.permissions.len() > MAX_PLATFORM_PERMISSIONS {
            e.push(FieldError::new(
                "permissions",
                format!("must list at most {MAX_PLATFORM_PERMISSIONS} permissions"),
            ));
        }
        body.permissions
            .iter()
            .enumerate()
            .map(|(i, p)| validate::permission_pattern(&format!("permissions[{i}]"), p, e))
            .collect()
    })
}

/// Set a service account's platform access
///
/// Replaces the permission patterns the account holds in every tenant (what its client
/// credentials tokens carry as `platform_permissions`), so a service can, for example,
/// register its permissions at start-up with `iam.permissions.write`. Platform
/// administrators only, and only patterns their own platform grants cover (`403
/// privilege-escalation`); a disabled account gains none. Every change raises the account's
/// `account_version`: tokens minted before it are refused. The same set again appends nothing.
#[utoipa::path(
    put, path = "/v1/tenants/{tenant_id}/service-accounts/{service_account_id}/platform-access",
        tag = "service-accounts", operation_id = "setServiceAccountPlatformAccess",
    params(CommandHeaders),
    request_body = PlatformAccessBody,
    responses(
        (status = 200, description = "The service account after the change.",
            body = CommandBody<ServiceAccountView>,
            headers(("ETag" = String, description = "The stream version"))),
        CommandRefusals,
    ),
)]
#[tracing::instrument(skip_all)]
pub async fn set_platform_access(
    state: web::Data<AppState>,
    req: HttpRequest,
    principal: Principal,
    path: web::Path<(Uuid, Uuid)>,
    body: JsonBody<PlatformAccessBody>,
) -> Result<HttpResponse, ApiError> {
    let permissions = parse_platform_access(&body.value)?;
    let (tenant_id, service_account_id) = path.into_inner();
    let handler = ServiceAccountHandler {
        tenant_id,
        service_account_id,
        authority: principal.authority(),
        request: ServiceAccountRequest::SetPlatformAccess {
            permissions,
            caller_platform: principal
                .claims()
                .platform_permissions
                .iter()
                .cloned()
                .collect(),
        },
    };
    run(&state, &req, handler, &body.raw, StatusCode::OK, None).await
}

/// Disable a service account
#[utoipa::path(
    post, path = "/v1/tenants/{tenant_id}/service-accounts/{service_account_id}/disable",
        tag = "service-accounts", operation_id = "disableServiceAccount",
    params(CommandHeaders),
    responses(
        (status = 200, description = "The service account after the change.",
            body = CommandBody<ServiceAccountView>,
            headers(("ETag" = String, description = "The stream version"))),
        CommandRefusals,
    ),
)]
#[tracing::instrument(skip_all)]
pub async fn disable(
    state: web::Data<AppState>,
    req: HttpRequest,
    principal: Principal,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    simple(
        state,
        req,
        principal,
        path,
        ServiceAccountRequest::Disable,
        None,
    )
    .await
}

/// Enable a service account
#[utoipa::path(
    post, path = "/v1/tenants/{tenant_id}/service-accounts/{service_account_id}/enable",
        tag = "service-accounts", operation_id = "enableServiceAccount",
    params(CommandHeaders),
    responses(
        (status = 200, description = "The service account after the change.",
            body = CommandBody<ServiceAccountView>,
            headers(("ETag" = String, description = "The stream version"))),
        CommandRefusals,
    ),
)]
#[tracing::instrument(skip_all)]
pub async fn enable(
    state: web::Data<AppState>,
    req: HttpRequest,
    principal: Principal,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    simple(
        state,
        req,
        principal,
        path,
        ServiceAccountRequest::Enable,
        None,
    )
    .await
}

/// Delete a service account
#[utoipa::path(
    delete, path = "/v1/tenants/{tenant_id}/service-accounts/{service_account_id}",
        tag = "service-accounts", operation_id = "deleteServiceAccount",
    params(CommandHeaders),
    responses(
        (status = 200, description = "The deleted service account.",
            body = CommandBody<ServiceAccountView>,
            headers(("ETag" = String, description = "The stream version"))),
        CommandRefusals,
    ),
)]
#[tracing::instrument(skip_all)]
pub async fn delete(
    state: web::Data<AppState>,
    req: HttpRequest,
    principal: Principal,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    simple(
        state,
        req,
        principal,
        path,
        ServiceAccountRequest::Delete,
        None,
    )
    .await
}

super::reads::tenant_reads! {
    tag = "service-accounts", id = service_account_id, noun = "service account",
    get {
        /// Read a service account
        path = "/v1/tenants/{tenant_id}/service-accounts/{service_account_id}",
        operation_id = "getServiceAccount",
        description = "The service account (never with its secret), from the write side.",
        body = ServiceAccountView, aggregate = ServiceAccount, stream = service_account_stream,
        live = |s, tenant_id| s.0.as_ref().is_some_and(|a| a.tenant_id == tenant_id && !a.deleted),
    }
    list {
        /// List service accounts
        path = "/v1/tenants/{tenant_id}/service-accounts", operation_id = "listServiceAccounts",
        description = "A page of live service accounts (never with secrets).",
        row = ServiceAccountRow, read = read::list,
    }
}
