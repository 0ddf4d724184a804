//! Who is calling, and may they: the bearer-token extractor and the authorization table that
//! every `/v1` route is checked against before its handler runs.
//!
//! Authorization fails closed: a method and route missing from [`rule`] is refused (405), and so
//! is anything the route table of [`super::openapi`] (the OpenAPI document) does not list.
//! A caller acts in its token's tenant, or in a descendant of it ("a parent tenant's admin
//! may manage its child tenants"); anything else looks as if it did not exist (404). Within
//! reach, a missing permission is a 403. Platform grants (`iam.*` of the bootstrap
//! administrator) reach every tenant. Workspace-scoped tokens are for services' data planes
//! and cannot drive the admin API.

use std::future::{ready, Ready};

use actix_web::body::BoxBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method};
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use std::sync::Arc;
use uuid::Uuid;

use super::problem::ApiError;
use super::AppState;
use crate::domain::delegation::Authority;
use crate::store::hierarchy;
use crate::token::{Claims, TokenError};

/// The verified caller of a request.
#[derive(Debug, Clone)]
pub struct Principal {
    claims: Arc<Claims>,
    /// Whether a platform-wide grant covers the route's permission.
    platform: bool,
}

impl Principal {
    pub fn claims(&self) -> &Claims {
        &self.claims
    }

    /// What the caller may hand out (`domain::delegation`): everything when a platform grant
    /// let it in, else exactly the permissions its token carries.
    pub fn authority(&self) -> Authority {
        if self.platform {
            Authority::Platform
        } else {
            Authority::holding(&self.claims.permissions)
        }
    }

    /// Whether the caller may exercise `permission` in `tenant_id`: a platform grant, or the
    /// permission in its own tenant when that is `tenant_id` or one of its ancestors (strict
    /// ancestors only when `strict`). `Err` carries the refusal to send.
    pub async fn require(
        &self,
        state: &AppState,
        tenant_id: Uuid,
        permission: &str,
        strict: bool,
    ) -> Result<(), ApiError> {
        let c = self.claims();
        if c.has_platform_permission(permission) {
            return Ok(());
        }
        let own = c.tenant_id == tenant_id;
        let reaches = if own {
            !strict
        } else {
            let client = state.pool.get().await?;
            hierarchy::ancestors(&client, tenant_id)
                .await
                .map_err(crate::command::CommandError::from)?
                .contains(&c.tenant_id)
        };
        if !reaches {
            return Err(if own {
                ApiError::forbidden(format!(
                    "{permission} is needed in a parent of tenant {tenant_id}"
                ))
            } else {
                ApiError::NotFound(format!("tenant {tenant_id} not found"))
            });
        }
        if c.workspace_id.is_some() {
            return Err(workspace_token_refused());
        }
        if !c.has_permission(permission) {
            return Err(ApiError::forbidden(format!("this requires {permission}")));
        }
        Ok(())
    }

    /// Whether the caller holds a platform-wide grant covering `permission`.
    pub fn require_platform(&self, permission: &str) -> Result<(), ApiError> {
        if self.claims().has_platform_permission(permission) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "this requires a platform-wide {permission} grant"
            )))
        }
    }
}

impl FromRequest for Principal {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            req.extensions()
                .get::<Principal>()
                .cloned()
                .ok_or_else(|| ApiError::Unauthorized {
                    slug: "unauthorized",
                    detail: "this route needs a bearer token".into(),
                    oauth: None,
                }),
        )
    }
}

