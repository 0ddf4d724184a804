//! The OpenAPI 3.1 document of the HTTP API, generated from the code.
//!
//! Every route is listed once, in the table at the bottom of this file. Each handler's
//! `#[utoipa::path]` names its method and path, and from that one list come:
//! - the actix registration ([`register`]): a handler is served exactly where its operation
//!   says;
//! - the document ([`ApiDoc`], `GET /openapi.json`, committed as `schemas/openapi.json`);
//! - [`allowed_methods`], which [`super::principal::authorize`] holds every request to, so a
//!   route registered around the table is never served.
//!
//! [`Edge`] then adds what the edge does to every operation: the bearer requirement and the
//! 401/403/404 of the authorization table ([`super::principal::rule`]), the 400/413/415/422 of
//! the body and parameter extractors, and the 500/503 every route can answer.

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use actix_web::http::Method;
use actix_web::{web, HttpResponse};
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{HttpMethod, Operation, ParameterIn, PathItem};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr};
use utoipa::{IntoResponses, Modify, OpenApi};

use super::principal::{rule, Rule};
use super::problem::CONTENT_TYPE as PROBLEM;
use super::{
    assignments, audit, auth, entitlements, groups, keys, oauth, openapi, ops, permissions, roles,
    service_accounts, tenants, users, wellknown, workspaces,
};

/// The name of the bearer security scheme.
pub const BEARER: &str = "bearer";
/// The name of the HTTP Basic scheme of the token endpoint (`client_secret_basic`).
pub const CLIENT_BASIC: &str = "client_basic";

/// The document, rendered once: pretty-printed, keys in a stable order, newline-terminated
/// (byte for byte the committed `schemas/openapi.json`).
pub fn document() -> &'static str {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        ApiDoc::openapi()
            .to_pretty_json()
            .expect("the document serializes")
            + "\n"
    })
}

/// `GET /openapi.json`: this document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    operation_id = "getOpenApi",
    responses((status = 200, description = "This OpenAPI document.",
        content_type = "application/json", body = Object)),
)]
pub async fn serve() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(document())
}

/// The route a request's path matches, as actix's `match_pattern` names it, computed once
/// per request and kept in its extensions (the authorization, metrics and tracing layers all
/// need it). Documented routes are matched segment by segment against the table (a literal
/// segment beats a parameter); only a path no documented route matches falls back to
/// actix's `match_pattern`, which tries every registered route's regex in turn.
pub fn route_of(req: &actix_web::dev::ServiceRequest) -> Option<String> {
    use actix_web::HttpMessage;
    #[derive(Clone)]
    struct Matched(Option<String>);
    if let Some(Matched(found)) = req.extensions().get::<Matched>() {
        return found.clone();
    }
    let found = documented_route(req.path())
        .map(str::to_owned)
        .or_else(|| req.match_pattern());
    req.extensions_mut().insert(Matched(found.clone()));
    found
}

/// The documented route template `path` matches, if any.
pub fn documented_route(path: &str) -> Option<&'static str> {
    /// Each template's segments (`None` for a `{parameter}`), and the template.
    type Templates = Vec<(Vec<Option<String>>, String)>;
    static TEMPLATES: OnceLock<Templates> = OnceLock::new();
    let templates = TEMPLATES.get_or_init(|| {
        let mut paths: Vec<String> = operations().into_iter().map(|(_, p)| p).collect();
        paths.sort();
        paths.dedup();
        paths
            .into_iter()
            .map(|p| {
                let segments = p
                    .split('/')
                    .map(|s| (!(s.starts_with('{') && s.ends_with('}'))).then(|| s.to_owned()))
                    .collect();
                (segments, p)
            })
            .collect()
    });
    let segments: Vec<&str> = path.split('/').collect();
    templates
        .iter()
        .filter(|(t, _)| {
            t.len() == segments.len()
                && t.iter().zip(&segments).all(|(t, s)| match t {
                    Some(literal) => literal == s,
                    None => !s.is_empty(),
                })
        })
        .max_by_key(|(t, _)| t.iter().filter(|s| s.is_some()).count())
        .map(|(_, p)| p.as_str())
}

