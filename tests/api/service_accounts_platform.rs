//! A service account's platform access: a platform administrator sets the patterns its client
//! credentials tokens carry in every tenant (`PUT …/platform-access`), so a service can
//! register its permissions at start-up; tokens minted before a change are refused; nobody
//! else may set it; bad bodies are problems.

use reqwest::Method;
use serde_json::{json, Value};

use crate::auth::{get_as, login, tokens, until_refused, user_with_role, PASSWORD};
use crate::helpers::{assert_problem, slug, spawn_app, TestApp};
use crate::tokens::claims_of;

/// A service account of `tenant_id` created by the platform administrator: `(id, secret)`.
async fn service_account(app: &TestApp, tenant_id: &str, name: &str) -> (String, String) {
    let r = app
        .post(
            &format!("/v1/tenants/{tenant_id}/service-accounts"),
            json!({"name": name}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let body: Value = r.json().await.unwrap();
    // Its tokens are verified against the read model: wait until it shows the account.
    let token = body["consistency_token"].as_str().unwrap();
    let r = app
        .get(&format!(
            "/v1/tenants/{tenant_id}/service-accounts?consistency={token}&limit=1"
        ))
        .await;
    assert_eq!(r.status(), 200);
    (
        body["data"]["client_id"].as_str().unwrap().to_owned(),
        body["data"]["client_secret"].as_str().unwrap().to_owned(),
    )
}

/// A client credentials token of the account.
async fn grant(app: &TestApp, id: &str, secret: &str) -> String {
    let r = app
        .anonymous
        .post(app.url("/v1/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", secret),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn platform_access(tenant_id: &str, id: &str) -> String {
    format!("/v1/tenants/{tenant_id}/service-accounts/{id}/platform-access")
}

/// `PUT …/platform-access` with `token` (the platform administrator's when `None`).
async fn set_as(app: &TestApp, token: Option<&str>, path: &str, body: Value) -> reqwest::Response {
    match token {
        None => app.send(Method::PUT, path, Some(body)).await,
        Some(token) => app
            .anonymous
            .put(app.url(path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap(),
    }
}

/// What registering a permission with `token` answers.
async fn register_as(app: &TestApp, token: &str, service: &str) -> reqwest::Response {
    app.anonymous
        .post(app.url("/v1/permissions/register"))
        .bearer_auth(token)
        .json(&json!({"service": service, "permissions":
            [{"name": format!("{service}.read"), "label": "Read"}]}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_service_account_given_platform_access_registers_its_permissions() {
    let app = spawn_app().await;
    let t = app.create_tenant(&slug("sap")).await;
    let tid = t["id"].as_str().unwrap();
    let (id, secret) = service_account(&app, tid, "connector").await;

    // Before the grant: no platform permissions, and registering is refused.
    let before = grant(&app, &id, &secret).await;
    let claims = claims_of(&before);
    assert!(claims.get("platform_permissions").is_none(), "{claims}");
    assert_eq!(claims["account_version"], 0);
    assert_problem(
        register_as(&app, &before, "connector").await,
        403,
        "forbidden",
    )
    .await;

    // The platform administrator grants iam.permissions.write (listed twice: it counts once).
    let path = platform_access(tid, &id);
    let r = set_as(
        &app,
        None,
        &path,
        json!({"permissions": ["iam.permissions.write", "iam.permissions.write"]}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["data"]["platform_permissions"],
        json!(["iam.permissions.write"])
    );
    assert_eq!(body["events"].as_array().unwrap().len(), 1, "{body}");
    // The same set again appends nothing.
    let r = set_as(
        &app,
        None,
        &path,
        json!({"permissions": ["iam.permissions.write"]}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let again: Value = r.json().await.unwrap();
    assert_eq!(again["events"], json!([]), "{again}");

    // The token minted before the change is refused once the change is projected.
    until_refused(&app, &before).await;
    let refused = assert_problem(
        get_as(&app, &before, "/v1/auth/me").await,
        401,
        "invalid-token",
    )
    .await;
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("platform access"),
        "{refused}"
    );

    // A fresh token carries the grant and the new account version, and registers.
    let granted = grant(&app, &id, &secret).await;
    let claims = claims_of(&granted);
    assert_eq!(
        claims["platform_permissions"],
        json!(["iam.permissions.write"])
    );
    assert_eq!(claims["account_version"], 1);
    let r = register_as(&app, &granted, "connector").await;
    assert_eq!(r.status(), 200);
    // ...but nothing beyond it: its tenant roles are still none.
    assert_problem(
        get_as(&app, &granted, &format!("/v1/tenants/{tid}/users")).await,
        403,
        "forbidden",
    )
    .await;

    // The read model lists it (after the grant's position), and a read shows it.
    let token = body["consistency_token"].as_str().unwrap();
    let listed: Value = app
        .get(&format!(
            "/v1/tenants/{tid}/service-accounts?consistency={token}"
        ))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        listed["items"][0]["platform_permissions"],
        json!(["iam.permissions.write"]),
        "{listed}"
    );
    let read: Value = app
        .get(&format!("/v1/tenants/{tid}/service-accounts/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        read["platform_permissions"],
        json!(["iam.permissions.write"])
    );

    // Taking it away ([]) ends the tokens that carried it, and new ones carry nothing.
    let r = set_as(&app, None, &path, json!({"permissions": []})).await;
    assert_eq!(r.status(), 200);
    let removed: Value = r.json().await.unwrap();
    assert_eq!(removed["data"]["platform_permissions"], json!([]));
    until_refused(&app, &granted).await;
    assert_problem(
        register_as(&app, &granted, "connector").await,
        401,
        "invalid-token",
    )
    .await;
    let after = grant(&app, &id, &secret).await;
    let claims = claims_of(&after);
    assert!(claims.get("platform_permissions").is_none(), "{claims}");
    assert_eq!(claims["account_version"], 2);
    assert_problem(
        register_as(&app, &after, "connector").await,
        403,
        "forbidden",
    )
    .await;

    // A rotation raises the same version.
    let r = app
        .post(
            &format!("/v1/tenants/{tid}/service-accounts/{id}/rotate-secret"),
            json!({}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let secret = r.json::<Value>().await.unwrap()["data"]["client_secret"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        claims_of(&grant(&app, &id, &secret).await)["account_version"],
        3
    );
}

#[tokio::test]
async fn only_platform_administrators_set_platform_access() {
    let app = spawn_app().await;
    let t = app.create_tenant(&slug("sap-own")).await;
    let o = app.create_tenant(&slug("sap-other")).await;
    let (tid, oid) = (t["id"].as_str().unwrap(), o["id"].as_str().unwrap());
    let (own, _) = service_account(&app, tid, "own").await;
    let (foreign, _) = service_account(&app, oid, "foreign").await;
    user_with_role(&app, tid, "t-admin", "tenant_admin").await;
    let (admin, _) = tokens(login(&app, tid, "t-admin", PASSWORD, None).await).await;
    let grant_body = json!({"permissions": ["iam.permissions.write"]});

    // A tenant administrator (every iam.* permission in its tenant, nothing platform-wide)
    // cannot, for its own tenant's account or another tenant's; nothing is appended.
    let before = app.count_events().await;
    for path in [
        platform_access(tid, &own),
        platform_access(oid, &foreign),
        platform_access(tid, &foreign),
    ] {
        let r = set_as(&app, Some(&admin), &path, grant_body.clone()).await;
        assert_problem(r, 403, "forbidden").await;
        let r = set_as(&app, Some(&admin), &path, json!({"permissions": []})).await;
        assert_problem(r, 403, "forbidden").await;
    }
    assert_eq!(
        app.count_events().await,
        before,
        "a refusal appended events"
    );

    // A platform administrator addresses an account only through its own tenant.
    let r = set_as(
        &app,
        None,
        &platform_access(tid, &foreign),
        grant_body.clone(),
    )
    .await;
    assert_problem(r, 404, "not-found").await;

    // A platform grant of iam.platform_access.write alone hands out only what it covers.
    let (delegate, delegate_secret) = service_account(&app, tid, "delegate").await;
    let r = set_as(
        &app,
        None,
        &platform_access(tid, &delegate),
        json!({"permissions": ["iam.platform_access.write"]}),
    )
    .await;
    assert_eq!(r.status(), 200);
    crate::auth::settled(&app, tid, r).await;
    let token = grant(&app, &delegate, &delegate_secret).await;
    let r = set_as(
        &app,
        Some(&token),
        &platform_access(oid, &foreign),
        grant_body,
    )
    .await;
    let problem = assert_problem(r, 403, "privilege-escalation").await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("iam.permissions.write"),
        "{problem}"
    );
    let r = set_as(
        &app,
        Some(&token),
        &platform_access(oid, &foreign),
        json!({"permissions": ["iam.platform_access.write"]}),
    )
    .await;
    assert_eq!(r.status(), 200);

    // A disabled account gains nothing; taking access away still works.
    let r = app
        .post(
            &format!("/v1/tenants/{tid}/service-accounts/{delegate}/disable"),
            json!({}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let path = platform_access(tid, &delegate);
    let r = set_as(&app, None, &path, json!({"permissions": ["iam.*"]})).await;
    assert_problem(r, 409, "service-account-disabled").await;
    let r = set_as(&app, None, &path, json!({"permissions": []})).await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn bad_platform_access_bodies_are_problems() {
    let app = spawn_app().await;
    let t = app.create_tenant(&slug("sap-bad")).await;
    let tid = t["id"].as_str().unwrap();
    let (id, _) = service_account(&app, tid, "bad").await;
    let path = platform_access(tid, &id);
    let before = app.count_events().await;

    for body in [
        json!({"permissions": "iam.permissions.write"}),
        json!({"permissions": [1]}),
        json!({}),
        json!({"permissions": [], "extra": true}),
        json!(["iam.permissions.write"]),
    ] {
        let r = set_as(&app, None, &path, body.clone()).await;
        assert_problem(r, 422, "invalid-body").await;
    }
    let r = set_as(
        &app,
        None,
        &path,
        json!({"permissions": ["*", "Iam.users.read", "iam", "iam.*.write", "iam.*"]}),
    )
    .await;
    let problem = assert_problem(r, 422, "validation-failed").await;
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "permissions[0]",
            "permissions[1]",
            "permissions[2]",
            "permissions[3]"
        ]
    );
    let many: Vec<String> = (0..101).map(|i| format!("svc.p{i}")).collect();
    let r = set_as(&app, None, &path, json!({ "permissions": many })).await;
    assert_problem(r, 422, "validation-failed").await;
    let r = app
        .http
        .put(app.url(&path))
        .header("content-type", "application/json")
        .body("{\"permissions\": [")
        .send()
        .await
        .unwrap();
    assert_problem(r, 400, "malformed-json").await;
    let r = set_as(
        &app,
        None,
        &format!("/v1/tenants/{tid}/service-accounts/not-a-uuid/platform-access"),
        json!({"permissions": []}),
    )
    .await;
    assert_problem(r, 400, "invalid-path-parameter").await;
    assert_eq!(
        app.count_events().await,
        before,
        "a bad body appended events"
    );
}
