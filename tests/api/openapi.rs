//! `schemas/openapi.json` is the OpenAPI document `GET /openapi.json` serves, generated from the
//! code (the route table in `src/http/routes.rs`). The committed file must be what the code
//! generates, every documented operation must be served and answer as documented, nothing
//! undocumented may be served, and real responses must validate against the document.
//! Regenerate with `CHARTER_BLESS=1 ops/test -- openapi`.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::OnceLock;

use reqwest::{Method, Response};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::auth::{user_with_role, PASSWORD};
use crate::helpers::{login_eventually, slug, spawn_app, TestApp, ADMIN, ADMIN_PASSWORD};

pub fn document_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schemas/openapi.json")
}

/// The committed document, parsed.
pub fn document() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let text = std::fs::read_to_string(document_path()).unwrap_or_else(|_| {
            panic!(
                "{} is missing; run with CHARTER_BLESS=1",
                document_path().display()
            )
        });
        serde_json::from_str(&text).expect("schemas/openapi.json is JSON")
    })
}

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// Every (method, path template) the document lists.
fn operations(doc: &Value) -> Vec<(Method, String)> {
    let mut all = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            if item.get(method).is_some() {
                all.push((method.to_uppercase().parse().unwrap(), path.clone()));
            }
        }
    }
    all
}

/// Follows a local `$ref` (`#/components/...`).
fn resolve<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(reference) => doc
            .pointer(reference.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("dangling {reference}")),
        None => value,
    }
}

/// Checks one answer of `method template` against the document and returns its JSON body
/// (`Null` when there is none): the status must be documented for the operation, the content
/// type too, and the body must validate against the documented schema.
pub async fn conform(method: &Method, template: &str, response: Response) -> Value {
    let doc = document();
    let status = response.status().as_u16();
    let what = format!("{method} {template} answered {status}");
    let operation = &doc["paths"][template][method.as_str().to_lowercase()];
    assert!(
        operation.is_object(),
        "{method} {template} is not documented"
    );
    let documented = operation["responses"]
        .get(status.to_string())
        .unwrap_or_else(|| panic!("{what}, which is not documented"));
    let documented = resolve(doc, documented);
    let content_type = response.headers().get("content-type").map(|v| {
        v.to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .trim()
            .to_owned()
    });
    let bytes = response.bytes().await.unwrap();
    let Some(content) = documented.get("content").and_then(Value::as_object) else {
        assert!(
            bytes.is_empty(),
            "{what} with a body, documented without one"
        );
        return Value::Null;
    };
    let content_type = content_type.unwrap_or_else(|| panic!("{what} without a content type"));
    let media = content.get(&content_type).unwrap_or_else(|| {
        panic!(
            "{what} as {content_type}, documented as {:?}",
            content.keys()
        )
    });
    if !content_type.ends_with("json") {
        assert!(!bytes.is_empty(), "{what}: an empty {content_type} body");
        return Value::Null;
    }
    let body: Value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("{what}: the body is not JSON ({e})"));
    let errors = violations(doc, &media["schema"], &body);
    assert!(
        errors.is_empty(),
        "{what}: the body does not match the document: {errors:#?}\n{body:#}"
    );
    body
}

/// What is wrong with `instance` under `schema`, a schema of the document (its `$ref`s resolve
/// against the document's components).
fn violations(doc: &Value, schema: &Value, instance: &Value) -> Vec<String> {
    let root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": doc["components"],
        "allOf": [schema],
    });
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(&root)
        .expect("the document's schemas compile");
    validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