/// The methods served on a registered route `pattern` (as actix reports it with
/// `match_pattern`), or `None` for a pattern no operation documents.
pub fn allowed_methods(pattern: &str) -> Option<&'static [Method]> {
    static SERVED: OnceLock<HashMap<String, Vec<Method>>> = OnceLock::new();
    SERVED
        .get_or_init(|| {
            let mut served: HashMap<String, Vec<Method>> = HashMap::new();
            for (method, path) in operations() {
                served.entry(path).or_default().push(method);
            }
            served
        })
        .get(pattern)
        .map(Vec::as_slice)
}

fn actix_method(method: &HttpMethod) -> Method {
    match method {
        HttpMethod::Get => Method::GET,
        HttpMethod::Post => Method::POST,
        HttpMethod::Put => Method::PUT,
        HttpMethod::Delete => Method::DELETE,
        HttpMethod::Options => Method::OPTIONS,
        HttpMethod::Head => Method::HEAD,
        HttpMethod::Patch => Method::PATCH,
        HttpMethod::Trace => Method::TRACE,
    }
}

/// The routes of one documented handler, relative to `prefix`, the scope it is listed under.
fn routes_of<P, F, Args>(prefix: &str, handler: F) -> Vec<(String, actix_web::Route)>
where
    P: utoipa::Path,
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    let path = P::path();
    let relative = path
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("{path} is listed under {prefix:?}, which is not its prefix"));
    P::methods()
        .iter()
        .map(|m| {
            (
                relative.to_owned(),
                web::method(actix_method(m)).to(handler.clone()),
            )
        })
        .collect()
}

fn operations_of<P: utoipa::Path>() -> Vec<(Method, String)> {
    P::methods()
        .iter()
        .map(|m| (actix_method(m), P::path()))
        .collect()
}

/// Registers one group of the table: at the root for `""`, else in a scope of that prefix.
fn register_group(
    cfg: &mut web::ServiceConfig,
    prefix: &str,
    routes: Vec<Vec<(String, actix_web::Route)>>,
) {
    let routes = routes.into_iter().flatten();
    if prefix.is_empty() {
        for (path, route) in routes {
            cfg.route(&path, route);
        }
    } else {
        let scope = routes.fold(web::scope(prefix), |scope, (path, route)| {
            scope.route(&path, route)
        });
        cfg.service(scope);
    }
}

/// The route table: each group is served in a scope of its prefix (`""`: the root), so the
/// router matches a prefix before the routes under it. A scope answers every path under its
/// prefix, so no route may sit under another group's prefix.
macro_rules! route_table {
    ($($prefix:literal => [$($module:ident :: $handler:ident),+ $(,)?]),+ $(,)?) => {
        pastey::paste! {
            /// The OpenAPI document of every route in the table.
            #[derive(OpenApi)]
            #[openapi(
                info(
                    title = "Charter",
                    description = "Charter's IAM control plane. Errors are RFC 7807 \
                        `application/problem+json` with a stable `type`; commands answer \
                        `{data, events, consistency_token}` with the stream version as `ETag`.",
                    license(name = "Apache-2.0", identifier = "Apache-2.0"),
                ),
                paths($($($module::$handler),+),+),
                components(schemas(super::problem::Problem)),
                modifiers(&Edge),
            )]
            pub struct ApiDoc;

            /// Registers every route of the table at its documented method and path.
            pub fn register(cfg: &mut web::ServiceConfig) {
                $(
                    register_group(cfg, $prefix, vec![$(
                        routes_of::<$module::[<__path_ $handler>], _, _>($prefix, $module::$handler)
                    ),+]);
                )+
            }

            /// The prefixes of the table's groups.
            #[cfg(test)]
            const PREFIXES: &[&str] = &[$($prefix),+];

            /// Every (method, path) of the table.
            fn operations() -> Vec<(Method, String)> {
                let mut all = Vec::new();
                $($( all.extend(operations_of::<$module::[<__path_ $handler>]>()); )+)+
                all
            }
        }
    };
}

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

