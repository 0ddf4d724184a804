//! `/v1/tenants/{tenant_id}/users`: user commands and queries. Responses never carry
//! credentials.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use charter_events::streams::user_stream;
use charter_projections::users::{self as read, UserRow};
use serde::{Deserialize, Deserializer, Serialize};
use uuid::Uuid;

use crate::auth::password;
use crate::command::user::{ResetMfaHandler, UserHandler};
use crate::command::Outcome;
use crate::domain::user::{User, UserAction, UserStatus};
use crate::domain::validate::{self, FieldError};
use crate::http::docs::{CommandRefusals, NotFound};
use crate::http::extract::{validated, CommandHeaders, JsonBody};
use crate::http::principal::Principal;
use crate::http::problem::ApiError;
use crate::http::respond::{self, CommandBody, ListParams, Page};
use crate::http::state::AppState;

#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserBody {
    /// Unique in the tenant, ignoring case.
    #[schema(pattern = "^[A-Za-z0-9._@-]{1,64}$")]
    pub username: String,
    /// `local@domain`, at most 254 characters; unique in the tenant, ignoring case.
    #[schema(max_length = 254)]
    pub email: String,
    /// Trimmed, 1-200 characters, no control characters.
    #[serde(default)]
    #[schema(max_length = 200)]
    pub display_name: Option<String>,
    /// Given (first) name, as OpenID Connect's `given_name` (as `display_name`).
    #[serde(default)]
    #[schema(max_length = 200)]
    pub given_name: Option<String>,
    /// Family (last) name, as OpenID Connect's `family_name` (as `display_name`).
    #[serde(default)]
    #[schema(max_length = 200)]
    pub family_name: Option<String>,
    /// 12 or more characters, not the username or the email. Hashed before anything is
    /// stored; never echoed. Without it the user cannot log in.
    #[serde(default, skip_serializing_if = "never")]
    #[schema(write_only, format = Password, min_length = 12, max_length = 1024)]
    pub password: Option<String>,
}

/// Keeps the password out of the idempotency digest (the body is serialized for it) while
/// leaving it in the OpenAPI document, which drops `skip_serializing` fields altogether.
fn never<T>(_: &T) -> bool {
    true
}

/// Give `email`, `display_name`, or both.
#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserBody {
    /// `local@domain`, at most 254 characters.
    #[serde(default)]
    #[schema(max_length = 254)]
    pub email: Option<String>,
    /// Absent: unchanged. `null`: cleared. Trimmed, 1-200 characters.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 200)]
    pub display_name: Option<Option<String>>,
}

fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

fn status_name(status: UserStatus) -> &'static str {
    match status {
        UserStatus::Active => "active",
        UserStatus::Disabled => "disabled",
        UserStatus::Deleted => "deleted",
    }
}

fn view(outcome: &Outcome<User>) -> Option<UserRow> {
    let u = outcome.state.0.as_ref()?;
    Some(UserRow {
        id: u.id,
        tenant_id: u.tenant_id,
        username: u.username.clone(),
        email: u.email.clone(),
        display_name: u.display_name.clone(),
        given_name: u.given_name.clone(),
        family_name: u.family_name.clone(),
        status: status_name(u.status).into(),
        has_password: u.password_hash.is_some(),
        account_version: u.account_version,
        mfa_enabled: u.mfa_active(),
        locked_until: u.locked_until,
        version: outcome.version,
        created_at: outcome.created_at.unwrap_or_default(),
        updated_at: outcome.updated_at.unwrap_or_default(),
    })
}

async fn run<H: crate::command::CommandHandler<Aggregate = User>>(
    state: &AppState,
    req: &HttpRequest,
    handler: H,
    raw: &[u8],
    status: StatusCode,
) -> Result<HttpResponse, ApiError> {
    respond::run_command(state, req, handler, raw, status, view, |v| {
        format!("/v1/tenants/{}/users/{}", v.tenant_id, v.id)
    })
    .await
}

