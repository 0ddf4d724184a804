//! Endpoints and headers: operational detail only on the operations listener, security
//! headers on every answer, the permission registry behind a permission, and a service role
//! that owns the log refused at start-up.

use reqwest::Method;
use secrecy::SecretString;
use serde_json::{json, Value};

use crate::auth::{get_as, login, tokens, PASSWORD};
use crate::helpers::{
    assert_problem, fresh_database, slug, spawn_app, spawn_app_with, test_config, url_for,
};

#[tokio::test]
async fn operational_detail_is_only_on_the_operations_listener() {
    let app = spawn_app().await;
    // The public listener: a bare status for load balancers, no metrics.
    let r = app.anonymous.get(app.url("/ready")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let ready: Value = r.json().await.unwrap();
    assert_eq!(ready, json!({"status": "ok"}));
    let r = app.anonymous.get(app.url("/metrics")).send().await.unwrap();
    assert_problem(r, 404, "not-found").await;
    // The operations listener: everything an operator needs, and nothing of the API.
    let detail: Value = app.ops("/ready").await.json().await.unwrap();
    assert_eq!(detail["status"], "ok");
    assert!(detail["projections"]
        .as_array()
        .is_some_and(|p| !p.is_empty()));
    assert!(detail.get("failed_events").is_some() && detail.get("relay").is_some());
    // The entitlement index has read the head of the log moments ago.
    assert!(
        detail["index"]["last_at_head_ms_ago"]
            .as_u64()
            .is_some_and(|ms| ms < 5_000),
        "{detail}"
    );
    assert!(detail["index"]["position"].is_string(), "{detail}");
    let metrics = app.ops("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("charter_http_requests_total"), "{metrics}");
    assert_eq!(app.ops("/health").await.status(), 200);
    assert_eq!(app.ops("/v1/tenants").await.status(), 404);
    assert!(
        app.ops_address.starts_with("http://127.0.0.1:"),
        "loopback by default"
    );
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let hsts = "max-age=63072000; includeSubDomains";
    let app = spawn_app_with(|c| c.http.strict_transport_security = Some(hsts.into())).await;
    let t = app.create_tenant(&slug("headers")).await;
    let tid = t["id"].as_str().unwrap();
    let cases: Vec<(Method, String, Option<Value>, bool)> = vec![
        (Method::GET, format!("/v1/tenants/{tid}/users"), None, true),
        (Method::GET, "/v1/auth/me".into(), None, true),
        (Method::GET, format!("/v1/tenants/{tid}/nope"), None, true),
        (
            Method::POST,
            "/v1/auth/login".into(),
            Some(json!({"tenant": tid, "username": "x", "password": "y"})),
            false,
        ),
        (Method::GET, "/health".into(), None, true),
        (Method::GET, "/ready".into(), None, true),
        (Method::GET, "/.well-known/jwks.json".into(), None, true),
        (Method::GET, "/openapi.json".into(), None, true),
    ];
    for (method, path, body, with_admin) in cases {
        let client = if with_admin {
            &app.http
        } else {
            &app.anonymous
        };
        let mut request = client.request(method.clone(), app.url(&path));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let r = request.send().await.unwrap();
        let headers = r.headers();
        let what = format!("{method} {path} ({})", r.status());
        assert_eq!(headers["x-content-type-options"], "nosniff", "{what}");
        assert_eq!(headers["strict-transport-security"], hsts, "{what}");
        let public = path.starts_with("/.well-known/") || path == "/openapi.json";
        if !public {
            assert_eq!(headers["cache-control"], "no-store", "{what}");
        }
    }
    // An unauthenticated refusal too.
    let r = app
        .anonymous
        .get(app.url(&format!("/v1/tenants/{tid}/users")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert_eq!(r.headers()["cache-control"], "no-store");
    // Without the setting, no HSTS (plain-HTTP development stacks).
    let plain = spawn_app().await;
    let r = plain
        .anonymous
        .get(plain.url("/health"))
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("strict-transport-security").is_none());
}

#[tokio::test]
async fn the_permission_registry_needs_iam_permissions_read() {
    let app = spawn_app().await;
    let t = app.create_tenant(&slug("registry")).await;
    let tid = t["id"].as_str().unwrap();
    let r = app
        .post(
            &format!("/v1/tenants/{tid}/roles"),
            json!({"name": "groups-only", "permissions": ["iam.groups.read"]}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let role = r.json::<Value>().await.unwrap()["data"]["id"].clone();
    for (username, role) in [("quinn", role), ("rita", Value::Null)] {
        let r = app
            .post(
                &format!("/v1/tenants/{tid}/users"),
                json!({"username": username, "email": format!("{username}@example.com"),
                       "password": PASSWORD}),
            )
            .await;
        let uid = r.json::<Value>().await.unwrap()["data"]["id"].clone();
        let role = if role.is_null() {
            Value::String(crate::auth::role_id(&app, tid, "viewer").await)
        } else {
            role
        };
        let r = app
            .post(
                &format!("/v1/tenants/{tid}/assignments"),
                json!({"role_id": role, "user_id": uid}),
            )
            .await;
        assert_eq!(r.status(), 201);
    }
    app.projected().await;
    let (without, _) = tokens(login(&app, tid, "quinn", PASSWORD, None).await).await;
    let r = get_as(&app, &without, "/v1/permissions").await;
    assert_problem(r, 403, "forbidden").await;
    // The viewer role holds every read but the audit log's, this one included.
    let (with, _) = tokens(login(&app, tid, "rita", PASSWORD, None).await).await;
    let r = get_as(&app, &with, "/v1/permissions").await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn a_service_role_that_owns_the_log_is_refused_at_start() {
    let database = fresh_database().await;
    let mut config = test_config(&database);
    // No separate schema owner: the service would migrate, and own, `events` itself.
    config.database.url = SecretString::from(url_for("DATABASE_OWNER_URL", &database));
    config.database.migration_url = None;
    let refused = charter::startup::Application::build(config.clone())
        .await
        .err()
        .expect("refused");
    let message = refused.to_string();
    assert!(message.contains("owns the `events` table"), "{message}");
    assert!(
        message.contains("database.migration_url") && message.contains("CHARTER_DATABASE__URL"),
        "{message}"
    );
    // A superuser could do the same.
    config.database.url = SecretString::from(url_for("DATABASE_ADMIN_URL", &database));
    let refused = charter::startup::Application::build(config)
        .await
        .err()
        .expect("refused");
    assert!(refused.to_string().contains("superuser"), "{refused}");
}