#[tokio::test]
async fn the_served_document_is_the_committed_one() {
    let app = spawn_app().await;
    let r = app
        .anonymous
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    let served = r.text().await.unwrap();
    assert_eq!(served, charter::http::routes::document());
    if std::env::var("CHARTER_BLESS").is_ok() {
        std::fs::write(document_path(), &served).unwrap();
    }
    let committed = std::fs::read_to_string(document_path()).unwrap_or_else(|_| {
        panic!(
            "{} is missing; run with CHARTER_BLESS=1",
            document_path().display()
        )
    });
    assert!(
        committed == served,
        "{} is out of date; run with CHARTER_BLESS=1",
        document_path().display()
    );
    let doc: Value = serde_json::from_str(&served).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    // Every route the README and DESIGN name, operational ones included.
    let listed: BTreeSet<String> = operations(&doc)
        .into_iter()
        .map(|(m, p)| format!("{m} {p}"))
        .collect();
    for expected in [
        "GET /health",
        "GET /ready",
        "GET /openapi.json",
        "GET /.well-known/jwks.json",
        "GET /.well-known/openid-configuration",
        "POST /v1/oauth/token",
        "POST /v1/tokens/introspect",
        "POST /v1/tokens/revoke",
        "POST /v1/keys/rotate",
        "GET /v1/audit/events",
        "POST /v1/auth/login",
        "PUT /v1/tenants/{tenant_id}/groups/{group_id}/members/{user_id}",
        "GET /v1/tenants/{tenant_id}/users/{user_id}/entitlements",
        "POST /v1/tenants/{tenant_id}/service-accounts/{service_account_id}/rotate-secret",
        "PUT /v1/tenants/{tenant_id}/service-accounts/{service_account_id}/platform-access",
    ] {
        assert!(listed.contains(expected), "{expected} is not documented");
    }
    // Public routes need no token; everything else under /v1 does.
    for (method, path) in operations(&doc) {
        let operation = &doc["paths"][&path][method.as_str().to_lowercase()];
        let bearer = operation["security"]
            .as_array()
            .is_some_and(|s| s.iter().any(|r| r.get("bearer").is_some()));
        let public = !path.starts_with("/v1/")
            || ["/v1/auth/login", "/v1/auth/refresh", "/v1/oauth/token"].contains(&path.as_str());
        assert_eq!(bearer, !public, "{method} {path}: bearer security");
    }
}