fn shared(name: &str) -> RefOr<Response> {
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
fn shared_responses() -> impl Iterator<Item = (String, Response)> {
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

/// What the edge adds to every operation; see the module documentation.
pub struct Edge;

impl Modify for Edge {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An ES256 access token from `/v1/auth/login`, `/v1/auth/refresh` or \
                         `/v1/oauth/token` (claims: `schemas/jwt-claims.json`).",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            CLIENT_BASIC,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some(
                        "`client_secret_basic`: a service account's client id and secret.",
                    ))
                    .build(),
            ),
        );
        for (name, response) in shared_responses() {
            components.responses.insert(name, RefOr::T(response));
        }
        for (path, item) in doc.paths.paths.iter_mut() {
            for (method, operation) in operations_mut(item) {
                let rule = rule(&method, path).unwrap_or_else(|| {
                    panic!("{method} {path} is documented but missing from the authorization table")
                });
                authorization(operation, rule);
                extractors(operation);
                add(operation, "500", "Internal");
                add(operation, "503", "Unavailable");
            }
        }
    }
}

fn operations_mut(item: &mut PathItem) -> Vec<(Method, &mut Operation)> {
    [
        (Method::GET, item.get.as_mut()),
        (Method::PUT, item.put.as_mut()),
        (Method::POST, item.post.as_mut()),
        (Method::DELETE, item.delete.as_mut()),
        (Method::PATCH, item.patch.as_mut()),
        (Method::HEAD, item.head.as_mut()),
        (Method::OPTIONS, item.options.as_mut()),
        (Method::TRACE, item.trace.as_mut()),
    ]
    .into_iter()
    .filter_map(|(m, op)| op.map(|op| (m, op)))
    .collect()
}

/// Adds the shared response `name` for `status` unless the operation documents its own.
fn add(operation: &mut Operation, status: &str, name: &str) {
    operation
        .responses
        .responses
        .entry(status.to_owned())
        .or_insert_with(|| shared(name));
}

fn append_description(operation: &mut Operation, text: &str) {
    let description = operation.description.get_or_insert_with(String::new);
    if !description.is_empty() {
        description.push_str("\n\n");
    }
    description.push_str(text);
}

/// The bearer requirement and the refusals of the authorization table.
fn authorization(operation: &mut Operation, rule: Rule) {
    let who = match rule {
        Rule::Public => return,
        Rule::Authenticated => "Any valid access token.".to_owned(),
        Rule::Account => "An access token not scoped to a workspace (`403` otherwise).".to_owned(),
        Rule::Tenant(p) => {
            format!("Needs `{p}` in the path's tenant or an ancestor (or platform-wide).")
        }
        Rule::Parent(p) => {
            format!("Needs `{p}` in a strict ancestor of the path's tenant (or platform-wide).")
        }
        Rule::Platform(p) => format!("Needs a platform-wide `{p}` grant."),
        Rule::Holds(p) => format!("Needs `{p}` (in the caller's tenant, or platform-wide)."),
    };
    append_description(operation, &format!("**Authorization:** {who}"));
    operation.security = Some(vec![SecurityRequirement::new::<_, [&str; 0], &str>(
        BEARER,
        [],
    )]);
    add(operation, "401", "Unauthorized");
    match rule {
        Rule::Tenant(_) | Rule::Parent(_) => {
            add(operation, "403", "Forbidden");
            add(operation, "404", "NotFound");
        }
        Rule::Platform(_) | Rule::Account | Rule::Holds(_) => add(operation, "403", "Forbidden"),
        Rule::Public | Rule::Authenticated => {}
    }
}

