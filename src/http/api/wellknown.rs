//! `/.well-known/jwks.json` and `/.well-known/openid-configuration`.

use actix_web::{web, HttpResponse};
use serde::Serialize;

use crate::http::state::AppState;
use crate::token::keys::Jwk;

/// A JSON Web Key Set (RFC 7517).
#[derive(Serialize, utoipa::ToSchema)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

/// The active signing key and, until its tokens have expired, the previous one.
#[utoipa::path(
    get, path = "/.well-known/jwks.json", tag = "operations", operation_id = "getJwks",
    responses(
        (status = 200, description = "The keys that verify Charter's tokens.", body = Jwks,
            headers(("Cache-Control" = String, description = "`public, max-age=60`"))),
    ),
)]
pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    let keys = state.verifier.keys().current();
    HttpResponse::Ok()
        .insert_header(("cache-control", "public, max-age=60"))
        .json(Jwks {
            keys: keys.jwks.clone(),
        })
}

/// The issuer's metadata (OpenID Connect Discovery 1.0, RFC 8414).
#[derive(Serialize, utoipa::ToSchema)]
pub struct OpenIdConfiguration {
    pub issuer: String,
    pub jwks_uri: String,
    pub token_endpoint: String,
    pub introspection_endpoint: String,
    pub revocation_endpoint: String,
    pub userinfo_endpoint: String,
    /// Users log in and refresh at `/v1/auth/*`, not at the token endpoint.
    pub grant_types_supported: &'static [&'static str],
    pub token_endpoint_auth_methods_supported: &'static [&'static str],
    pub id_token_signing_alg_values_supported: &'static [&'static str],
    pub subject_types_supported: &'static [&'static str],
    pub response_types_supported: &'static [&'static str],
    pub claims_supported: &'static [&'static str],
}

/// The issuer's endpoints and algorithms.
#[utoipa::path(
    get, path = "/.well-known/openid-configuration", tag = "operations",
    operation_id = "getOpenIdConfiguration",
    responses((status = 200, description = "The issuer's metadata.", body = OpenIdConfiguration)),
)]
pub async fn openid_configuration(state: web::Data<AppState>) -> HttpResponse {
    let issuer = state.config.auth.issuer.trim_end_matches('/');
    HttpResponse::Ok().json(OpenIdConfiguration {
        issuer: issuer.to_owned(),
        jwks_uri: format!("{issuer}/.well-known/jwks.json"),
        token_endpoint: format!("{issuer}/v1/oauth/token"),
        introspection_endpoint: format!("{issuer}/v1/tokens/introspect"),
        revocation_endpoint: format!("{issuer}/v1/tokens/revoke"),
        userinfo_endpoint: format!("{issuer}/v1/auth/me"),
        grant_types_supported: &["client_credentials"],
        token_endpoint_auth_methods_supported: &["client_secret_basic", "client_secret_post"],
        id_token_signing_alg_values_supported: &["ES256"],
        subject_types_supported: &["public"],
        response_types_supported: &["token"],
        claims_supported: &[
            "iss",
            "aud",
            "sub",
            "principal",
            "tenant_id",
            "workspace_id",
            "roles",
            "permissions",
            "platform_permissions",
            "policy_version",
            "account_version",
            "sid",
            "jti",
            "iat",
            "nbf",
            "exp",
        ],
    })
}
