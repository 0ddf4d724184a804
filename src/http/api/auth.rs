//! `/v1/auth/*`: login, refresh, logout, logout-all, password change, the caller's profile,
//! and TOTP enrollment. Thin: the flows live in `crate::auth::flows`.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::flows::{AuthError, LoginRequest, TokenPair, TOTP_SEAL_CONTEXT};
use crate::auth::rate_limit::Endpoint;
use crate::auth::{password, totp};
use crate::command::session::EndSessionHandler;
use crate::command::token::RevokeTokenHandler;
use crate::command::user::UserHandler;
use crate::command::{self, CommandHandler, CommandRequest};
use crate::domain::user::{SecondFactorProof, UserAction, UserState};
use crate::domain::validate;
use crate::http::client_ip::client_ip;
use crate::http::docs::{CommandRefusals, Conflict, Forbidden, RateLimited};
use crate::http::extract::{command_request, metadata, validated, CorrelationHeader, JsonBody};
use crate::http::principal::Principal;
use crate::http::problem::{ApiError, Problem};
use crate::http::state::AppState;
use crate::token::mint::MintError;
use crate::token::PrincipalKind;

/// The longest `tenant` of a login: a slug (63) or an id (36).
const MAX_TENANT_CHARS: usize = validate::MAX_SLUG_CHARS;
/// The longest username (see [`validate::username`]).
const MAX_USERNAME_CHARS: usize = 64;
/// The longest TOTP or recovery code.
const MAX_CODE_CHARS: usize = 64;
/// The longest refresh token (ours are 80 characters).
const MAX_REFRESH_TOKEN_CHARS: usize = 256;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    /// The tenant's id or slug.
    #[schema(max_length = 63)]
    pub tenant: String,
    #[schema(max_length = 64)]
    pub username: String,
    #[schema(format = Password, max_length = 1024)]
    pub password: String,
    /// The current TOTP code, or one of the recovery codes (when MFA is on).
    #[serde(default)]
    #[schema(max_length = 64)]
    pub totp_code: Option<String>,
    /// Scopes the access token to one workspace.
    #[serde(default)]
    pub workspace_id: Option<Uuid>,
}

/// An OAuth 2.0 token response (RFC 6749 §5.1).
#[derive(Serialize, utoipa::ToSchema)]
pub struct TokenResponse {
    /// An ES256 JWT; its claims follow `schemas/jwt-claims.json`.
    pub access_token: String,
    /// Opaque, single use: `/v1/auth/refresh` spends it. Absent for client credentials.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Always `Bearer`.
    #[schema(pattern = "^Bearer$")]
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
}

impl From<TokenPair> for TokenResponse {
    fn from(pair: TokenPair) -> Self {
        TokenResponse {
            access_token: pair.access.token,
            refresh_token: Some(pair.refresh_token),
            token_type: "Bearer",
            expires_in: pair.access.expires_in,
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        let unauthorized = |slug, oauth, detail: &str| ApiError::Unauthorized {
            slug,
            detail: detail.to_owned(),
            oauth: Some(oauth),
        };
        match e {
            AuthError::InvalidCredentials => unauthorized(
                "invalid-credentials",
                "invalid_grant",
                "the tenant, username, password or second factor is wrong, or the account cannot log in",
            ),
            AuthError::InvalidGrant => unauthorized(
                "invalid-grant",
                "invalid_grant",
                "the refresh token is invalid, expired or revoked",
            ),
            AuthError::InvalidClient => unauthorized(
                "invalid-client",
                "invalid_client",
                "client authentication failed",
            ),
            AuthError::RateLimited(limited) => limited.into(),
            AuthError::Command(e) => e.into(),
            AuthError::Mint(e @ MintError::IndexBehind) => ApiError::Unavailable {
                slug: "index-behind",
                detail: format!("{e}; retry shortly"),
            },
            AuthError::Mint(MintError::Db(e)) => e.into(),
            AuthError::Mint(e) => ApiError::Internal(e.to_string()),
        }
    }
}

/// Tokens are credentials: never cached.
pub fn no_store(body: impl Serialize) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("cache-control", "no-store"))
        .insert_header(("pragma", "no-cache"))
        .json(body)
}

