//! The route table: every route of the API, once, with what it requires of its caller.
//!
//! Each row names the method, the path, the handler and the [`Rule`] (the permission and the
//! scope it is needed in). From this one table come:
//! - the actix registration ([`configure`]): a handler is served exactly at its row;
//! - the OpenAPI document ([`document`], `GET /openapi.json`, committed as
//!   `schemas/openapi.json`), from each handler's `#[utoipa::path]` and its row's rule;
//! - the `Allow` header of a 405 ([`allowed_methods`]);
//! - authorization ([`rule`], enforced by [`super::authorize`] before any handler runs), so a
//!   route registered around the table is never served.
//!
//! A row's method and path must be the ones its handler's `#[utoipa::path]` documents;
//! registration checks it, so the two cannot drift apart.

use std::collections::HashMap;
use std::sync::OnceLock;

use actix_web::http::Method;
use actix_web::{web, ResponseError};
use utoipa::openapi::path::HttpMethod;
use utoipa::OpenApi;

use super::access::Rule;
use super::api::{
    account, assignments, audit, auth, entitlements, groups, keys, mfa, oauth, ops, permissions,
    roles, service_accounts, tenants, users, wellknown, workspaces,
};
use super::docs::OpenApiDocument;
use super::problem::ApiError;

/// One row of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub method: Method,
    /// The path template, as actix and the document spell it (`/v1/tenants/{tenant_id}`).
    pub path: &'static str,
    pub rule: Rule,
}

/// The table: each group is served in a scope of its prefix (`""`: the root), so the router
/// matches a prefix before the routes under it. A scope answers every path under its prefix,
/// so no route may sit under another group's prefix.
macro_rules! route_table {
    ($($prefix:literal => [
        $($method:ident $path:literal => $module:ident :: $handler:ident, $rule:expr;)+
    ]),+ $(,)?) => {
        pastey::paste! {
            /// The OpenAPI document of every route in the table, before [`super::openapi::finish`].
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
            )]
            struct ApiDoc;

            /// Every row of the table, in its order.
            pub fn table() -> &'static [Route] {
                static TABLE: OnceLock<Vec<Route>> = OnceLock::new();
                TABLE.get_or_init(|| {
                    use Rule::*;
                    vec![$($(Route { method: Method::$method, path: $path, rule: $rule }),+),+]
                })
            }

            /// Registers every row at its method and path, each group in its scope.
            fn register(cfg: &mut web::ServiceConfig) {
                $(
                    register_group(cfg, $prefix, vec![$(
                        route::<$module::[<__path_ $handler>], _, _>(
                            $prefix, Method::$method, $path, $module::$handler,
                        )
                    ),+]);
                )+
            }

            /// The prefixes of the table's groups.
            #[cfg(test)]
            const PREFIXES: &[&str] = &[$($prefix),+];
        }
    };
}

