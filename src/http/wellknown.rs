//! `/.well-known/jwks.json` and `/.well-known/openid-configuration`.

use actix_web::{web, HttpResponse};
use serde_json::json;

use super::AppState;

/// The active signing key and, until its tokens have expired, the previous one.
pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    let keys = state.verifier.keys().current();
    HttpResponse::Ok()
        .insert_header(("cache-control", "public, max-age=60"))
        .json(json!({ "keys": keys.jwks }))
}

pub async fn openid_configuration(state: web::Data<AppState>) -> HttpResponse {
    let issuer = state.config.auth.issuer.trim_end_matches('/');
    HttpResponse::Ok().json(json!({
        "issuer": issuer,
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "token_endpoint": format!("{issuer}/v1/oauth/token"),
        "introspection_endpoint": format!("{issuer}/v1/tokens/introspect"),
        "revocation_endpoint": format!("{issuer}/v1/tokens/revoke"),
        "userinfo_endpoint": format!("{issuer}/v1/auth/me"),
        // Users log in and refresh at /v1/auth/*, not at the token endpoint.
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "subject_types_supported": ["public"],
        "response_types_supported": ["token"],
        "claims_supported": [
            "iss", "aud", "sub", "principal", "tenant_id", "workspace_id", "roles",
            "permissions", "platform_permissions", "policy_version", "account_version",
            "sid", "jti", "iat", "nbf", "exp"
        ],
    }))
}
