//! The documentation vocabulary of the API, shared by every handler's `#[utoipa::path]`: the
//! security scheme names, the problem responses many operations share
//! (`#/components/responses/*`) and the response sets handlers list (`CommandRefusals`,
//! `NotFound`, ...). It imports no handler, so every handler can use it.

use std::collections::BTreeMap;

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{ContentBuilder, Ref, RefOr};
use utoipa::IntoResponses;

use super::problem::CONTENT_TYPE as PROBLEM;

/// The name of the bearer security scheme.
pub const BEARER: &str = "bearer";
/// The name of the HTTP Basic scheme of the token endpoint (`client_secret_basic`).
pub const CLIENT_BASIC: &str = "client_basic";

/// The rendered OpenAPI document, as the app serves it (`GET /openapi.json`); registered as
/// app data by [`super::routes::configure`].
#[derive(Debug, Clone, Copy)]
pub struct OpenApiDocument(pub &'static str);

/// A problem+json response.
pub fn problem(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            PROBLEM,
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .build()
}

/// The problem responses many operations share, as `#/components/responses/<name>`.
const SHARED: &[(&str, &str)] = &[
    (
        "Unauthorized",
        "`unauthorized` (no bearer token) or `invalid-token` (the detail says why).",
    ),
    (
        "Forbidden",
        "`forbidden`: the caller lacks the permission (see the operation's description), or \
         uses a workspace-scoped token; `privilege-escalation`: the command would hand out a \
         permission the caller does not hold (creating or granting a role, assigning one, \
         adding a group member, rotating a service account's secret, resetting a user's \
         second factor).",
    ),
    (
        "NotFound",
        "`not-found`: no such resource, or it was deleted, or its tenant is deleted or out of \
         the caller's reach.",
    ),
    (
        "Conflict",
        "`already-taken`, `tenant-blocked`, `system-role`, `mfa-already-active`, \
         `mfa-not-enrolled`, `account-locked` or `concurrent-modification`.",
    ),
    (
        "PreconditionFailed",
        "`precondition-failed`: `If-Match` does not match the current version.",
    ),
    (
        "PayloadTooLarge",
        "`payload-too-large`: the body is over `http.max_body_bytes`.",
    ),
    (
        "UnsupportedMediaType",
        "`unsupported-media-type`: the body is not `application/json`.",
    ),
    (
        "InvalidBody",
        "`invalid-body`: wrong types, unknown or missing fields (`errors[].field` names the \
         field), or nesting deeper than 32 levels; `validation-failed`: a string over its \
         length limit or holding U+0000 (one `errors[]` entry per field).",
    ),
    (
        "Refused",
        "`invalid-body` (wrong types, unknown or missing fields, nesting deeper than 32 \
         levels), `validation-failed` (one `errors[]` entry per field), a rule of the resource (e.g. `parent-not-found`, \
         `permission-not-registered`, `role-workspace-mismatch`, `wrong-password`, \
         `invalid-code`), or `idempotency-key-reused`.",
    ),
    (
        "TooManyRequests",
        "`rate-limited`: too many attempts from this address, for this user or for this client \
         (`rate_limit.*`); nothing was checked or recorded. Retry after `Retry-After` seconds.",
    ),
    (
        "Internal",
        "`internal`: a bug; the cause is logged, never sent.",
    ),
    (
        "Unavailable",
        "`database-unavailable`, `consistency-timeout` or `request-timeout`: retry later.",
    ),
];

pub fn shared(name: &str) -> RefOr<Response> {
    debug_assert!(SHARED.iter().any(|(n, _)| *n == name), "{name} is shared");
    RefOr::Ref(Ref::from_response_name(name))
}

fn header(description: &str, schema_type: Type) -> utoipa::openapi::header::Header {
    HeaderBuilder::new()
        .schema(ObjectBuilder::new().schema_type(schema_type))
        .description(Some(description))
        .build()
}

/// The shared responses, with their headers.
pub fn shared_responses() -> impl Iterator<Item = (String, Response)> {
    SHARED.iter().map(|(name, description)| {
        let mut response = problem(description);
        match *name {
            "Unauthorized" => {
                response.headers.insert(
                    "WWW-Authenticate".into(),
                    header(
                        "`Bearer realm=\"charter\"`, with the OAuth `error` when there is one.",
                        Type::String,
                    ),
                );
            }
            "Unavailable" => {
                response.headers.insert(
                    "Retry-After".into(),
                    header("Seconds to wait before retrying.", Type::Integer),
                );
            }
            "TooManyRequests" => {
                response.headers.insert(
                    "Retry-After".into(),
                    header(
                        "Whole seconds (at least 1) after which the attempt is admitted again.",
                        Type::Integer,
                    ),
                );
            }
            _ => {}
        }
        (name.to_string(), response)
    })
}

/// The refusals of a command on a resource: what the decision and the executor answer.
pub struct CommandRefusals;

impl IntoResponses for CommandRefusals {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        BTreeMap::from([
            ("404".into(), shared("NotFound")),
            ("409".into(), shared("Conflict")),
            ("412".into(), shared("PreconditionFailed")),
            ("422".into(), shared("Refused")),
        ])
    }
}

/// A read of one resource, or of a tenant's resources, that may find nothing.
pub struct NotFound;

impl IntoResponses for NotFound {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        BTreeMap::from([("404".into(), shared("NotFound"))])
    }
}

/// A command that can lose a race too often (`concurrent-modification`), for operations
/// without [`CommandRefusals`].
pub struct Conflict;

impl IntoResponses for Conflict {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        BTreeMap::from([("409".into(), shared("Conflict"))])
    }
}

/// A throttled credential endpoint (`429 rate-limited` with `Retry-After`).
pub struct RateLimited;

impl IntoResponses for RateLimited {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        BTreeMap::from([("429".into(), shared("TooManyRequests"))])
    }
}

/// A refusal the handler decides beyond the authorization table.
pub struct Forbidden;

impl IntoResponses for Forbidden {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        BTreeMap::from([("403".into(), shared("Forbidden"))])
    }
}

/// The schema of a permission name (the API takes them as plain strings).
pub struct PermissionName;

impl utoipa::PartialSchema for PermissionName {
    fn schema() -> RefOr<utoipa::openapi::schema::Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(crate::domain::validate::PERMISSION_NAME_PATTERN))
            .max_length(Some(200))
            .description(Some(
                "Dotted lower-case segments, e.g. `iam.users.read` or `connections.create`.",
            ))
            .into()
    }
}

impl utoipa::ToSchema for PermissionName {}

/// The schema of a permission pattern of a platform grant (a name, or a namespace and `.*`).
pub struct PermissionPattern;

impl utoipa::PartialSchema for PermissionPattern {
    fn schema() -> RefOr<utoipa::openapi::schema::Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(crate::domain::validate::PERMISSION_PATTERN_PATTERN))
            .max_length(Some(200))
            .description(Some(
                "A permission name (`iam.permissions.write`), or a namespace followed by `.*` \
                 (`iam.*`), which covers every permission under it.",
            ))
            .into()
    }
}

impl utoipa::ToSchema for PermissionPattern {}
