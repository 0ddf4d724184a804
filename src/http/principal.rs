//! Who is calling: the verified caller of a request (the [`Principal`] extractor), and what it
//! may do beyond its route's rule (reach another tenant, hand out permissions).
//!
//! A caller acts in its token's tenant, or in a descendant of it ("a parent tenant's admin
//! may manage its child tenants"); anything else looks as if it did not exist (404). Within
//! reach, a missing permission is a 403. Platform grants (`iam.*` of the bootstrap
//! administrator) reach every tenant. Workspace-scoped tokens are for services' data planes
//! and cannot drive the admin API.

use std::future::{ready, Ready};
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use uuid::Uuid;

use super::problem::ApiError;
use super::state::AppState;
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
    /// The caller `claims` admit, `platform` when a platform-wide grant covers the route's
    /// permission (decided by [`super::authorize`]).
    pub(super) fn new(claims: Claims, platform: bool) -> Self {
        Self {
            claims: Arc::new(claims),
            platform,
        }
    }

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

pub(super) fn workspace_token_refused() -> ApiError {
    ApiError::forbidden(
        "a workspace-scoped token cannot use the admin API; log in without workspace_id",
    )
}
