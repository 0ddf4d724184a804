//! The route table's own invariants.

use actix_web::http::StatusCode;
use actix_web::middleware::from_fn;
use actix_web::{test as actix_test, App};
use utoipa::OpenApi;

use super::*;
use crate::http::openapi::operations_mut;

/// Every documented route is found from a concrete path of its own, and every other
/// template actix would also match there has fewer literal segments.
#[test]
fn the_route_matcher_finds_each_documented_route() {
    let id = "0199a0b0-0000-7000-8000-000000000000";
    let paths: std::collections::BTreeSet<String> =
        table().iter().map(|r| r.path.to_owned()).collect();
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
    assert_eq!(count, table().len(), "one operation per route");
}

/// A scope answers every path under its prefix: a route under the prefix of a group other
/// than its own would never be reached.
#[test]
fn every_route_sits_under_one_scope_at_most() {
    for Route { method, path, .. } in table() {
        let under: Vec<&&str> = PREFIXES
            .iter()
            .filter(|p| !p.is_empty() && (*path == **p || path.starts_with(&format!("{p}/"))))
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
            .wrap(from_fn(crate::http::authorize::authorize))
            .configure(configure)
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

/// Every route under a tenant needs a permission in that tenant (or above it, or platform-wide):
/// none is public or merely authenticated, which would let any token reach another tenant's data.
#[test]
fn every_tenant_route_needs_a_permission_in_the_tenant() {
    for route in table() {
        if route.path.starts_with("/v1/tenants/{tenant_id}") {
            assert!(
                matches!(
                    route.rule,
                    Rule::Tenant(_) | Rule::Parent(_) | Rule::Platform(_)
                ),
                "{} {} is {:?}",
                route.method,
                route.path,
                route.rule
            );
        }
    }
}

/// A row that disagrees with its handler's `#[utoipa::path]` is refused at registration.
#[test]
#[should_panic(expected = "disagrees with its handler's documentation")]
fn a_row_must_match_its_handlers_documentation() {
    let _ = route::<crate::http::api::ops::__path_health, _, _>(
        "",
        Method::POST,
        "/health",
        crate::http::api::ops::health,
    );
}

/// The permission of every tenant resource route follows one pattern: reading needs
/// `iam.<resource>.read` and changing needs `iam.<resource>.write` (service accounts hold
/// credentials: `write` for both; setting one's platform access needs a platform-wide
/// `iam.platform_access.write`); entitlements, `check` and `policy-version` need
/// `iam.entitlements.read`; the tenant itself is read in it and changed from a parent. A row
/// that hands a write the read permission fails here, not in production.
#[test]
fn every_tenant_route_needs_its_resources_read_or_write_permission() {
    for route in table() {
        let Some(rest) = route.path.strip_prefix("/v1/tenants/{tenant_id}") else {
            continue;
        };
        let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
        let read = route.method == Method::GET;
        let access = if read { "read" } else { "write" };
        let expected = match segments.as_slice() {
            [] if read => Rule::Tenant("iam.tenants.read"),
            [] | ["block" | "unblock"] => Rule::Parent("iam.tenants.write"),
            ["check"] | ["policy-version"] | ["users", _, "entitlements"] => {
                Rule::Tenant("iam.entitlements.read")
            }
            // Handing out a platform grant is the platform's business.
            ["service-accounts", _, "platform-access"] => {
                Rule::Platform("iam.platform_access.write")
            }
            ["service-accounts", ..] => Rule::Tenant("iam.service_accounts.write"),
            [resource, ..] => {
                let permission = format!("iam.{resource}.{access}");
                let Rule::Tenant(actual) = route.rule else {
                    panic!("{} {} is {:?}", route.method, route.path, route.rule);
                };
                assert_eq!(actual, permission, "{} {}", route.method, route.path);
                continue;
            }
        };
        assert_eq!(route.rule, expected, "{} {}", route.method, route.path);
    }
}
