//! `/v1/auth/mfa/*`: the calling user's TOTP second factor (enroll, activate, disable).

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use crate::auth::flows::TOTP_SEAL_CONTEXT;
use crate::auth::{password, totp};
use crate::domain::user::{SecondFactorProof, UserAction};
use crate::domain::validate;
use crate::http::docs::{CommandRefusals, Forbidden};
use crate::http::extract::{validated, CorrelationHeader, JsonBody};
use crate::http::principal::Principal;
use crate::http::problem::ApiError;
use crate::http::state::AppState;

use super::auth::{current_user, no_store, run, user_handler, wrong_password, MAX_CODE_CHARS};

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
