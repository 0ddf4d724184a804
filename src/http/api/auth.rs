//! `/v1/auth/login` and `/v1/auth/refresh`, and what every `/v1/auth/*` handler shares (the
//! token response, the refusals of the flows, the calling user). The account's own routes are
//! in [`super::account`], its second factor in [`super::mfa`]. Thin: the flows live in
//! `crate::auth::flows`.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::flows::{AuthError, LoginRequest, TokenPair};
use crate::auth::password;
use crate::auth::rate_limit::Endpoint;
use crate::command::user::UserHandler;
use crate::command::{self, CommandHandler, CommandRequest};
use crate::domain::user::{UserAction, UserState};
use crate::domain::validate;
use crate::http::client_ip::client_ip;
use crate::http::docs::{Conflict, RateLimited};
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
pub(super) const MAX_CODE_CHARS: usize = 64;
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
pub(super) fn envelope(req: &HttpRequest) -> CommandRequest {
    CommandRequest {
        metadata: metadata(req),
        if_match: None,
        idempotency: None,
    }
}

pub(super) fn wrong_password() -> ApiError {
    ApiError::Invalid {
        slug: "wrong-password",
        detail: "the current password is wrong".into(),
        errors: vec![],
    }
}

/// The calling user (service accounts have no password, sessions or MFA).
pub(super) fn user_of(principal: &Principal) -> Result<(Uuid, Uuid), ApiError> {
    let c = principal.claims();
    match c.principal {
        PrincipalKind::User => Ok((c.tenant_id, c.sub)),
        PrincipalKind::ServiceAccount => Err(ApiError::forbidden(
            "service accounts have no sessions, password or second factor",
        )),
    }
}

pub(super) async fn run<H: CommandHandler>(
    state: &AppState,
    req: &HttpRequest,
    handler: H,
) -> Result<crate::command::Outcome<H::Aggregate>, ApiError> {
    let mut request = command_request(req, &[])?;
    request.idempotency = None;
    Ok(command::run(&state.writer, &handler, &request).await?)
}

pub(super) fn user_handler(
    principal: &Principal,
    action: UserAction,
) -> Result<UserHandler, ApiError> {
    let (tenant_id, user_id) = user_of(principal)?;
    Ok(UserHandler {
        tenant_id,
        user_id,
        action,
    })
}

pub(super) async fn current_user(
    state: &AppState,
    principal: &Principal,
) -> Result<UserState, ApiError> {
    let (_, user_id) = user_of(principal)?;
    state
        .auth
        .load_user(user_id)
        .await?
        .ok_or_else(|| ApiError::NotFound("user not found".into()))
}