/// Each documented operation, called with made-up parameters and no body, is served (not the
/// router's 404 or 405) and answers one of its documented responses.
#[tokio::test]
async fn every_documented_operation_is_served_as_documented() {
    let app = spawn_app().await;
    let doc = document();
    let concrete = |template: &str| {
        template
            .split('/')
            .map(|segment| match segment {
                "{tenant_id}" => Uuid::now_v7().to_string(),
                s if s.starts_with('{') => "-".to_owned(),
                s => s.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("/")
    };
    // Logging out ends the caller's session: those two go last, each with a token of its own.
    let ends_sessions = |path: &str| path.starts_with("/v1/auth/logout");
    let (mut last, mut first): (Vec<_>, Vec<_>) = operations(doc)
        .into_iter()
        .partition(|(_, path)| ends_sessions(path));
    first.append(&mut last);
    let root = app.config.bootstrap.tenant.clone().unwrap();
    for (method, template) in first {
        let token = if ends_sessions(&template) {
            let tokens = login_eventually(&app.address, &root, ADMIN, ADMIN_PASSWORD).await;
            tokens["access_token"].as_str().unwrap().to_owned()
        } else {
            String::new()
        };
        let mut request = app
            .http
            .request(method.clone(), app.url(&concrete(&template)));
        if !token.is_empty() {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        assert_ne!(status, 405, "{method} {template} is not served");
        let body = conform(&method, &template, response).await;
        assert!(
            !(status == 404 && body["detail"] == "no such route"),
            "{method} {template} is not routed"
        );
    }
}

/// Nothing the document does not list is served: another method on a documented path is a
/// 405 that names the documented ones, and a path it does not know is a 404.
#[tokio::test]
async fn undocumented_methods_and_paths_are_refused() {
    let app = spawn_app().await;
    let doc = document();
    for (path, item) in doc["paths"].as_object().unwrap() {
        let documented: Vec<&str> = METHODS
            .into_iter()
            .filter(|m| item.get(*m).is_some())
            .collect();
        let concrete = path.replace("{tenant_id}", &Uuid::now_v7().to_string());
        for method in METHODS.into_iter().filter(|m| !documented.contains(m)) {
            let method: Method = method.to_uppercase().parse().unwrap();
            let r = app
                .anonymous
                .request(method.clone(), app.url(&concrete))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 405, "{method} {path}");
            let allow: BTreeSet<String> = r.headers()["allow"]
                .to_str()
                .unwrap()
                .split(", ")
                .map(str::to_lowercase)
                .collect();
            let expected: BTreeSet<String> = documented.iter().map(|m| m.to_string()).collect();
            assert_eq!(allow, expected, "Allow of {path}");
            crate::helpers::assert_problem(r, 405, "method-not-allowed").await;
        }
    }
    let r = app
        .anonymous
        .get(app.url("/v1/nowhere"))
        .send()
        .await
        .unwrap();
    crate::helpers::assert_problem(r, 404, "not-found").await;
}

/// Sends `method path` with `body` (JSON) as the platform administrator and checks the answer
/// against the operation `template`; returns the status and the body.
async fn call(
    app: &TestApp,
    method: Method,
    template: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let r = app.send(method.clone(), path, body).await;
    let status = r.status().as_u16();
    (status, conform(&method, template, r).await)
}

/// A tour of the API whose every answer, successes and problems alike, validates against the
/// document.
#[tokio::test]
async fn real_answers_validate_against_the_document() {
    let app = spawn_app().await;
    let post = Method::POST;
    let get = Method::GET;

    let (s, tenant) = call(
        &app,
        post.clone(),
        "/v1/tenants",
        "/v1/tenants",
        Some(json!({"name": "Acme", "slug": slug("acme")})),
    )
    .await;
    assert_eq!(s, 201);
    let t = tenant["data"]["id"].as_str().unwrap().to_owned();
    let tenant_path = format!("/v1/tenants/{t}");
    let (s, _) = call(
        &app,
        get.clone(),
        "/v1/tenants/{tenant_id}",
        &tenant_path,
        None,
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = call(
        &app,
        get.clone(),
        "/v1/tenants",
        "/v1/tenants?limit=2",
        None,
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = call(
        &app,
        Method::PATCH,
        "/v1/tenants/{tenant_id}",
        &tenant_path,
        Some(json!({"name": "Acme Corp"})),
    )
    .await;
    assert_eq!(s, 200);

    // Problems: 404, 409, 412, 415, 422 (two kinds), 401.
    let (s, _) = call(
        &app,
        get.clone(),
        "/v1/tenants/{tenant_id}",
        &format!("/v1/tenants/{}", Uuid::now_v7()),
        None,
    )
    .await;
    assert_eq!(s, 404);
    let (s, _) = call(
        &app,
        post.clone(),
        "/v1/tenants",
        "/v1/tenants",
        Some(json!({"name": "Again", "slug": tenant["data"]["slug"]})),
    )
    .await;
    assert_eq!(s, 409);
    let (s, _) = call(
        &app,
        post.clone(),
        "/v1/tenants",
        "/v1/tenants",
        Some(json!({"name": "", "slug": "Not A Slug"})),
    )
    .await;
    assert_eq!(s, 422);
    let (s, _) = call(
        &app,
        post.clone(),
        "/v1/tenants",
        "/v1/tenants",
        Some(json!({"name": "x", "slug": "ok-slug", "colour": "red"})),
    )
    .await;
    assert_eq!(s, 422);
    let r = app
        .http
        .patch(app.url(&tenant_path))
        .header("If-Match", "\"1\"")
        .json(&json!({"name": "Stale"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 412);
    conform(&Method::PATCH, "/v1/tenants/{tenant_id}", r).await;
    let r = app
        .http
        .post(app.url("/v1/tenants"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    conform(&post, "/v1/tenants", r).await;
    let r = app
        .anonymous
        .get(app.url(&tenant_path))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    conform(&get, "/v1/tenants/{tenant_id}", r).await;

    // Workspaces, users, groups, roles, assignments, entitlements.
    let (s, w) = call(
        &app,
        post.clone(),
        "/v1/tenants/{tenant_id}/workspaces",
        &format!("{tenant_path}/workspaces"),
        Some(json!({"name": "Prod"})),
    )
    .await;
    assert_eq!(s, 201);
    let w = w["data"]["id"].as_str().unwrap().to_owned();
    let (s, _) = call(
        &app,
        get.clone(),
        "/v1/tenants/{tenant_id}/workspaces/{workspace_id}",
        &format!("{tenant_path}/workspaces/{w}"),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let (s, user) = call(
        &app,
        post.clone(),
        "/v1/tenants/{tenant_id}/users",
        &format!("{tenant_path}/users"),
        Some(json!({"username": "ada", "email": "ada@example.com", "password": PASSWORD})),
    )
    .await;
    assert_eq!(s, 201);
    let u = user["data"]["id"].as_str().unwrap().to_owned();
    let (s, _) = call(
        &app,
        get.clone(),
        "/v1/tenants/{tenant_id}/users/{user_id}",
        &format!("{tenant_path}/users/{u}"),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = call(
        &app,
        Method::PATCH,
        "/v1/tenants/{tenant_id}/users/{user_id}",
        &format!("{tenant_path}/users/{u}"),
        Some(json!({"display_name": null})),
    )
    .await;
    assert_eq!(s, 200);
    let (s, g) = call(
        &app,
        post.clone(),
        "/v1/tenants/{tenant_id}/groups",
        &format!("{tenant_path}/groups"),
        Some(json!({"name": "Ops"})),
    )
    .await;
    assert_eq!(s, 201);
    let g = g["data"]["id"].as_str().unwrap().to_owned();
    let (s, _) = call(
        &app,
        Method::PUT,
        "/v1/tenants/{tenant_id}/groups/{group_id}/members/{user_id}",
        &format!("{tenant_path}/groups/{g}/members/{u}"),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = call(
        &app,
        get.clone(),
        "/v1/tenants/{tenant_id}/groups/{group_id}",
        &format!("{tenant_path}/groups/{g}"),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let (s, role) = call(
        &app,
        post.clone(),
        "/v1/tenants/{tenant_id}/roles",
        &format!("{tenant_path}/roles"),
        Some(json!({"name": "Reader", "permissions": ["iam.users.read"], "workspace_id": w})),
    )
    .await;
    assert_eq!(s, 201);
    let role = role["data"]["id"].as_str().unwrap().to_owned();
    let (s, _) = call(
        &app,
        post.clone(),
        "/v1/tenants/{tenant_id}/roles/{role_id}/permissions",
        &format!("{tenant_path}/roles/{role}/permissions"),
        Some(json!({"permissions": ["nobody.registered.this"]})),
    )
    .await;
    assert_eq!(s, 422);
    let (s, a) = call(
        &app,
        post.clone(),
        "/v1/tenants/{tenant_id}/assignments",
        &format!("{tenant_path}/assignments"),
        Some(json!({"role_id": role, "group_id": g})),
    )
    .await;
    assert_eq!(s, 201);
    let token = a["consistency_token"].as_str().unwrap();
    let (s, _) = call(
        &app,
        get.clone(),
        "/v1/tenants/{tenant_id}/assignments",
        &format!("{tenant_path}/assignments?consistency={token}"),
        None,
    )
    .await;
    assert_eq!(s, 200);
    for (template, path) in [
        (
            "/v1/tenants/{tenant_id}/users",
            format!("{tenant_path}/users"),
        ),
        (
            "/v1/tenants/{tenant_id}/groups",
            format!("{tenant_path}/groups"),
        ),
        (
            "/v1/tenants/{tenant_id}/roles",
            format!("{tenant_path}/roles?workspace_id={w}"),
        ),
        (
            "/v1/tenants/{tenant_id}/workspaces",
            format!("{tenant_path}/workspaces"),
        ),
        (
            "/v1/tenants/{tenant_id}/users/{user_id}/entitlements",
            format!("{tenant_path}/users/{u}/entitlements"),
        ),
        (
            "/v1/tenants/{tenant_id}/policy-version",
            format!("{tenant_path}/policy-version?workspace_id={w}"),
        ),
    ] {
        let (s, _) = call(&app, get.clone(), template, &path, None).await;
        assert_eq!(s, 200, "{path}");
    }
    let (s, check) = call(
        &app,
        post.clone(),
        "/v1/tenants/{tenant_id}/check",
        &format!("{tenant_path}/check"),
        Some(json!({"user_id": u, "permission": "iam.users.read", "workspace_id": w})),
    )
    .await;
    assert_eq!((s, &check["allowed"]), (200, &json!(true)));

    // Service accounts and the OAuth endpoints.
    let (s, sa) = call(
        &app,
        post.clone(),
        "/v1/tenants/{tenant_id}/service-accounts",
        &format!("{tenant_path}/service-accounts"),
        Some(json!({"name": "ci"})),
    )
    .await;
    assert_eq!(s, 201);
    // Every read model first, so that the token minted below is not stale at birth.
    let (s, _) = call(
        &app,
        get.clone(),
        "/v1/tenants/{tenant_id}/service-accounts",
        &format!(
            "{tenant_path}/service-accounts?consistency={}",
            sa["consistency_token"].as_str().unwrap()
        ),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let client_id = sa["data"]["client_id"].as_str().unwrap().to_owned();
    let secret = sa["data"]["client_secret"].as_str().unwrap().to_owned();
    let sa_path = format!(
        "{tenant_path}/service-accounts/{}",
        sa["data"]["id"].as_str().unwrap()
    );
    let (s, _) = call(
        &app,
        get.clone(),
        "/v1/tenants/{tenant_id}/service-accounts/{service_account_id}",
        &sa_path,
        None,
    )
    .await;
    assert_eq!(s, 200);
    let form = |secret: &str| {
        vec![
            ("grant_type", "client_credentials".to_owned()),
            ("client_id", client_id.clone()),
            ("client_secret", secret.to_owned()),
        ]
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let minted = loop {
        let r = app
            .anonymous
            .post(app.url("/v1/oauth/token"))
            .form(&form(&secret))
            .send()
            .await
            .unwrap();
        let status = r.status();
        let body = conform(&post, "/v1/oauth/token", r).await;
        if status == 200 {
            break body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the service account never projected"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let r = app
        .anonymous
        .post(app.url("/v1/oauth/token"))
        .form(&form("cs_wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    conform(&post, "/v1/oauth/token", r).await;
    let r = app
        .anonymous
        .post(app.url("/v1/oauth/token"))
        .form(&[("grant_type", "password")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    conform(&post, "/v1/oauth/token", r).await;
    let sa_token = minted["access_token"].as_str().unwrap();
    for token in [sa_token, "not.a.token"] {
        let r = app
            .http
            .post(app.url("/v1/tokens/introspect"))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap();
        let body = conform(&post, "/v1/tokens/introspect", r).await;
        assert_eq!(body["active"], token == sa_token, "{body}");
    }
    let r = app
        .http
        .post(app.url("/v1/tokens/revoke"))
        .form(&[("token", sa_token)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    conform(&post, "/v1/tokens/revoke", r).await;

    // A user's own session.
    user_with_role(&app, &t, "grace", "viewer").await;
    let tokens = login_eventually(&app.address, &t, "grace", PASSWORD).await;
    let access = tokens["access_token"].as_str().unwrap();
    let r = app
        .anonymous
        .get(app.url("/v1/auth/me"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    let me = conform(&get, "/v1/auth/me", r).await;
    assert_eq!(me["username"], "grace");
    let r = app
        .anonymous
        .post(app.url("/v1/auth/mfa/enroll"))
        .bearer_auth(access)
        .json(&json!({"password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    conform(&post, "/v1/auth/mfa/enroll", r).await;
    let r = app
        .anonymous
        .post(app.url("/v1/auth/refresh"))
        .json(&json!({"refresh_token": tokens["refresh_token"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    conform(&post, "/v1/auth/refresh", r).await;
    let r = app
        .anonymous
        .post(app.url("/v1/auth/login"))
        .json(&json!({"tenant": t, "username": "grace", "password": "wrong password!"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    conform(&post, "/v1/auth/login", r).await;

    // The platform's own: permissions, keys, audit, operations.
    let (s, _) = call(&app, post.clone(), "/v1/permissions/register", "/v1/permissions/register",
        Some(json!({"service": "billing", "permissions": [{"name": "billing.invoices.read", "label": "Read invoices"}]}))).await;
    assert_eq!(s, 200);
    let (s, _) = call(
        &app,
        get.clone(),
        "/v1/permissions",
        "/v1/permissions?service=billing",
        None,
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = call(
        &app,
        post.clone(),
        "/v1/keys/rotate",
        "/v1/keys/rotate",
        None,
    )
    .await;
    assert_eq!(s, 200);
    let (s, page) = call(
        &app,
        get.clone(),
        "/v1/audit/events",
        &format!("/v1/audit/events?tenant_id={t}&limit=5"),
        None,
    )
    .await;
    assert_eq!((s, page["items"].as_array().unwrap().len()), (200, 5));
    let (s, _) = call(&app, get.clone(), "/v1/audit/head", "/v1/audit/head", None).await;
    assert!(s == 200 || s == 404, "{s}");
    for path in [
        "/health",
        "/ready",
        "/.well-known/jwks.json",
        "/.well-known/openid-configuration",
        "/openapi.json",
    ] {
        let (s, _) = call(&app, get.clone(), path, path, None).await;
        assert_eq!(s, 200, "{path}");
    }
    // Deletions answer the deleted resource.
    let (s, _) = call(
        &app,
        Method::DELETE,
        "/v1/tenants/{tenant_id}/groups/{group_id}",
        &format!("{tenant_path}/groups/{g}"),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = call(
        &app,
        Method::DELETE,
        "/v1/tenants/{tenant_id}",
        &tenant_path,
        None,
    )
    .await;
    assert_eq!(s, 200);
}

/// The checker itself: a body that breaks the document is caught.
#[test]
fn conform_catches_a_body_that_breaks_the_document() {
    let doc = document();
    let schema = &doc["paths"]["/v1/tenants/{tenant_id}"]["get"]["responses"]["200"]["content"]
        ["application/json"]["schema"];
    let good = json!({
        "id": Uuid::now_v7(), "name": "A", "slug": "ab", "parent_id": null, "status": "active",
        "blocked_reason": null, "version": 1, "created_at": "2024-01-01T00:00:00Z",
        "updated_at": "2024-01-01T00:00:00Z"
    });
    assert!(violations(doc, schema, &good).is_empty());
    let mut missing = good.clone();
    missing.as_object_mut().unwrap().remove("parent_id");
    assert!(
        !violations(doc, schema, &missing).is_empty(),
        "required even when null"
    );
    let mut wrong = good;
    wrong["id"] = json!("not-a-uuid");
    assert!(
        !violations(doc, schema, &wrong).is_empty(),
        "formats are checked"
    );
}