/// Log in
///
/// `tenant` is an id or a slug; `workspace_id` scopes the token to one workspace. Every
/// failure is the same `401 invalid-credentials`; repeated failures lock the account.
/// Attempts are limited per client address and per user (`429` with `Retry-After`). A field
/// over its documented length is a `422`, before anything is looked up.
#[utoipa::path(
    post, path = "/v1/auth/login", tag = "auth", operation_id = "login",
    params(CorrelationHeader),
    request_body = LoginBody,
    responses(
        (status = 200, description = "A token pair.", body = TokenResponse,
            headers(("Cache-Control" = String,
                description = "`no-store`: tokens are credentials"))),
        (status = 401,
            description = "`invalid-credentials`: whatever the reason (`error: invalid_grant`).",
            body = Problem, content_type = "application/problem+json"),
        Conflict,
        RateLimited,
    ),
)]
#[tracing::instrument(skip_all)]
pub async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: JsonBody<LoginBody>,
) -> Result<HttpResponse, ApiError> {
    // Per address first; the per-user limit is checked once the tenant is resolved.
    state
        .auth
        .limits
        .check_ip(Endpoint::Login, client_ip(&req))?;
    let b = body.value;
    validated(|e| {
        validate::bounded("tenant", &b.tenant, MAX_TENANT_CHARS, e);
        validate::bounded("username", &b.username, MAX_USERNAME_CHARS, e);
        validate::bounded("password", &b.password, password::MAX_LENGTH, e);
        if let Some(code) = &b.totp_code {
            validate::bounded("totp_code", code, MAX_CODE_CHARS, e);
        }
    })?;
    let request = LoginRequest {
        tenant: b.tenant,
        username: b.username,
        password: b.password,
        totp_code: b.totp_code,
        workspace_id: b.workspace_id,
    };
    let envelope = envelope(&req);
    let pair = state.auth.login(&request, &envelope).await?;
    Ok(no_store(TokenResponse::from(pair)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshBody {
    #[schema(max_length = 256)]
    pub refresh_token: String,
}

/// Refresh a token pair
///
/// The presented refresh token is spent. Presenting a spent one ends the whole session.
#[utoipa::path(
    post, path = "/v1/auth/refresh", tag = "auth", operation_id = "refresh",
    params(CorrelationHeader),
    request_body = RefreshBody,
    responses(
        (status = 200, description = "A new token pair.", body = TokenResponse,
            headers(("Cache-Control" = String,
                description = "`no-store`: tokens are credentials"))),
        (status = 401,
            description = "`invalid-grant`: the refresh token is unknown, spent, expired or its session ended.",
            body = Problem, content_type = "application/problem+json"),
        Conflict,
    ),
)]
#[tracing::instrument(skip_all)]
pub async fn refresh(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: JsonBody<RefreshBody>,
) -> Result<HttpResponse, ApiError> {
    validated(|e| {
        validate::bounded(
            "refresh_token",
            &body.value.refresh_token,
            MAX_REFRESH_TOKEN_CHARS,
            e,
        )
    })?;
    let pair = state
        .auth
        .refresh(&body.value.refresh_token, &envelope(&req))
        .await?;
    Ok(no_store(TokenResponse::from(pair)))
}

/// The command envelope of an authentication request: metadata only.
fn envelope(req: &HttpRequest) -> CommandRequest {
    CommandRequest {
        metadata: metadata(req),
        if_match: None,
        idempotency: None,
    }
}

fn wrong_password() -> ApiError {
    ApiError::Invalid {
        slug: "wrong-password",
        detail: "the current password is wrong".into(),
        errors: vec![],
    }
}

/// The calling user (service accounts have no password, sessions or MFA).
fn user_of(principal: &Principal) -> Result<(Uuid, Uuid), ApiError> {
    let c = principal.claims();
    match c.principal {
        PrincipalKind::User => Ok((c.tenant_id, c.sub)),
        PrincipalKind::ServiceAccount => Err(ApiError::forbidden(
            "service accounts have no sessions, password or second factor",
        )),
    }
}

async fn run<H: CommandHandler>(
    state: &AppState,
    req: &HttpRequest,
    handler: H,
) -> Result<crate::command::Outcome<H::Aggregate>, ApiError> {
    let mut request = command_request(req, &[])?;
    request.idempotency = None;
    Ok(command::run(&state.writer, &handler, &request).await?)
}

fn user_handler(principal: &Principal, action: UserAction) -> Result<UserHandler, ApiError> {
    let (tenant_id, user_id) = user_of(principal)?;
    Ok(UserHandler {
        tenant_id,
        user_id,
        action,
    })
}

/// Revokes the presented access token itself.
async fn revoke_own(
    state: &AppState,
    req: &HttpRequest,
    principal: &Principal,
) -> Result<(), ApiError> {
    run(state, req, RevokeTokenHandler::of(principal.claims())).await?;
    Ok(())
}

/// Log out
///
/// Ends the token's session (its refresh token stops working) and revokes the token.
#[utoipa::path(
    post, path = "/v1/auth/logout", tag = "auth", operation_id = "logout",
    params(CorrelationHeader),
    responses(
        (status = 204, description = "Logged out."),
        CommandRefusals,
        Forbidden,
    ),
)]
#[tracing::instrument(skip_all)]
pub async fn logout(
    state: web::Data<AppState>,
    req: HttpRequest,
    principal: Principal,
) -> Result<HttpResponse, ApiError> {
    let (_, user_id) = user_of(&principal)?;
    if let Some(session_id) = principal.claims().sid {
        run(
            &state,
            &req,
            EndSessionHandler {
                session_id,
                user_id,
            },
        )
        .await?;
    }
    revoke_own(&state, &req, &principal).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Log out everywhere
///
/// Ends every session and access token of the caller (bumps `account_version`).
#[utoipa::path(
    post, path = "/v1/auth/logout-all", tag = "auth", operation_id = "logoutAll",
    params(CorrelationHeader),
    responses(
        (status = 204, description = "Every session ended."),
        CommandRefusals,
        Forbidden,
    ),
)]
#[tracing::instrument(skip_all)]
pub async fn logout_all(
    state: web::Data<AppState>,
    req: HttpRequest,
    principal: Principal,
) -> Result<HttpResponse, ApiError> {
    run(
        &state,
        &req,
        user_handler(&principal, UserAction::RevokeSessions)?,
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordBody {
    #[schema(format = Password, max_length = 1024)]
    pub old_password: String,
    /// 12-1024 characters, not the username or the email.
    #[schema(format = Password, min_length = 12, max_length = 1024)]
    pub new_password: String,
}

async fn current_user(state: &AppState, principal: &Principal) -> Result<UserState, ApiError> {
    let (_, user_id) = user_of(principal)?;
    state
        .auth
        .load_user(user_id)
        .await?
        .ok_or_else(|| ApiError::NotFound("user not found".into()))
}

/// Change the password
///
/// Every session ends (`account_version` is bumped). A wrong old password counts toward the
/// lockout (`422 wrong-password`); a locked account gets `409 account-locked`.
#[utoipa::path(
    post, path = "/v1/auth/password", tag = "auth", operation_id = "changePassword",
    params(CorrelationHeader),
    request_body = PasswordBody,
    responses(
        (status = 204, description = "The password was changed."),
        CommandRefusals,
        Forbidden,
    ),
)]
#[tracing::instrument(skip_all)]
pub async fn change_password(
    state: web::Data<AppState>,
    req: HttpRequest,
    principal: Principal,
    body: JsonBody<PasswordBody>,
) -> Result<HttpResponse, ApiError> {
    let user = current_user(&state, &principal).await?;
    let b = &body.value;
    validated(|e| {
        validate::bounded("old_password", &b.old_password, password::MAX_LENGTH, e);
        password::check_policy(
            "new_password",
            &b.new_password,
            &user.username,
            &user.email,
            e,
        )
    })?;
    let old_matched = state.auth.password_matches(&user, &b.old_password).await;
    // Hash the new password only for a change that can succeed; a wrong old password (or a
    // locked account) is decided, and recorded, without it.
    let new_hash = if old_matched.is_some() && !user.locked_at(chrono::Utc::now()) {
        let iterations = state.config.auth.pbkdf2_iterations;
        let new = b.new_password.clone();
        tokio::task::spawn_blocking(move || password::hash(&new, iterations))
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?
            .map_err(|e| ApiError::Internal(e.to_string()))?
    } else {
        String::new()
    };
    let action = UserAction::ChangePassword {
        proof: state.auth.reauth(old_matched),
        new_hash: new_hash.clone(),
    };
    let outcome = run(&state, &req, user_handler(&principal, action)?).await?;
    // A wrong old password was recorded as a failed attempt (it counts toward the lockout).
    if outcome.state.0.and_then(|u| u.password_hash) != Some(new_hash) {
        return Err(wrong_password());
    }
    Ok(HttpResponse::NoContent().finish())
}