/// The refusals of the extractors: bodies, path and query parameters, headers.
fn extractors(operation: &mut Operation) {
    let mut malformed = Vec::new();
    if let Some(body) = &mut operation.request_body {
        optional_body_is_absent_not_null(body);
        if body.content.contains_key("application/json") {
            malformed.push("`malformed-json` or `malformed-body` (the body is not JSON)");
            add(operation, "413", "PayloadTooLarge");
            add(operation, "415", "UnsupportedMediaType");
            add(operation, "422", "InvalidBody");
        } else {
            malformed.push("`invalid-request` (the form is malformed)");
            add(operation, "413", "PayloadTooLarge");
        }
    }
    for parameter in operation.parameters.iter().flatten() {
        let what = match parameter.parameter_in {
            ParameterIn::Path => "`invalid-path-parameter`",
            ParameterIn::Query => "`invalid-query-parameter` or `invalid-consistency-token`",
            ParameterIn::Header => "`invalid-header`",
            ParameterIn::Cookie => continue,
        };
        if !malformed.contains(&what) {
            malformed.push(what);
        }
    }
    if !malformed.is_empty() {
        let description = format!("Malformed input: {}.", malformed.join("; "));
        operation
            .responses
            .responses
            .entry("400".into())
            .or_insert_with(|| problem(&description).into());
    }
}

