//! `POST /v1/keys/rotate`: activates a new signing key (platform administrators only).

use actix_web::{web, HttpResponse};
use serde::Serialize;

use crate::command::keyring::{rotate_key, KeyringCommandError};
use crate::http::docs::Conflict;
use crate::http::problem::ApiError;
use crate::http::state::AppState;
use crate::token::keys::Jwk;

/// The keys in force after a rotation.
#[derive(Serialize, utoipa::ToSchema)]
pub struct KeyRotation {
    /// The `kid` new tokens are signed with.
    pub active_kid: String,
    /// The JWKS from now on: the new key and the retired keys whose tokens may still be live.
    pub keys: Vec<Jwk>,
}

/// Rotate the signing key
///
/// Activates a new signing key; the retired one stays in the JWKS until its last token expired.
#[utoipa::path(
    post, path = "/v1/keys/rotate", tag = "keys", operation_id = "rotateKey",
    responses(
        (status = 200, description = "The new key is active.", body = KeyRotation),
        Conflict,
    ),
)]
#[tracing::instrument(skip_all)]
pub async fn rotate(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let keys = state.verifier.keys();
    let ttl = chrono::Duration::seconds(state.config.auth.access_token_ttl_s as i64);
    rotate_key(&state.writer, keys.master(), ttl)
        .await
        .map_err(|e| match e {
            KeyringCommandError::Command(e) => ApiError::from(e),
            KeyringCommandError::Key(e) => ApiError::Internal(e.to_string()),
        })?;
    let client = state.pool.get().await?;
    keys.reload(&client)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let current = keys.current();
    Ok(HttpResponse::Ok().json(KeyRotation {
        active_kid: current.signing_kid.clone(),
        keys: current.jwks.clone(),
    }))
}
