//! What the edge adds to every operation of the OpenAPI 3.1 document: the bearer requirement
//! and the 401/403/404 of each route's [`Rule`] (from the route table, [`super::routes`]),
//! the 400/413/415/422 of the body and parameter extractors, and the 500/503 every route can
//! answer. The document itself is assembled and served by [`super::routes`].

use actix_web::http::Method;
use utoipa::openapi::path::{Operation, ParameterIn, PathItem};
use utoipa::openapi::schema::Type;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::RefOr;

use super::access::Rule;
use super::docs::{problem, shared, shared_responses, BEARER, CLIENT_BASIC};

/// Adds to `doc` what the edge does to every operation (see the module documentation);
/// `rule_of` is the route table's rule for a method and path.
pub fn finish(doc: &mut utoipa::openapi::OpenApi, rule_of: impl Fn(&Method, &str) -> Option<Rule>) {
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
            let rule = rule_of(&method, path).unwrap_or_else(|| {
                panic!("{method} {path} is documented but missing from the authorization table")
            });
            authorization(operation, rule);
            extractors(operation);
            add(operation, "500", "Internal");
            add(operation, "503", "Unavailable");
        }
    }
}

pub(super) fn operations_mut(item: &mut PathItem) -> Vec<(Method, &mut Operation)> {
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
