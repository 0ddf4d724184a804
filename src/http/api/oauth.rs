//! OAuth endpoints: the client credentials grant (RFC 6749 §4.4), token introspection
//! (RFC 7662) and revocation (RFC 7009).

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use super::auth::{no_store, TokenResponse};
use crate::auth::rate_limit::Endpoint;
use crate::command::token::RevokeTokenHandler;
use crate::command::{self};
use crate::http::client_ip::client_ip;
use crate::http::docs::{Forbidden, RateLimited};
use crate::http::extract::{command_request, JsonBody};
use crate::http::principal::Principal;
use crate::http::problem::{ApiError, Problem};
use crate::http::state::AppState;
use crate::token::{Claims, PrincipalKind};

/// The client credentials grant (RFC 6749 §4.4): the credentials either here
/// (`client_secret_post`) or in HTTP Basic authorization, not both.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenForm {
    #[schema(pattern = "^client_credentials$")]
    pub grant_type: String,
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub client_secret: Option<String>,
    /// Accepted and ignored: a Charter token carries the account's whole grant.
    #[serde(default)]
    pub scope: Option<String>,
}

fn invalid_request(detail: &str) -> ApiError {
    ApiError::OAuth {
        status: actix_web::http::StatusCode::BAD_REQUEST,
        slug: "invalid-request",
        detail: detail.to_owned(),
        oauth: "invalid_request",
    }
}

/// A form that could not be read: over `http.max_body_bytes` is a 413 like any other body,
/// anything else is RFC 6749's `invalid_request`.
fn form_refused(e: &actix_web::Error, detail: &str) -> ApiError {
    use actix_web::error::UrlencodedError;
    match e.as_error::<UrlencodedError>() {
        Some(UrlencodedError::Overflow { limit, .. }) => {
            ApiError::PayloadTooLarge { limit: *limit }
        }
        _ => invalid_request(&format!("{detail}: {e}")),
    }
}

/// `client_secret_basic`: `Authorization: Basic base64(client_id:client_secret)`.
fn basic_credentials(req: &HttpRequest) -> Option<(String, String)> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

/// Client credentials grant
///
/// RFC 6749 §4.4: an access token for a service account. Users log in at `/v1/auth/login`.
/// Requests are limited per client address and per `client_id` (`429` with `Retry-After`).
#[utoipa::path(
    post, path = "/v1/oauth/token", tag = "oauth", operation_id = "token",
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    security((), ("client_basic" = [])),
    responses(
        (status = 200, description = "An access token (no refresh token).", body = TokenResponse,
            headers(("Cache-Control" = String,
                description = "`no-store`: tokens are credentials"))),
        (status = 400,
            description = "`invalid-request` (a malformed form, or the credentials given twice or not at all) or `unsupported-grant-type`, with the RFC 6749 `error`.",
            body = Problem, content_type = "application/problem+json"),
        (status = 401,
            description = "`invalid-client`: wrong client credentials (`error: invalid_client`).",
            body = Problem, content_type = "application/problem+json"),
        RateLimited,
    ),
)]
#[tracing::instrument(skip_all)]
pub async fn token(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: Result<web::Form<TokenForm>, actix_web::Error>,
) -> Result<HttpResponse, ApiError> {
    // Per address first; the per-client limit once the client id is known.
    state
        .auth
        .limits
        .check_ip(Endpoint::Token, client_ip(&req))?;
    let form = form
        .map_err(|e| form_refused(&e, "the body must be a form (grant_type=...)"))?
        .into_inner();
    if form.grant_type != "client_credentials" {
        return Err(ApiError::OAuth {
            status: actix_web::http::StatusCode::BAD_REQUEST,
            slug: "unsupported-grant-type",
            detail: "only grant_type=client_credentials is supported here; users log in at /v1/auth/login".into(),
            oauth: "unsupported_grant_type",
        });
    }
    let (id, secret) = match (basic_credentials(&req), form.client_id, form.client_secret) {
        (Some(basic), None, None) => basic,
        (None, Some(id), Some(secret)) => (id, secret),
        _ => return Err(invalid_request(
            "give the client credentials once: Basic authorization or client_id and client_secret",
        )),
    };
    let minted = state.auth.client_credentials(&id, &secret).await?;
    Ok(no_store(TokenResponse {
        access_token: minted.token,
        refresh_token: None,
        token_type: "Bearer",
        expires_in: minted.expires_in,
    }))
}

/// The `token` parameter of introspection and revocation: form-encoded as RFC 7662 and
/// RFC 7009 specify, or a JSON object with the same members.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenBody {
    pub token: String,
    #[serde(default)]
    pub token_type_hint: Option<String>,
}

pub struct TokenParam(pub TokenBody);

impl actix_web::FromRequest for TokenParam {
    type Error = ApiError;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        use actix_web::HttpMessage;
        if req.content_type() == "application/x-www-form-urlencoded" {
            let form = web::Form::<TokenBody>::from_request(req, payload);
            Box::pin(async move {
                form.await
                    .map(|f| TokenParam(f.into_inner()))
                    .map_err(|e| form_refused(&e, "the form must carry `token`"))
            })
        } else {
            let json = JsonBody::<TokenBody>::from_request(req, payload);
            Box::pin(async move { json.await.map(|b| TokenParam(b.value)) })
        }
    }
}