/// The caller, its tenant, and what its token grants.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Me {
    pub principal: PrincipalKind,
    pub id: Uuid,
    #[schema(required = true)]
    pub tenant: Option<charter_projections::tenants::TenantRow>,
    /// `null` for a service account (as `email` and `display_name`).
    #[schema(required = true)]
    pub username: Option<String>,
    #[schema(required = true)]
    pub email: Option<String>,
    #[schema(required = true)]
    pub display_name: Option<String>,
    pub mfa_enabled: bool,
    #[schema(required = true)]
    pub workspace_id: Option<Uuid>,
    pub roles: Vec<Uuid>,
    pub permissions: Vec<String>,
    pub platform_permissions: Vec<String>,
    pub policy_version: i64,
    pub account_version: i64,
}

/// The caller's profile
#[utoipa::path(
    get, path = "/v1/auth/me", tag = "auth", operation_id = "me",
    responses(
        (status = 200, description = "The caller, its tenant and its grants.", body = Me),
    ),
)]
#[tracing::instrument(skip_all)]
pub async fn me(
    state: web::Data<AppState>,
    principal: Principal,
) -> Result<HttpResponse, ApiError> {
    let c = principal.claims();
    let user = match c.principal {
        PrincipalKind::User => state.auth.load_user(c.sub).await?,
        PrincipalKind::ServiceAccount => None,
    };
    Ok(HttpResponse::Ok().json(Me {
        principal: c.principal,
        id: c.sub,
        tenant: super::tenants::view_of(&state, c.tenant_id).await?,
        username: user.as_ref().map(|u| u.username.clone()),
        email: user.as_ref().map(|u| u.email.clone()),
        display_name: user.as_ref().and_then(|u| u.display_name.clone()),
        mfa_enabled: user.as_ref().is_some_and(|u| u.mfa_active()),
        workspace_id: c.workspace_id,
        roles: c.roles.clone(),
        permissions: c.permissions.clone(),
        platform_permissions: c.platform_permissions.clone(),
        policy_version: c.policy_version,
        account_version: c.account_version,
    }))
}