route_table! {
    "" => [
        GET "/health" => ops::health, Public;
        GET "/ready" => ops::ready, Public;
        GET "/.well-known/jwks.json" => wellknown::jwks, Public;
        GET "/.well-known/openid-configuration" => wellknown::openid_configuration, Public;
        GET "/openapi.json" => ops::openapi, Public;
        POST "/v1/oauth/token" => oauth::token, Public;
        POST "/v1/tokens/introspect" => oauth::introspect, Authenticated;
        POST "/v1/tokens/revoke" => oauth::revoke, Authenticated;
        POST "/v1/keys/rotate" => keys::rotate, Platform("iam.keys.write");
        // iam.audit.read, platform-wide or in the caller's tenant (the handler scopes it).
        GET "/v1/audit/events" => audit::events, Authenticated;
        GET "/v1/audit/head" => audit::head, Authenticated;
        GET "/v1/permissions" => permissions::list, Holds("iam.permissions.read");
        POST "/v1/permissions/register" => permissions::register, Platform("iam.permissions.write");
        // Creation and listing depend on the body and the caller (the handlers decide).
        POST "/v1/tenants" => tenants::create, Authenticated;
        GET "/v1/tenants" => tenants::list, Authenticated;
        GET "/v1/tenants/{tenant_id}" => tenants::get, Tenant("iam.tenants.read");
        // A tenant's lifecycle is its parent's business.
        PATCH "/v1/tenants/{tenant_id}" => tenants::update, Parent("iam.tenants.write");
        DELETE "/v1/tenants/{tenant_id}" => tenants::delete, Parent("iam.tenants.write");
        POST "/v1/tenants/{tenant_id}/block" => tenants::block, Parent("iam.tenants.write");
        POST "/v1/tenants/{tenant_id}/unblock" => tenants::unblock, Parent("iam.tenants.write");
        POST "/v1/tenants/{tenant_id}/check" => entitlements::check, Tenant("iam.entitlements.read");
        GET "/v1/tenants/{tenant_id}/policy-version" => entitlements::policy_version,
            Tenant("iam.entitlements.read");
    ],
    "/v1/auth" => [
        POST "/v1/auth/login" => auth::login, Public;
        POST "/v1/auth/refresh" => auth::refresh, Public;
        // Logging out is what a service holding a user's workspace token may still do.
        POST "/v1/auth/logout" => account::logout, Authenticated;
        POST "/v1/auth/logout-all" => account::logout_all, Account;
        POST "/v1/auth/password" => account::change_password, Account;
        GET "/v1/auth/me" => account::me, Account;
        POST "/v1/auth/mfa/enroll" => mfa::mfa_enroll, Account;
        POST "/v1/auth/mfa/activate" => mfa::mfa_activate, Account;
        POST "/v1/auth/mfa/disable" => mfa::mfa_disable, Account;
    ],
    "/v1/tenants/{tenant_id}/workspaces" => [
        POST "/v1/tenants/{tenant_id}/workspaces" => workspaces::create,
            Tenant("iam.workspaces.write");
        GET "/v1/tenants/{tenant_id}/workspaces" => workspaces::list,
            Tenant("iam.workspaces.read");
        GET "/v1/tenants/{tenant_id}/workspaces/{workspace_id}" => workspaces::get,
            Tenant("iam.workspaces.read");
        PATCH "/v1/tenants/{tenant_id}/workspaces/{workspace_id}" => workspaces::update,
            Tenant("iam.workspaces.write");
        DELETE "/v1/tenants/{tenant_id}/workspaces/{workspace_id}" => workspaces::delete,
            Tenant("iam.workspaces.write");
    ],
    "/v1/tenants/{tenant_id}/users" => [
        POST "/v1/tenants/{tenant_id}/users" => users::create, Tenant("iam.users.write");
        GET "/v1/tenants/{tenant_id}/users" => users::list, Tenant("iam.users.read");
        GET "/v1/tenants/{tenant_id}/users/{user_id}" => users::get, Tenant("iam.users.read");
        PATCH "/v1/tenants/{tenant_id}/users/{user_id}" => users::update,
            Tenant("iam.users.write");
        DELETE "/v1/tenants/{tenant_id}/users/{user_id}" => users::delete,
            Tenant("iam.users.write");
        POST "/v1/tenants/{tenant_id}/users/{user_id}/disable" => users::disable,
            Tenant("iam.users.write");
        POST "/v1/tenants/{tenant_id}/users/{user_id}/enable" => users::enable,
            Tenant("iam.users.write");
        POST "/v1/tenants/{tenant_id}/users/{user_id}/unlock" => users::unlock,
            Tenant("iam.users.write");
        POST "/v1/tenants/{tenant_id}/users/{user_id}/mfa/reset" => users::reset_mfa,
            Tenant("iam.users.write");
        GET "/v1/tenants/{tenant_id}/users/{user_id}/entitlements" => entitlements::lookup,
            Tenant("iam.entitlements.read");
    ],
    "/v1/tenants/{tenant_id}/groups" => [
        POST "/v1/tenants/{tenant_id}/groups" => groups::create, Tenant("iam.groups.write");
        GET "/v1/tenants/{tenant_id}/groups" => groups::list, Tenant("iam.groups.read");
        GET "/v1/tenants/{tenant_id}/groups/{group_id}" => groups::get,
            Tenant("iam.groups.read");
        DELETE "/v1/tenants/{tenant_id}/groups/{group_id}" => groups::delete,
            Tenant("iam.groups.write");
        PUT "/v1/tenants/{tenant_id}/groups/{group_id}/members/{user_id}" => groups::add_member,
            Tenant("iam.groups.write");
        DELETE "/v1/tenants/{tenant_id}/groups/{group_id}/members/{user_id}" =>
            groups::remove_member, Tenant("iam.groups.write");
    ],
    "/v1/tenants/{tenant_id}/roles" => [
        POST "/v1/tenants/{tenant_id}/roles" => roles::create, Tenant("iam.roles.write");
        GET "/v1/tenants/{tenant_id}/roles" => roles::list, Tenant("iam.roles.read");
        GET "/v1/tenants/{tenant_id}/roles/{role_id}" => roles::get, Tenant("iam.roles.read");
        PATCH "/v1/tenants/{tenant_id}/roles/{role_id}" => roles::rename,
            Tenant("iam.roles.write");
        DELETE "/v1/tenants/{tenant_id}/roles/{role_id}" => roles::delete,
            Tenant("iam.roles.write");
        POST "/v1/tenants/{tenant_id}/roles/{role_id}/permissions" => roles::grant,
            Tenant("iam.roles.write");
        DELETE "/v1/tenants/{tenant_id}/roles/{role_id}/permissions/{name}" => roles::revoke,
            Tenant("iam.roles.write");
    ],
    "/v1/tenants/{tenant_id}/assignments" => [
        POST "/v1/tenants/{tenant_id}/assignments" => assignments::create,
            Tenant("iam.assignments.write");
        GET "/v1/tenants/{tenant_id}/assignments" => assignments::list,
            Tenant("iam.assignments.read");
        DELETE "/v1/tenants/{tenant_id}/assignments/{assignment_id}" => assignments::delete,
            Tenant("iam.assignments.write");
    ],
    // Service accounts hold credentials: reading them needs the write permission too.
    "/v1/tenants/{tenant_id}/service-accounts" => [
        POST "/v1/tenants/{tenant_id}/service-accounts" => service_accounts::create,
            Tenant("iam.service_accounts.write");
        GET "/v1/tenants/{tenant_id}/service-accounts" => service_accounts::list,
            Tenant("iam.service_accounts.write");
        GET "/v1/tenants/{tenant_id}/service-accounts/{service_account_id}" =>
            service_accounts::get, Tenant("iam.service_accounts.write");
        DELETE "/v1/tenants/{tenant_id}/service-accounts/{service_account_id}" =>
            service_accounts::delete, Tenant("iam.service_accounts.write");
        POST "/v1/tenants/{tenant_id}/service-accounts/{service_account_id}/rotate-secret" =>
            service_accounts::rotate_secret, Tenant("iam.service_accounts.write");
        POST "/v1/tenants/{tenant_id}/service-accounts/{service_account_id}/disable" =>
            service_accounts::disable, Tenant("iam.service_accounts.write");
        POST "/v1/tenants/{tenant_id}/service-accounts/{service_account_id}/enable" =>
            service_accounts::enable, Tenant("iam.service_accounts.write");
        // A platform grant reaches every tenant, so only a platform administrator hands one
        // out (and only what its own platform grants cover: the decision checks it).
        PUT "/v1/tenants/{tenant_id}/service-accounts/{service_account_id}/platform-access" =>
            service_accounts::set_platform_access, Platform("iam.platform_access.write");
    ],
}

