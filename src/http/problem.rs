//! RFC 7807 `application/problem+json` errors. Every error the API returns is built here,
//! and every error from the layers below is mapped here, once.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::command::CommandError;
use crate::domain::validate::FieldError;
use crate::domain::RejectionKind;

/// Problem `type` URIs are this base plus a stable slug; the slugs are part of the API.
pub const TYPE_BASE: &str = "https://charter.dev/problems/";
pub const CONTENT_TYPE: &str = "application/problem+json";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: syntactically broken input (JSON, headers, path or query parameters).
    #[error("{detail}")]
    Malformed { slug: &'static str, detail: String },
    /// 422: well-formed input that breaks the rules; one entry per offending field.
    #[error("{detail}")]
    Invalid {
        slug: &'static str,
        detail: String,
        errors: Vec<FieldError>,
    },
    /// 401: no, or no valid, credentials. `oauth` is the RFC 6749/6750 error code, sent as
    /// the `error` member and in `WWW-Authenticate`.
    #[error("{detail}")]
    Unauthorized {
        slug: &'static str,
        detail: String,
        oauth: Option<&'static str>,
    },
    /// An OAuth endpoint's error (RFC 6749 §5.2): `oauth` is sent as the `error` member.
    #[error("{detail}")]
    OAuth {
        status: StatusCode,
        slug: &'static str,
        detail: String,
        oauth: &'static str,
    },
    /// 403: authenticated, but not allowed (`forbidden`), or allowed this kind of command but
    /// not this one (`privilege-escalation`).
    #[error("{detail}")]
    Forbidden { slug: &'static str, detail: String },
    #[error("{0}")]
    NotFound(String),
    #[error("{detail}")]
    Conflict { slug: &'static str, detail: String },
    #[error("{0}")]
    PreconditionFailed(String),
    /// 405: the route is served, but not with this method; `allow` lists the methods it is.
    #[error("{detail}")]
    MethodNotAllowed { detail: String, allow: String },
    #[error("request bodies are limited to {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("request bodies must be application/json")]
    UnsupportedMediaType,
    /// 429: too many attempts on a throttled endpoint; `Retry-After` says when to come back.
    #[error("{detail}")]
    TooManyRequests { detail: String, retry_after_s: u64 },
    #[error("{detail}")]
    Unavailable { slug: &'static str, detail: String },
    #[error("internal error")]
    Internal(String),
    /// Any other status, for responses produced by the framework itself (405 and the like).
    #[error("{detail}")]
    Status { status: StatusCode, detail: String },
}

/// An RFC 7807 problem: the body of every error response.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Problem<'a> {
    /// `https://charter.dev/problems/<slug>`; the slug is stable.
    #[serde(rename = "type")]
    #[schema(format = "uri")]
    type_: String,
    /// The status's reason phrase.
    title: &'a str,
    /// The HTTP status.
    status: u16,
    /// What went wrong, for humans.
    detail: String,
    /// One entry per offending field (`invalid-body`, `validation-failed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<&'a [FieldError]>,
    /// RFC 6749 §5.2 / RFC 6750 §3.1 error code, for OAuth clients.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'static str>,
}

impl ApiError {
    pub fn slug(&self) -> &'static str {
        match self {
            ApiError::Malformed { slug, .. }
            | ApiError::Invalid { slug, .. }
            | ApiError::Conflict { slug, .. }
            | ApiError::Unavailable { slug, .. }
            | ApiError::Unauthorized { slug, .. }
            | ApiError::Forbidden { slug, .. }
            | ApiError::OAuth { slug, .. } => slug,
            ApiError::NotFound(_) => "not-found",
            ApiError::PreconditionFailed(_) => "precondition-failed",
            ApiError::MethodNotAllowed { .. } => "method-not-allowed",
            ApiError::PayloadTooLarge { .. } => "payload-too-large",
            ApiError::UnsupportedMediaType => "unsupported-media-type",
            ApiError::TooManyRequests { .. } => "rate-limited",
            ApiError::Internal(_) => "internal",
            ApiError::Status { status, .. } => match status.as_u16() {
                404 => "not-found",
                405 => "method-not-allowed",
                406 => "not-acceptable",
                408 => "request-timeout",
                413 => "payload-too-large",
                414 => "uri-too-long",
                431 => "headers-too-large",
                s if s >= 500 => "internal",
                _ => "bad-request",
            },
        }
    }

    /// 403 `forbidden`: the caller lacks what the route needs.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        ApiError::Forbidden {
            slug: "forbidden",
            detail: detail.into(),
        }
    }

    pub fn validation(errors: Vec<FieldError>) -> Self {
        ApiError::Invalid {
            slug: "validation-failed",
            detail: errors
                .iter()
                .map(|e| format!("{}: {}", e.field, e.message))
                .collect::<Vec<_>>()
                .join("; "),
            errors,
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Malformed { .. } => StatusCode::BAD_REQUEST,
            ApiError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::OAuth { status, .. } => *status,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Status { status, .. } => *status,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let detail = match self {
            ApiError::Internal(cause) => {
                tracing::error!(cause = %cause, "internal error");
                "an internal error occurred; it has been logged".to_owned()
            }
            other => other.to_string(),
        };
        let errors = match self {
            ApiError::Invalid { errors, .. } => Some(errors.as_slice()),
            _ => None,
        };
        let body = Problem {
            type_: format!("{TYPE_BASE}{}", self.slug()),
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail,
            errors,
            error: match self {
                ApiError::Unauthorized { oauth, .. } => *oauth,
                ApiError::OAuth { oauth, .. } => Some(*oauth),
                _ => None,
            },
        };
        let mut response = HttpResponse::build(status);
        response.insert_header((header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE)));
        // Wherever the problem is rendered (a middleware's error travels past the one that
        // adds these to every response), it is never sniffed and never cached.
        response.insert_header((
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ));
        response.insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
        if let ApiError::Unauthorized { oauth, .. } = self {
            let challenge = match oauth {
                Some(code) => format!("Bearer realm=\"charter\", error=\"{code}\""),
                None => "Bearer realm=\"charter\"".to_owned(),
            };
            response.insert_header((header::WWW_AUTHENTICATE, challenge));
        }
        if let ApiError::MethodNotAllowed { allow, .. } = self {
            response.insert_header((header::ALLOW, allow.as_str()));
        }
        if let ApiError::TooManyRequests { retry_after_s, .. } = self {
            response.insert_header((header::RETRY_AFTER, retry_after_s.to_string()));
        } else if status == StatusCode::SERVICE_UNAVAILABLE {
            response.insert_header((header::RETRY_AFTER, "1"));
        }
        response.json(body)
    }
}