/// A new TOTP secret, inactive until activated.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Enrollment {
    /// Base32; type it into an authenticator app, or use `otpauth_uri`.
    pub secret: String,
    pub otpauth_uri: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrollMfaBody {
    /// The current password.
    #[schema(format = Password, max_length = 1024)]
    pub password: String,
}

/// Start TOTP enrollment
///
/// A new secret, inactive until `/v1/auth/mfa/activate` proves it works. Needs the current
/// password; a wrong one counts toward the lockout (`422 wrong-password`).
#[utoipa::path(
    post, path = "/v1/auth/mfa/enroll", tag = "auth", operation_id = "enrollMfa",
    params(CorrelationHeader),
    request_body = EnrollMfaBody,
    responses(
        (status = 200, description = "The secret.", body = Enrollment,
            headers(("Cache-Control" = String,
            description = "`no-store`: tokens are credentials"))),
        CommandRefusals,
        Forbidden,
    ),
)]
#[tracing::instrument(skip_all)]
pub async fn mfa_enroll(
    state: web::Data<AppState>,
    req: HttpRequest,
    principal: Principal,
    body: JsonBody<EnrollMfaBody>,
) -> Result<HttpResponse, ApiError> {
    validated(|e| validate::bounded("password", &body.value.password, password::MAX_LENGTH, e))?;
    let user = current_user(&state, &principal).await?;
    let matched = state
        .auth
        .password_matches(&user, &body.value.password)
        .await;
    let internal = |e: &dyn std::fmt::Display| ApiError::Internal(e.to_string());
    let secret = totp::Totp::generate_secret().map_err(|e| internal(&e))?;
    let generator = totp::Totp::new(&secret, &state.config.auth.totp_issuer, &user.username)
        .map_err(|e| internal(&e))?;
    let sealed_secret = state
        .auth
        .master()
        .seal(TOTP_SEAL_CONTEXT, secret.as_bytes())
        .map_err(|e| internal(&e))?;
    let action = UserAction::EnrollMfa {
        proof: state.auth.reauth(matched.clone()),
        sealed_secret: sealed_secret.clone(),
    };
    let outcome = run(&state, &req, user_handler(&principal, action)?).await?;
    // A wrong password was recorded as a failed attempt; nothing was enrolled.
    let enrolled = outcome
        .state
        .0
        .is_some_and(|u| u.mfa.pending_secret.as_ref() == Some(&sealed_secret));
    if matched.is_none() || !enrolled {
        return Err(wrong_password());
    }
    Ok(no_store(Enrollment {
        otpauth_uri: generator.uri(),
        secret,
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeBody {
    #[schema(max_length = 64)]
    pub code: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Activated {
    /// Shown once. Each replaces a TOTP code for one login.
    pub recovery_codes: Vec<String>,
}

/// Turn MFA on
///
/// With a code of the pending secret; returns 10 single-use recovery codes.
#[utoipa::path(
    post, path = "/v1/auth/mfa/activate", tag = "auth", operation_id = "activateMfa",
    params(CorrelationHeader),
    request_body = CodeBody,
    responses(
        (status = 200, description = "MFA is on.", body = Activated,
            headers(("Cache-Control" = String,
            description = "`no-store`: tokens are credentials"))),
        CommandRefusals,
        Forbidden,
    ),
)]
#[tracing::instrument(skip_all)]
pub async fn mfa_activate(
    state: web::Data<AppState>,
    req: HttpRequest,
    principal: Principal,
    body: JsonBody<CodeBody>,
) -> Result<HttpResponse, ApiError> {
    validated(|e| validate::bounded("code", &body.value.code, MAX_CODE_CHARS, e))?;
    let user = current_user(&state, &principal).await?;
    let proof = match &user.mfa.pending_secret {
        Some(sealed) => SecondFactorProof::Totp {
            secret: sealed.clone(),
            step: state
                .auth
                .totp_step(&user, sealed, body.value.code.trim(), chrono::Utc::now()),
        },
        None => SecondFactorProof::None,
    };
    let (codes, recovery_code_hashes) =
        totp::recovery_codes().map_err(|e| ApiError::Internal(e.to_string()))?;
    let action = UserAction::ActivateMfa {
        proof,
        recovery_code_hashes,
    };
    run(&state, &req, user_handler(&principal, action)?).await?;
    Ok(no_store(Activated {
        recovery_codes: codes,
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisableMfaBody {
    #[schema(format = Password, max_length = 1024)]
    pub password: String,
}

/// Turn MFA off
///
/// Needs the current password; a wrong one counts toward the lockout.
#[utoipa::path(
    post, path = "/v1/auth/mfa/disable", tag = "auth", operation_id = "disableMfa",
    params(CorrelationHeader),
    request_body = DisableMfaBody,
    responses(
        (status = 204, description = "MFA is off."),
        CommandRefusals,
        Forbidden,
    ),
)]
#[tracing::instrument(skip_all)]
pub async fn mfa_disable(
    state: web::Data<AppState>,
    req: HttpRequest,
    principal: Principal,
    body: JsonBody<DisableMfaBody>,
) -> Result<HttpResponse, ApiError> {
    validated(|e| validate::bounded("password", &body.value.password, password::MAX_LENGTH, e))?;
    let user = current_user(&state, &principal).await?;
    let matched = state
        .auth
        .password_matches(&user, &body.value.password)
        .await;
    let action = UserAction::DisableMfa {
        proof: state.auth.reauth(matched.clone()),
    };
    let outcome = run(&state, &req, user_handler(&principal, action)?).await?;
    // Accepted only if the hash the password matched is still the current one.
    if matched.is_none() || outcome.state.0.and_then(|u| u.password_hash) != matched {
        return Err(wrong_password());
    }
    Ok(HttpResponse::NoContent().finish())
}
