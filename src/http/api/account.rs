//! `/v1/auth/logout`, `/v1/auth/logout-all`, `/v1/auth/password` and `/v1/auth/me`: the
//! calling account's sessions, password and profile.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::password;
use crate::command::session::EndSessionHandler;
use crate::command::token::RevokeTokenHandler;
use crate::domain::user::UserAction;
use crate::domain::validate;
use crate::http::docs::{CommandRefusals, Forbidden};
use crate::http::extract::{validated, CorrelationHeader, JsonBody};
use crate::http::principal::Principal;
use crate::http::problem::ApiError;
use crate::http::state::AppState;
use crate::token::PrincipalKind;

use super::auth::{current_user, run, user_handler, user_of, wrong_password};

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