/// Create a user
#[utoipa::path(
    post, path = "/v1/tenants/{tenant_id}/users", tag = "users", operation_id = "createUser",
    params(CommandHeaders),
    request_body = CreateUserBody,
    responses(
        (status = 201, description = "The user was created.", body = CommandBody<UserRow>,
            headers(("ETag" = String, description = "The stream version"), ("Location" = String))),
        CommandRefusals,
    ),
)]
#[tracing::instrument(skip_all, fields(tenant_id = %path))]
pub async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<Uuid>,
    body: JsonBody<CreateUserBody>,
) -> Result<HttpResponse, ApiError> {
    let b = &body.value;
    let (username, email, display_name, given_name, family_name) = validated(|e| {
        let username = validate::username("username", &b.username, e);
        let email = validate::email("email", &b.email, e);
        let mut name = |field: &str, value: &Option<String>| {
            value.as_deref().map(|n| validate::name(field, n, e))
        };
        let display_name = name("display_name", &b.display_name);
        let given_name = name("given_name", &b.given_name);
        let family_name = name("family_name", &b.family_name);
        if let Some(pw) = &b.password {
            password::check_policy("password", pw, &username, &email, e);
        }
        (username, email, display_name, given_name, family_name)
    })?;
    let password_hash = match b.password.clone() {
        None => None,
        Some(pw) => {
            // PBKDF2 is deliberately slow: keep it off the request threads.
            let iterations = state.config.auth.pbkdf2_iterations;
            let hashed = web::block(move || password::hash(&pw, iterations))
                .await
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            Some(hashed.map_err(|e| ApiError::Internal(e.to_string()))?)
        }
    };
    let user_id = Uuid::now_v7();
    let handler = UserHandler {
        tenant_id: *path,
        user_id,
        action: UserAction::Create {
            user_id,
            username,
            email,
            display_name,
            given_name,
            family_name,
            password_hash,
        },
    };
    // The idempotency digest covers the body without the password (which is never stored).
    let raw = serde_json::to_vec(b).map_err(|e| ApiError::Internal(e.to_string()))?;
    run(&state, &req, handler, &raw, StatusCode::CREATED).await
}

/// Change a user's email or display name
#[utoipa::path(
    patch, path = "/v1/tenants/{tenant_id}/users/{user_id}", tag = "users",
        operation_id = "updateUser",
    params(CommandHeaders),
    request_body = UpdateUserBody,
    responses(
        (status = 200, description = "The user after the change.", body = CommandBody<UserRow>,
            headers(("ETag" = String, description = "The stream version"))),
        CommandRefusals,
    ),
)]
#[tracing::instrument(skip_all, fields(tenant_id = %path.0, user_id = %path.1))]
pub async fn update(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(Uuid, Uuid)>,
    body: JsonBody<UpdateUserBody>,
) -> Result<HttpResponse, ApiError> {
    let (tenant_id, user_id) = path.into_inner();
    let b = &body.value;
    let (email, display_name) = validated(|e| {
        if b.email.is_none() && b.display_name.is_none() {
            e.push(FieldError::new(
                "",
                "nothing to change: give email and/or display_name",
            ));
        }
        (
            b.email.as_deref().map(|m| validate::email("email", m, e)),
            b.display_name
                .as_ref()
                .map(|n| n.as_deref().map(|n| validate::name("display_name", n, e))),
        )
    })?;
    let handler = UserHandler {
        tenant_id,
        user_id,
        action: UserAction::Update {
            email,
            display_name,
        },
    };
    run(&state, &req, handler, &body.raw, StatusCode::OK).await
}

async fn simple(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(Uuid, Uuid)>,
    action: UserAction,
) -> Result<HttpResponse, ApiError> {
    let (tenant_id, user_id) = path.into_inner();
    let handler = UserHandler {
        tenant_id,
        user_id,
        action,
    };
    run(&state, &req, handler, b"", StatusCode::OK).await
}