/// What a route requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// No token (login, refresh, the token endpoint, well-known documents, operations).
    Public,
    /// Any valid token; the handler decides the rest.
    Authenticated,
    /// A token of the account itself, not scoped to a workspace: managing one's own
    /// credentials (password, second factor, sessions). Workspace-scoped tokens are handed to
    /// services' data planes, and a service must not be able to take over its users.
    Account,
    /// The permission in the path's tenant, or an ancestor.
    Tenant(&'static str),
    /// The permission in a strict ancestor of the path's tenant (a tenant's lifecycle is its
    /// parent's business).
    Parent(&'static str),
    /// A platform-wide grant.
    Platform(&'static str),
    /// The permission in the caller's own token, whatever its tenant, or a platform grant:
    /// global resources every tenant's administrators may read (the permission registry).
    Holds(&'static str),
}

/// The authorization table: `pattern` is the route as registered.
pub fn rule(method: &Method, pattern: &str) -> Option<Rule> {
    use Rule::*;
    let read = *method == Method::GET;
    let Some(rest) = pattern.strip_prefix("/v1/") else {
        return Some(Public);
    };
    if let Some(tenant_part) = rest.strip_prefix("tenants/{tenant_id}") {
        let segments: Vec<&str> = tenant_part.split('/').filter(|s| !s.is_empty()).collect();
        return Some(match (segments.as_slice(), read) {
            ([], true) => Tenant("iam.tenants.read"),
            ([], false) | (["block" | "unblock"], false) => Parent("iam.tenants.write"),
            (["check"] | ["policy-version"], _) => Tenant("iam.entitlements.read"),
            (["users", _, "entitlements"], true) => Tenant("iam.entitlements.read"),
            (["workspaces", ..], true) => Tenant("iam.workspaces.read"),
            (["workspaces", ..], false) => Tenant("iam.workspaces.write"),
            (["users", ..], true) => Tenant("iam.users.read"),
            (["users", ..], false) => Tenant("iam.users.write"),
            (["groups", ..], true) => Tenant("iam.groups.read"),
            (["groups", ..], false) => Tenant("iam.groups.write"),
            (["roles", ..], true) => Tenant("iam.roles.read"),
            (["roles", ..], false) => Tenant("iam.roles.write"),
            (["assignments", ..], true) => Tenant("iam.assignments.read"),
            (["assignments", ..], false) => Tenant("iam.assignments.write"),
            (["service-accounts", ..], _) => Tenant("iam.service_accounts.write"),
            _ => return None,
        });
    }
    Some(match (method.clone(), rest) {
        (Method::POST, "auth/login" | "auth/refresh" | "oauth/token") => Public,
        // Logging out is what a service holding a user's workspace token may still do.
        (Method::POST, "auth/logout") => Authenticated,
        (_, r) if r.starts_with("auth/") => Account,
        (Method::POST, "tokens/introspect" | "tokens/revoke") => Authenticated,
        // iam.audit.read, platform-wide or in the caller's tenant (the handler scopes it).
        (Method::GET, "audit/events" | "audit/head") => Authenticated,
        // Tenants: creation and listing depend on the body and the caller (handlers).
        (Method::POST | Method::GET, "tenants") => Authenticated,
        (Method::GET, "permissions") => Holds("iam.permissions.read"),
        (Method::POST, "permissions/register") => Platform("iam.permissions.write"),
        (Method::POST, "keys/rotate") => Platform("iam.keys.write"),
        _ => return None,
    })
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

/// Maps a refused token to its answer: 503 when the check could not run, 401 otherwise.
pub fn token_refused(e: TokenError) -> ApiError {
    match e {
        TokenError::Unavailable(cause) => {
            tracing::warn!(cause = %cause, "token verification unavailable");
            ApiError::Unavailable {
                slug: "database-unavailable",
                detail: "the database is unavailable; retry shortly".into(),
            }
        }
        other => ApiError::Unauthorized {
            slug: "invalid-token",
            detail: other.to_string(),
            oauth: Some("invalid_token"),
        },
    }
}

/// Authenticates and authorizes every request before routing, per [`rule`]. A refusal is
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
    let Some(pattern) = super::openapi::route_of(req) else {
        return Ok(None);
    };
    // Only what the OpenAPI document lists is served: a route registered around the table
    // would be undocumented.
    match super::openapi::allowed_methods(&pattern) {
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
    let Some(rule) = rule(req.method(), &pattern) else {
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
    let principal = Principal {
        claims: Arc::new(claims),
        platform,
    };
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

fn workspace_token_refused() -> ApiError {
    ApiError::forbidden(
        "a workspace-scoped token cannot use the admin API; log in without workspace_id",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tenant_route_maps_to_a_permission_of_its_resource() {
        let get = Method::GET;
        let post = Method::POST;
        assert_eq!(
            rule(&get, "/v1/tenants/{tenant_id}/users/{user_id}"),
            Some(Rule::Tenant("iam.users.read"))
        );
        assert_eq!(
            rule(&post, "/v1/tenants/{tenant_id}/users/{user_id}/unlock"),
            Some(Rule::Tenant("iam.users.write"))
        );
        assert_eq!(
            rule(&get, "/v1/tenants/{tenant_id}/users/{user_id}/entitlements"),
            Some(Rule::Tenant("iam.entitlements.read"))
        );
        assert_eq!(
            rule(&post, "/v1/tenants/{tenant_id}/block"),
            Some(Rule::Parent("iam.tenants.write"))
        );
        assert_eq!(rule(&post, "/v1/auth/login"), Some(Rule::Public));
        assert_eq!(rule(&get, "/v1/auth/me"), Some(Rule::Account));
        assert_eq!(rule(&post, "/v1/auth/mfa/enroll"), Some(Rule::Account));
        assert_eq!(rule(&post, "/v1/auth/logout"), Some(Rule::Authenticated));
        assert_eq!(rule(&get, "/health"), Some(Rule::Public));
        assert_eq!(rule(&get, "/v1/tenants/{tenant_id}/bogus"), None);
        assert_eq!(rule(&Method::PUT, "/v1/keys/rotate"), None);
    }

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
