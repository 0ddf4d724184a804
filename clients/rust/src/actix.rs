//! actix-web integration: [`require_permission`] protects a resource or a route, and
//! [`Authorized`] hands the verified claims to the handler.
//!
//! ```no_run
//! # use actix_web::{web, App, HttpResponse};
//! # use charter_client::{actix::{require_permission, Authorized}, Guard};
//! # fn app(guard: Guard) {
//! App::new().app_data(web::Data::new(guard)).service(
//!     web::resource("/tenants/{tenant_id}/workspaces/{workspace_id}/connections")
//!         .wrap(require_permission("connections.read"))
//!         .get(|who: Authorized| async move { HttpResponse::Ok().body(who.sub.to_string()) }),
//! );
//! # }
//! ```
//!
//! The middleware reads the bearer token, and answers 401 (`unauthorized`,
//! `invalid-token`), 403 (`forbidden`) or 503 (`policy-unavailable`) with an RFC 7807
//! `application/problem+json` body of Charter's problem types.
//!
//! **Scope.** The route's path must name the tenant as `{tenant_id}`, and the token must be
//! of it; a `{workspace_id}` must be the token's workspace, and a route without one refuses
//! workspace-scoped tokens (a workspace grant does not reach the tenant's own resources, as
//! in Charter). Wrap the resource or the route, not a scope or the app: middleware around a
//! scope runs before the inner resource's parameters are matched, so it would see less of the
//! path than the handler does. A route that names no tenant answers 500 (a misconfiguration)
//! unless it opts in with [`RequirePermission::in_token_scope`], which lets the token's own
//! scope be the resource's: the handler must then act only in [`Authorized`]'s tenant and
//! workspace.

use std::future::{ready, Future, Ready};
use std::ops::Deref;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;

use actix_web::body::EitherBody;
use actix_web::dev::{Payload, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::{header, StatusCode};
use actix_web::{web, FromRequest, HttpMessage, HttpRequest, HttpResponse};
use uuid::Uuid;

use crate::guard::{Guard, Refusal, Resource, PROBLEM_TYPE_BASE};
use crate::verifier::TokenError;
use charter_events::access_token::Claims;

/// Middleware that lets a request through only when its token carries `permission` (see the
/// [module docs](self)). Needs a `web::Data<Guard>` in the app data.
pub fn require_permission(permission: &'static str) -> RequirePermission {
    RequirePermission {
        permission,
        token_scope: false,
    }
}

/// See [`require_permission`].
#[derive(Debug, Clone, Copy)]
pub struct RequirePermission {
    permission: &'static str,
    token_scope: bool,
}

impl RequirePermission {
    /// For a route whose path names no tenant: the resource is in the token's own tenant (and
    /// workspace), and the handler acts only there (see the [module docs](self)).
    pub fn in_token_scope(self) -> Self {
        Self {
            token_scope: true,
            ..self
        }
    }
}

impl<S, B> Transform<S, ServiceRequest> for RequirePermission
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = RequirePermissionService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(RequirePermissionService {
            service: Rc::new(service),
            permission: self.permission,
            token_scope: self.token_scope,
        }))
    }
}

/// The service [`RequirePermission`] wraps around a route.
pub struct RequirePermissionService<S> {
    service: Rc<S>,
    permission: &'static str,
    token_scope: bool,
}

type LocalBoxFuture<T> = Pin<Box<dyn Future<Output = T>>>;

impl<S, B> Service<ServiceRequest> for RequirePermissionService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<Result<Self::Response, Self::Error>>;

    actix_web::dev::forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let service = self.service.clone();
        let (permission, token_scope) = (self.permission, self.token_scope);
        Box::pin(async move {
            let Some(guard) = req.app_data::<web::Data<Guard>>().cloned() else {
                let refusal = Refusal::Unavailable("no charter_client::Guard in app data".into());
                return Ok(req.into_response(problem(&refusal)).map_into_right_body());
            };
            match judge(&guard, &req, permission, token_scope).await {
                Ok(claims) => {
                    req.extensions_mut().insert(Authorized(Arc::new(claims)));
                    Ok(service.call(req).await?.map_into_left_body())
                }
                Err(refusal) => {
                    metrics::counter!("charter_client_refusals_total", "reason" => refusal.reason())
                        .increment(1);
                    if refusal.status() >= 500 {
                        tracing::warn!(error = %refusal, path = %req.path(), "request not judged");
                    }
                    Ok(req.into_response(problem(&refusal)).map_into_right_body())
                }
            }
        })
    }
}