/// Disable a user
///
/// A disabled user cannot log in, and its tokens stop working.
#[utoipa::path(
    post, path = "/v1/tenants/{tenant_id}/users/{user_id}/disable", tag = "users",
        operation_id = "disableUser",
    params(CommandHeaders),
    responses(
        (status = 200, description = "The user after the change.", body = CommandBody<UserRow>,
            headers(("ETag" = String, description = "The stream version"))),
        CommandRefusals,
    ),
)]
#[tracing::instrument(skip_all)]
pub async fn disable(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    simple(state, req, path, UserAction::Disable).await
}

/// Enable a user
#[utoipa::path(
    post, path = "/v1/tenants/{tenant_id}/users/{user_id}/enable", tag = "users",
        operation_id = "enableUser",
    params(CommandHeaders),
    responses(
        (status = 200, description = "The user after the change.", body = CommandBody<UserRow>,
            headers(("ETag" = String, description = "The stream version"))),
        CommandRefusals,
    ),
)]
#[tracing::instrument(skip_all)]
pub async fn enable(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    simple(state, req, path, UserAction::Enable).await
}

/// End a lockout early
#[utoipa::path(
    post, path = "/v1/tenants/{tenant_id}/users/{user_id}/unlock", tag = "users",
        operation_id = "unlockUser",
    params(CommandHeaders),
    responses(
        (status = 200, description = "The user after the change.", body = CommandBody<UserRow>,
            headers(("ETag" = String, description = "The stream version"))),
        CommandRefusals,
    ),
)]
#[tracing::instrument(skip_all)]
pub async fn unlock(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let now = chrono::Utc::now();
    simple(state, req, path, UserAction::Unlock { now }).await
}

/// Reset a user's second factor
///
/// For a user who lost their authenticator: MFA is turned off (enrollment starts over at the
/// next login) and every session and access token of the user ends (`account_version` is
/// bumped). The caller must hold every permission the user holds, platform grants included
/// (`403 privilege-escalation`): a helpdesk cannot weaken an administrator's account.
#[utoipa::path(
    post, path = "/v1/tenants/{tenant_id}/users/{user_id}/mfa/reset", tag = "users",
        operation_id = "resetUserMfa",
    params(CommandHeaders),
    responses(
        (status = 200, description = "The user after the change.", body = CommandBody<UserRow>,
            headers(("ETag" = String, description = "The stream version"))),
        CommandRefusals,
    ),
)]
#[tracing::instrument(skip_all)]
pub async fn reset_mfa(
    state: web::Data<AppState>,
    req: HttpRequest,
    principal: Principal,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (tenant_id, user_id) = path.into_inner();
    let handler = ResetMfaHandler {
        tenant_id,
        user_id,
        authority: principal.authority(),
    };
    run(&state, &req, handler, b"", StatusCode::OK).await
}

/// Delete a user
///
/// Frees the username and the email.
#[utoipa::path(
    delete, path = "/v1/tenants/{tenant_id}/users/{user_id}", tag = "users",
        operation_id = "deleteUser",
    params(CommandHeaders),
    responses(
        (status = 200, description = "The deleted user.", body = CommandBody<UserRow>,
            headers(("ETag" = String, description = "The stream version"))),
        CommandRefusals,
    ),
)]
#[tracing::instrument(skip_all)]
pub async fn delete(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    simple(state, req, path, UserAction::Delete).await
}

super::reads::tenant_reads! {
    tag = "users", id = user_id, noun = "user",
    get {
        /// Read a user
        path = "/v1/tenants/{tenant_id}/users/{user_id}", operation_id = "getUser",
        description = "The user (never with credentials), from the write side.",
        body = UserRow, aggregate = User, stream = user_stream,
        live = |s, tenant_id| s.0.as_ref()
            .is_some_and(|u| u.tenant_id == tenant_id && u.status != UserStatus::Deleted),
    }
    list {
        /// List users
        path = "/v1/tenants/{tenant_id}/users", operation_id = "listUsers",
        description = "A page of live users (never with credentials).", row = UserRow,
        read = read::list,
    }
}
