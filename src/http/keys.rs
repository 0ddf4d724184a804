//! `POST /v1/keys/rotate`: activates a new signing key (platform administrators only).

use actix_web::{web, HttpResponse};
use serde_json::json;

use super::problem::ApiError;
use super::AppState;
use crate::command::keyring::{rotate_key, KeyringCommandError};

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
    Ok(HttpResponse::Ok().json(json!({
        "active_kid": current.signing_kid,
        "keys": current.jwks,
    })))
}