/// RFC 7662's answer: `{active: false}`, or the claims with `active: true`. Its schema is
/// written by hand (see [`crate::http::openapi`]): flattening an optional struct is beyond the derive.
#[derive(Serialize)]
pub struct Introspection {
    active: bool,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    claims: Option<Claims>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token_type: Option<&'static str>,
}

impl utoipa::PartialSchema for Introspection {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{AllOfBuilder, AnyOfBuilder, ObjectBuilder, Type};
        use utoipa::ToSchema;
        let inactive = ObjectBuilder::new()
            .property(
                "active",
                ObjectBuilder::new()
                    .schema_type(Type::Boolean)
                    .enum_values(Some([false])),
            )
            .required("active")
            .additional_properties(Some(
                utoipa::openapi::schema::AdditionalProperties::FreeForm(false),
            ));
        let active = AllOfBuilder::new()
            .item(utoipa::openapi::Ref::from_schema_name(Claims::name()))
            .item(
                ObjectBuilder::new()
                    .property(
                        "active",
                        ObjectBuilder::new()
                            .schema_type(Type::Boolean)
                            .enum_values(Some([true])),
                    )
                    .property(
                        "token_type",
                        ObjectBuilder::new()
                            .schema_type(Type::String)
                            .enum_values(Some(["Bearer"])),
                    )
                    .required("active")
                    .required("token_type"),
            );
        AnyOfBuilder::new()
            .item(inactive)
            .item(active)
            .description(Some(
                "`{active: false}` for a token that is not valid now or out of reach; \
                 otherwise the token's claims with `active: true`.",
            ))
            .into()
    }
}

impl utoipa::ToSchema for Introspection {
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        schemas.push((
            Claims::name().into(),
            <Claims as utoipa::PartialSchema>::schema(),
        ));
        <Claims as utoipa::ToSchema>::schemas(schemas);
    }
}

/// Whether `caller` may see or revoke `token`'s details: its own token, or a token of a
/// tenant within its reach with the matching write permission (or a platform grant).
async fn within_reach(state: &AppState, caller: &Principal, token: &Claims) -> bool {
    if caller.claims().sub == token.sub {
        return true;
    }
    let permission = match token.principal {
        PrincipalKind::User => "iam.users.write",
        PrincipalKind::ServiceAccount => "iam.service_accounts.write",
    };
    caller
        .require(state, token.tenant_id, permission, false)
        .await
        .is_ok()
}

/// Introspect a token
///
/// RFC 7662: `{active: false}` for any token that is not valid right now, or that is out of
/// the caller's reach; otherwise its claims.
#[utoipa::path(
    post, path = "/v1/tokens/introspect", tag = "oauth", operation_id = "introspectToken",
    request_body(content(
        (TokenBody = "application/x-www-form-urlencoded"),
        (TokenBody = "application/json"),
    )),
    responses(
        (status = 200, description = "Whether the token is active, and its claims if so.",
            body = Introspection,
            headers(("Cache-Control" = String, description = "`no-store`"))),
    ),
)]
#[tracing::instrument(skip_all)]
pub async fn introspect(
    state: web::Data<AppState>,
    principal: Principal,
    body: TokenParam,
) -> Result<HttpResponse, ApiError> {
    let inactive = Introspection {
        active: false,
        claims: None,
        token_type: None,
    };
    let claims = match state.verifier.verify(&body.0.token).await {
        Ok(claims) => claims,
        Err(crate::token::TokenError::Unavailable(e)) => {
            return Err(crate::http::principal::token_refused(
                crate::token::TokenError::Unavailable(e),
            ))
        }
        Err(_) => return Ok(no_store(inactive)),
    };
    if !within_reach(&state, &principal, &claims).await {
        return Ok(no_store(inactive));
    }
    Ok(no_store(Introspection {
        active: true,
        claims: Some(claims),
        token_type: Some("Bearer"),
    }))
}

/// Revoke a token
///
/// RFC 7009: revokes the token by `jti`. Answers 200 whether or not the token was valid, so
/// revocation reveals nothing; a valid token out of the caller's reach is refused (403).
#[utoipa::path(
    post, path = "/v1/tokens/revoke", tag = "oauth", operation_id = "revokeToken",
    request_body(content(
        (TokenBody = "application/x-www-form-urlencoded"),
        (TokenBody = "application/json"),
    )),
    responses(
        (status = 200, description = "Revoked, or was not a valid token (an empty body)."),
        Forbidden,
    ),
)]
#[tracing::instrument(skip_all)]
pub async fn revoke(
    state: web::Data<AppState>,
    req: HttpRequest,
    principal: Principal,
    body: TokenParam,
) -> Result<HttpResponse, ApiError> {
    // Signature and expiry only: a stale token can still be revoked.
    let claims = match state.verifier.verify_static(&body.0.token).await {
        Ok(claims) => claims,
        // Not knowing whether the token is valid is not the same as knowing it is not.
        Err(e @ crate::token::TokenError::Unavailable(_)) => {
            return Err(crate::http::principal::token_refused(e))
        }
        Err(_) => return Ok(HttpResponse::Ok().finish()),
    };
    if !within_reach(&state, &principal, &claims).await {
        return Err(ApiError::forbidden(
            "you may revoke your own tokens, or those of principals you administer",
        ));
    }
    let mut request = command_request(&req, &[])?;
    request.idempotency = None;
    command::run(&state.writer, &RevokeTokenHandler::of(&claims), &request).await?;
    Ok(HttpResponse::Ok().finish())
}