impl From<CommandError> for ApiError {
    fn from(e: CommandError) -> Self {
        match e {
            CommandError::Rejected(r) => match r.kind {
                RejectionKind::NotFound => ApiError::NotFound(r.message),
                RejectionKind::Conflict => ApiError::Conflict {
                    slug: r.code,
                    detail: r.message,
                },
                RejectionKind::Invalid => ApiError::Invalid {
                    slug: r.code,
                    detail: r.message,
                    errors: vec![],
                },
                RejectionKind::Forbidden => ApiError::Forbidden {
                    slug: r.code,
                    detail: r.message,
                },
            },
            CommandError::Invalid(errors) => ApiError::validation(errors),
            CommandError::PreconditionFailed { current } => ApiError::PreconditionFailed(format!(
                "If-Match does not match the current version {current}"
            )),
            CommandError::Conflict | CommandError::Transient => ApiError::Conflict {
                slug: "concurrent-modification",
                detail: "the resource kept changing concurrently; retry".into(),
            },
            CommandError::Taken { what, value } => ApiError::Conflict {
                slug: "already-taken",
                detail: format!("{what} {value:?} is already taken"),
            },
            CommandError::IdempotencyKeyReused => ApiError::Invalid {
                slug: "idempotency-key-reused",
                detail: "this Idempotency-Key was already used with a different request".into(),
                errors: vec![],
            },
            CommandError::Unavailable(cause) => {
                tracing::warn!(cause = %cause, "database unavailable");
                ApiError::Unavailable {
                    slug: "database-unavailable",
                    detail: "the database is unavailable; retry shortly".into(),
                }
            }
            CommandError::Internal(cause) => ApiError::Internal(cause),
        }
    }
}

impl From<crate::auth::rate_limit::Limited> for ApiError {
    fn from(e: crate::auth::rate_limit::Limited) -> Self {
        ApiError::TooManyRequests {
            detail: e.to_string(),
            retry_after_s: e.retry_after_s,
        }
    }
}

impl From<deadpool_postgres::PoolError> for ApiError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        CommandError::from(e).into()
    }
}

impl From<tokio_postgres::Error> for ApiError {
    fn from(e: tokio_postgres::Error) -> Self {
        CommandError::from(e).into()
    }
}