async fn judge(
    guard: &Guard,
    req: &ServiceRequest,
    permission: &str,
    token_scope: bool,
) -> Result<Claims, Refusal> {
    let token = bearer(req.headers()).ok_or(Refusal::NoToken)?;
    // Who is asking comes first: an unauthenticated caller learns nothing about the path.
    let claims = guard
        .verifier()
        .verify(token)
        .await
        .map_err(Refusal::Token)?;
    let path_id = |name: &str| -> Result<Option<Uuid>, Refusal> {
        match req.match_info().get(name) {
            None => Ok(None),
            // A malformed id names no resource the token could be of.
            Some(raw) => raw.parse().map(Some).map_err(|_| {
                Refusal::OtherScope(if name == "tenant_id" {
                    "tenant"
                } else {
                    "workspace"
                })
            }),
        }
    };
    let resource = Resource {
        tenant_id: path_id("tenant_id")?,
        workspace_id: path_id("workspace_id")?,
    };
    let resource = match (resource.tenant_id, token_scope) {
        (Some(_), _) => resource,
        (None, true) => Resource {
            tenant_id: Some(claims.tenant_id),
            workspace_id: claims.workspace_id,
        },
        (None, false) => return Err(Refusal::Unscoped),
    };
    guard.check(&claims, permission, resource)?;
    Ok(claims)
}

fn bearer(headers: &header::HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The problem+json answer to a refusal.
pub fn problem(refusal: &Refusal) -> HttpResponse {
    let status = StatusCode::from_u16(refusal.status()).unwrap_or(StatusCode::UNAUTHORIZED);
    let mut response = HttpResponse::build(status);
    response.insert_header((header::CONTENT_TYPE, "application/problem+json"));
    match refusal {
        Refusal::NoToken => {
            response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
        }
        _ if status == StatusCode::UNAUTHORIZED => {
            response.insert_header((header::WWW_AUTHENTICATE, "Bearer error=\"invalid_token\""));
        }
        _ if status == StatusCode::FORBIDDEN => {
            response.insert_header((
                header::WWW_AUTHENTICATE,
                "Bearer error=\"insufficient_scope\"",
            ));
        }
        _ => {}
    }
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response.insert_header((header::RETRY_AFTER, "1"));
    }
    // A 5xx says what kind of trouble, not its internals (addresses, errors of the broker or
    // of the JWKS fetch): those go to the log.
    let detail = match refusal {
        Refusal::Unavailable(_) | Refusal::Token(TokenError::KeysUnavailable(_)) => {
            "the service cannot judge requests right now; try again shortly".to_owned()
        }
        other => other.to_string(),
    };
    response.body(
        serde_json::json!({
            "type": format!("{PROBLEM_TYPE_BASE}{}", refusal.slug()),
            "title": status.canonical_reason().unwrap_or(""),
            "status": status.as_u16(),
            "detail": detail,
        })
        .to_string(),
    )
}

/// The claims of a request [`require_permission`] let through.
#[derive(Debug, Clone)]
pub struct Authorized(pub Arc<Claims>);

impl Deref for Authorized {
    type Target = Claims;
    fn deref(&self) -> &Claims {
        &self.0
    }
}

impl FromRequest for Authorized {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            req.extensions()
                .get::<Authorized>()
                .cloned()
                .ok_or_else(|| {
                    actix_web::error::InternalError::from_response(
                        "route not wrapped in require_permission",
                        problem(&Refusal::Unavailable(
                            "this route is not protected by require_permission".into(),
                        )),
                    )
                    .into()
                }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_bearer_credentials_are_read() {
        let mut headers = header::HeaderMap::new();
        assert_eq!(bearer(&headers), None);
        headers.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(bearer(&headers), None);
        headers.insert(header::AUTHORIZATION, "bearer  tok ".parse().unwrap());
        assert_eq!(bearer(&headers), Some("tok"));
        headers.insert(header::AUTHORIZATION, "Bearer ".parse().unwrap());
        assert_eq!(bearer(&headers), None);
    }

    #[test]
    fn problems_carry_the_type_and_the_challenge() {
        let r = problem(&Refusal::Missing("connections.create".into()));
        assert_eq!(r.status(), 403);
        assert_eq!(
            r.headers().get(header::CONTENT_TYPE).unwrap(),
            "application/problem+json"
        );
        let r = problem(&Refusal::Stale {
            token: 1,
            current: 2,
        });
        assert_eq!(r.status(), 401);
        assert!(r
            .headers()
            .get(header::WWW_AUTHENTICATE)
            .unwrap()
            .to_str()
            .unwrap()
            .contains("invalid_token"));
    }
}