/// Every route of the table, the document it is described by, and the problem+json 404 of
/// anything else.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(super::extract::path_config())
        .app_data(super::extract::query_config())
        .app_data(web::Data::new(OpenApiDocument(document())))
        .configure(register)
        .default_service(web::to(|| async {
            ApiError::NotFound("no such route".into()).error_response()
        }));
}

/// The document, rendered once: pretty-printed, keys in a stable order, newline-terminated
/// (byte for byte the committed `schemas/openapi.json`).
pub fn document() -> &'static str {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let mut doc = ApiDoc::openapi();
        super::openapi::finish(&mut doc, rule);
        doc.to_pretty_json().expect("the document serializes") + "\n"
    })
}

/// The rule of `method` on the route `pattern`, or `None` when the table has no such row.
pub fn rule(method: &Method, pattern: &str) -> Option<Rule> {
    static RULES: OnceLock<HashMap<(Method, &'static str), Rule>> = OnceLock::new();
    RULES
        .get_or_init(|| {
            table()
                .iter()
                .map(|r| ((r.method.clone(), r.path), r.rule))
                .collect()
        })
        .get(&(method.clone(), pattern))
        .copied()
}

/// The methods served on the route `pattern`, or `None` for a pattern the table lacks.
pub fn allowed_methods(pattern: &str) -> Option<&'static [Method]> {
    static SERVED: OnceLock<HashMap<&'static str, Vec<Method>>> = OnceLock::new();
    SERVED
        .get_or_init(|| {
            let mut served: HashMap<&'static str, Vec<Method>> = HashMap::new();
            for route in table() {
                served
                    .entry(route.path)
                    .or_default()
                    .push(route.method.clone());
            }
            served
        })
        .get(pattern)
        .map(Vec::as_slice)
}

