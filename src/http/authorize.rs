//! The gate every request passes before routing: authentication and authorization against
//! the route table ([`super::routes`]).
//!
//! It fails closed: a path the table lacks is a 404 and a method it lacks on a known path a
//! 405 with `Allow`, whatever the router would have done with them; so a route registered
//! around the table is never served. A route's [`Rule`] is then checked before its handler
//! runs, and the admitted caller is handed to the handler as its [`Principal`].

use actix_web::body::BoxBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method};
use actix_web::{web, HttpMessage};
use uuid::Uuid;

use super::access::Rule;
use super::principal::{token_refused, workspace_token_refused, Principal};
use super::problem::ApiError;
use super::routes;
use super::state::AppState;

/// Authenticates and authorizes every request before routing, per [`routes::rule`]. A refusal is
/// answered here, as a response (not an error), so the middlewares around see and mark it
/// like any other answer.
pub async fn authorize(
    req: ServiceRequest,
    next: actix_web::middleware::Next<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    match admit(&req).await {
        Ok(Some(principal)) => {
            req.extensions_mut().insert(principal);
            next.call(req).await
        }
        Ok(None) => next.call(req).await,
        Err(refusal) => Ok(req.error_response(refusal)),
    }
}

/// Decides a request: `Ok(None)` for routes that need no token, the caller when its token
/// and permissions admit it, the refusal otherwise.
async fn admit(req: &ServiceRequest) -> Result<Option<Principal>, ApiError> {
    let Some(pattern) = routes::route_of(req) else {
        return Ok(None);
    };
    // Only what the OpenAPI document lists is served: a route registered around the table
    // would be undocumented.
    match routes::allowed_methods(&pattern) {
        None => return Err(ApiError::NotFound("no such route".into())),
        Some(allowed) if !allowed.contains(req.method()) => {
            let allow: Vec<&str> = allowed.iter().map(Method::as_str).collect();
            return Err(ApiError::MethodNotAllowed {
                detail: format!("{} is not allowed on {pattern}", req.method()),
                allow: allow.join(", "),
            });
        }
        Some(_) => {}
    }
    let Some(rule) = routes::rule(req.method(), &pattern) else {
        // Fail closed: a method the table does not know is not served, whatever the router
        // would have done with it.
        return Err(ApiError::Status {
            status: actix_web::http::StatusCode::METHOD_NOT_ALLOWED,
            detail: format!("{} is not allowed on {pattern}", req.method()),
        });
    };
    if rule == Rule::Public {
        return Ok(None);
    }
    let state = req
        .app_data::<web::Data<AppState>>()
        .cloned()
        .expect("AppState is registered");
    let token = match bearer(req) {
        None => {
            return Err(ApiError::Unauthorized {
                slug: "unauthorized",
                detail: "this route needs a bearer token".into(),
                oauth: None,
            })
        }
        Some(token) => token?,
    };
    let claims = state.verifier.verify(&token).await.map_err(token_refused)?;
    let platform = match rule {
        Rule::Tenant(p) | Rule::Parent(p) | Rule::Platform(p) | Rule::Holds(p) => {
            claims.has_platform_permission(p)
        }
        Rule::Public | Rule::Authenticated | Rule::Account => false,
    };
    let principal = Principal::new(claims, platform);
    let workspace_scoped = principal.claims().workspace_id.is_some();
    match rule {
        Rule::Public | Rule::Authenticated => {}
        Rule::Account if workspace_scoped => {
            return Err(ApiError::forbidden(
                "a workspace-scoped token cannot manage the account; log in without workspace_id",
            ))
        }
        Rule::Account => {}
        Rule::Platform(permission) => principal.require_platform(permission)?,
        Rule::Holds(_) if workspace_scoped => return Err(workspace_token_refused()),
        Rule::Holds(permission) => {
            let c = principal.claims();
            if !c.has_platform_permission(permission) && !c.has_permission(permission) {
                return Err(ApiError::forbidden(format!("this requires {permission}")));
            }
        }
        Rule::Tenant(permission) | Rule::Parent(permission) => {
            let tenant_id = path_tenant(&pattern, req.path())
                .expect("tenant rules only match tenant routes")?;
            principal
                .require(
                    &state,
                    tenant_id,
                    permission,
                    matches!(rule, Rule::Parent(_)),
                )
                .await?;
        }
    }
    Ok(Some(principal))
}

/// The path's `{tenant_id}`, if the route has one.
fn path_tenant(pattern: &str, path: &str) -> Option<Result<Uuid, ApiError>> {
    let index = pattern.split('/').position(|s| s == "{tenant_id}")?;
    let raw = path.split('/').nth(index)?;
    Some(Uuid::parse_str(raw).map_err(|e| ApiError::Malformed {
        slug: "invalid-path-parameter",
        detail: format!("invalid path parameter: tenant_id: {e}"),
    }))
}

/// The bearer token of a request: `None` without an `Authorization` header.
fn bearer(req: &ServiceRequest) -> Option<Result<String, ApiError>> {
    let value = req.headers().get(header::AUTHORIZATION)?;
    let parsed = value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_owned())
        .filter(|t| !t.is_empty());
    Some(parsed.ok_or_else(|| ApiError::Unauthorized {
        slug: "invalid-token",
        detail: "Authorization must be `Bearer <token>`".into(),
        oauth: Some("invalid_request"),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_tenant_in_the_path() {
        let id = Uuid::now_v7();
        let path = format!("/v1/tenants/{id}/users/x");
        let found = path_tenant("/v1/tenants/{tenant_id}/users/{user_id}", &path);
        assert_eq!(found.unwrap().unwrap(), id);
        assert!(path_tenant("/v1/tenants", "/v1/tenants").is_none());
        assert!(path_tenant("/v1/tenants/{tenant_id}", "/v1/tenants/nope")
            .unwrap()
            .is_err());
    }
}