/// An optional body (`request_body = Option<T>`, read by `OptionalJsonBody`) may be left out,
/// but a JSON `null` is no more accepted than any other wrong body: document `T`, not
/// required.
fn optional_body_is_absent_not_null(body: &mut utoipa::openapi::request_body::RequestBody) {
    use utoipa::openapi::schema::Schema;
    if body.required == Some(utoipa::openapi::Required::True) {
        return;
    }
    for content in body.content.values_mut() {
        if let Some(RefOr::T(Schema::OneOf(one_of))) = &content.schema {
            let not_null: Vec<_> = one_of
                .items
                .iter()
                .filter(|item| {
                    !matches!(item, RefOr::T(Schema::Object(o))
                        if o.schema_type == utoipa::openapi::schema::SchemaType::Type(Type::Null))
                })
                .cloned()
                .collect();
            if let [only] = not_null.as_slice() {
                content.schema = Some(only.clone());
            }
        }
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

route_table! {
    "" => [
        ops::health,
        ops::ready,
        wellknown::jwks,
        wellknown::openid_configuration,
        openapi::serve,
        oauth::token,
        oauth::introspect,
        oauth::revoke,
        keys::rotate,
        audit::events,
        audit::head,
        permissions::list,
        permissions::register,
        tenants::create,
        tenants::list,
        tenants::get,
        tenants::update,
        tenants::delete,
        tenants::block,
        tenants::unblock,
        entitlements::check,
        entitlements::policy_version,
    ],
    "/v1/auth" => [
        auth::login,
        auth::refresh,
        auth::logout,
        auth::logout_all,
        auth::change_password,
        auth::me,
        auth::mfa_enroll,
        auth::mfa_activate,
        auth::mfa_disable,
    ],
    "/v1/tenants/{tenant_id}/workspaces" => [
        workspaces::create,
        workspaces::list,
        workspaces::get,
        workspaces::update,
        workspaces::delete,
    ],
    "/v1/tenants/{tenant_id}/users" => [
        users::create,
        users::list,
        users::get,
        users::update,
        users::delete,
        users::disable,
        users::enable,
        users::unlock,
        users::reset_mfa,
        entitlements::lookup,
    ],
    "/v1/tenants/{tenant_id}/groups" => [
        groups::create,
        groups::list,
        groups::get,
        groups::delete,
        groups::add_member,
        groups::remove_member,
    ],
    "/v1/tenants/{tenant_id}/roles" => [
        roles::create,
        roles::list,
        roles::get,
        roles::rename,
        roles::delete,
        roles::grant,
        roles::revoke,
    ],
    "/v1/tenants/{tenant_id}/assignments" => [
        assignments::create,
        assignments::list,
        assignments::delete,
    ],
    "/v1/tenants/{tenant_id}/service-accounts" => [
        service_accounts::create,
        service_accounts::list,
        service_accounts::get,
        service_accounts::delete,
        service_accounts::rotate_secret,
        service_accounts::disable,
        service_accounts::enable,
    ],
}

#[cfg(test)]
mod tests {
    use actix_web::http::StatusCode;
    use actix_web::middleware::from_fn;
    use actix_web::{test as actix_test, App};

    use super::*;

    /// Every documented route is found from a concrete path of its own, and every other
    /// template actix would also match there has fewer literal segments.
    #[test]
    fn the_route_matcher_finds_each_documented_route() {
        let id = "0199a0b0-0000-7000-8000-000000000000";
        let paths: std::collections::BTreeSet<String> =
            operations().into_iter().map(|(_, p)| p).collect();
        for template in &paths {
            let concrete: String = template
                .split('/')
                .map(|s| if s.starts_with('{') { id } else { s })
                .collect::<Vec<_>>()
                .join("/");
            assert_eq!(
                documented_route(&concrete),
                Some(template.as_str()),
                "{concrete}"
            );
            for other in &paths {
                if other != template
                    && actix_web::dev::ResourceDef::new(other.as_str()).is_match(&concrete)
                {
                    let literals = |t: &str| t.split('/').filter(|s| !s.starts_with('{')).count();
                    assert!(
                        literals(other) < literals(template),
                        "{other} vs {template}"
                    );
                }
            }
        }
        assert_eq!(documented_route("/v1/nothing/here"), None);
        assert_eq!(documented_route("/v1/tenants//users"), None);
    }

    #[test]
    fn every_operation_is_unique_and_authorized() {
        let doc = ApiDoc::openapi();
        let mut ids = std::collections::HashSet::new();
        let mut count = 0;
        for (path, item) in doc.paths.paths.iter() {
            let mut item = item.clone();
            for (method, operation) in operations_mut(&mut item) {
                count += 1;
                let id = operation.operation_id.clone().expect("an operationId");
                assert!(ids.insert(id.clone()), "operationId {id} is used twice");
                assert!(rule(&method, path).is_some(), "{method} {path} has no rule");
                let served = allowed_methods(path).expect("a served path");
                assert!(served.contains(&method), "{method} {path} is not served");
            }
        }
        assert_eq!(count, operations().len(), "one operation per route");
    }

    /// A scope answers every path under its prefix: a route under the prefix of a group other
    /// than its own would never be reached.
    #[test]
    fn every_route_sits_under_one_scope_at_most() {
        for (method, path) in operations() {
            let under: Vec<&&str> = PREFIXES
                .iter()
                .filter(|p| !p.is_empty() && (path == **p || path.starts_with(&format!("{p}/"))))
                .collect();
            assert!(under.len() <= 1, "{method} {path} is under {under:?}");
        }
    }

    /// A route registered around the table (here after it, as a careless edit would) is never
    /// served: only documented operations pass `authorize`.
    #[actix_web::test]
    async fn routes_missing_from_the_document_are_refused() {
        let app = actix_test::init_service(
            App::new()
                .wrap(from_fn(crate::http::principal::authorize))
                .configure(crate::http::routes)
                .route("/debug/vars", web::get().to(|| async { "undocumented" }))
                .route("/health", web::delete().to(|| async { "undocumented" })),
        )
        .await;
        let call = |method: Method, path: &str| {
            actix_test::TestRequest::default()
                .method(method)
                .uri(path)
                .to_request()
        };
        let answer = actix_test::call_service(&app, call(Method::GET, "/debug/vars")).await;
        assert_eq!(answer.status(), StatusCode::NOT_FOUND);
        let refused = actix_test::call_service(&app, call(Method::DELETE, "/health")).await;
        assert_eq!(refused.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(refused.headers().get("allow").unwrap(), "GET");
        // The documented route itself is served.
        let health = actix_test::call_service(&app, call(Method::GET, "/health")).await;
        assert_eq!(health.status(), StatusCode::OK);
    }
}