/// The route a request's path matches, computed once per request and kept in its extensions
/// (the authorization, metrics and tracing layers all need it). Table routes are matched
/// segment by segment (a literal segment beats a parameter); only a path no row matches falls
/// back to actix's `match_pattern`, which tries every registered route's regex in turn.
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

/// The table's route template `path` matches, if any.
pub fn documented_route(path: &str) -> Option<&'static str> {
    /// Each template's segments (`None` for a `{parameter}`), and the template.
    type Templates = Vec<(Vec<Option<&'static str>>, &'static str)>;
    static TEMPLATES: OnceLock<Templates> = OnceLock::new();
    let templates = TEMPLATES.get_or_init(|| {
        let mut paths: Vec<&'static str> = table().iter().map(|r| r.path).collect();
        paths.sort();
        paths.dedup();
        paths
            .into_iter()
            .map(|p| {
                let segments = p
                    .split('/')
                    .map(|s| (!(s.starts_with('{') && s.ends_with('}'))).then_some(s))
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
        .map(|(_, p)| *p)
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

/// The actix route of one row, relative to `prefix`, the scope it is listed under. Panics
/// (at start-up, and in every test) when the row and the handler's documentation disagree.
fn route<P, F, Args>(
    prefix: &str,
    method: Method,
    path: &'static str,
    handler: F,
) -> (&'static str, actix_web::Route)
where
    P: utoipa::Path,
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    let documented: Vec<Method> = P::methods().iter().map(actix_method).collect();
    assert!(
        P::path() == path && documented == [method.clone()],
        "the row {method} {path} disagrees with its handler's documentation: {documented:?} {}",
        P::path()
    );
    let relative = path
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("{path} is listed under {prefix:?}, which is not its prefix"));
    (relative, web::method(method).to(handler))
}

/// Registers one group of the table: at the root for `""`, else in a scope of that prefix.
fn register_group(
    cfg: &mut web::ServiceConfig,
    prefix: &str,
    routes: Vec<(&'static str, actix_web::Route)>,
) {
    if prefix.is_empty() {
        for (path, route) in routes {
            cfg.route(path, route);
        }
    } else {
        let scope = routes
            .into_iter()
            .fold(web::scope(prefix), |scope, (path, route)| {
                scope.route(path, route)
            });
        cfg.service(scope);
    }
}

#[cfg(test)]
mod tests;
