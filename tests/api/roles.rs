//! Roles: seeded system roles, registered permissions only, workspace scoping, isolation.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, slug, spawn_app, TestApp};

async fn register(app: &TestApp) {
    let r = app
        .post(
            "/v1/permissions/register",
            json!({"service": "docs", "permissions": [
                {"name": "docs.read", "label": "Read documents"},
                {"name": "docs.edit", "label": "Edit documents"},
                {"name": "docs.delete", "label": "Delete documents"}
            ]}),
        )
        .await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn every_new_tenant_gets_the_system_roles_by_events() {
    let app = spawn_app().await;
    let r = app
        .post(
            "/v1/tenants",
            json!({"name": "Seeded", "slug": slug("seeded")}),
        )
        .await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["events"].as_array().unwrap().len(),
        4,
        "tenant + 3 roles, one command"
    );
    let t = body["data"]["id"].as_str().unwrap();
    let token = body["consistency_token"].as_str().unwrap();
    let roles: Value = app
        .get(&format!("/v1/tenants/{t}/roles?consistency={token}"))
        .await
        .json()
        .await
        .unwrap();
    let mut templates: Vec<&str> = roles["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["template"].as_str().unwrap())
        .collect();
    templates.sort();
    assert_eq!(templates, ["auditor", "tenant_admin", "viewer"]);
    let admin = roles["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["template"] == "tenant_admin")
        .unwrap();
    assert!(admin["permissions"]
        .as_array()
        .unwrap()
        .contains(&json!("iam.roles.write")));

    // System roles are read-only.
    let id = admin["id"].as_str().unwrap();
    let path = format!("/v1/tenants/{t}/roles/{id}");
    assert_problem(
        app.send(Method::DELETE, &path, None).await,
        409,
        "system-role",
    )
    .await;
    let r = app
        .send(Method::PATCH, &path, Some(json!({"name": "boss"})))
        .await;
    assert_problem(r, 409, "system-role").await;
}

#[tokio::test]
async fn custom_roles_grant_only_registered_permissions() {
    let app = spawn_app().await;
    register(&app).await;
    let t = app.create_tenant(&slug("roles")).await;
    let t = t["id"].as_str().unwrap();
    let roles = format!("/v1/tenants/{t}/roles");

    let r = app
        .post(
            &roles,
            json!({"name": "editor", "permissions": ["docs.read", "docs.publish"]}),
        )
        .await;
    let problem = assert_problem(r, 422, "permission-not-registered").await;
    assert!(problem["detail"].as_str().unwrap().contains("docs.publish"));

    let r = app
        .post(
            &roles,
            json!({"name": "editor", "permissions": ["docs.read", "docs.edit"]}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let role: Value = r.json().await.unwrap();
    let id = role["data"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        role["data"]["permissions"],
        json!(["docs.edit", "docs.read"])
    );
    let r = app
        .post(&roles, json!({"name": "EDITOR", "permissions": []}))
        .await;
    assert_problem(r, 409, "already-taken").await;

    let path = format!("{roles}/{id}");
    let r: Value = app
        .post(
            &format!("{path}/permissions"),
            json!({"permissions": ["docs.delete", "docs.read"]}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        r["events"].as_array().unwrap().len(),
        1,
        "only docs.delete is new"
    );
    assert_eq!(
        r["data"]["permissions"],
        json!(["docs.delete", "docs.edit", "docs.read"])
    );
    let r: Value = app
        .send(
            Method::DELETE,
            &format!("{path}/permissions/docs.edit"),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        r["data"]["permissions"],
        json!(["docs.delete", "docs.read"])
    );
    let token = r["consistency_token"].as_str().unwrap();
    let list: Value = app
        .get(&format!("{roles}?consistency={token}"))
        .await
        .json()
        .await
        .unwrap();
    let listed = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id.as_str())
        .unwrap();
    assert_eq!(listed["permissions"], json!(["docs.delete", "docs.read"]));

    let r = app
        .send(Method::PATCH, &path, Some(json!({"name": "reviewer"})))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(app.send(Method::DELETE, &path, None).await.status(), 200);
    assert_problem(app.get(&path).await, 404, "not-found").await;
}

#[tokio::test]
async fn workspace_roles_stay_in_their_tenant() {
    let app = spawn_app().await;
    register(&app).await;
    let a = app.create_tenant(&slug("wa")).await;
    let b = app.create_tenant(&slug("wb")).await;
    let (a, b) = (a["id"].as_str().unwrap(), b["id"].as_str().unwrap());
    let ws_a = app.create_workspace(a, "prod").await;
    let ws_b = app.create_workspace(b, "prod").await;

    let r = app
        .post(&format!("/v1/tenants/{a}/roles"), json!({"name": "prod-reader", "permissions": ["docs.read"], "workspace_id": ws_a["id"]}))
        .await;
    assert_eq!(r.status(), 201);
    let role: Value = r.json().await.unwrap();
    assert_eq!(role["data"]["workspace_id"], ws_a["id"]);
    let id = role["data"]["id"].as_str().unwrap();

    // A workspace of another tenant is not one of ours.
    let r = app
        .post(
            &format!("/v1/tenants/{a}/roles"),
            json!({"name": "sneaky", "permissions": [], "workspace_id": ws_b["id"]}),
        )
        .await;
    assert_problem(r, 422, "workspace-not-found").await;

    // Tenant B's path does not reach tenant A's role, whatever the method.
    let foreign = format!("/v1/tenants/{b}/roles/{id}");
    assert_problem(app.get(&foreign).await, 404, "not-found").await;
    assert_problem(
        app.send(Method::DELETE, &foreign, None).await,
        404,
        "not-found",
    )
    .await;
    let r = app
        .post(
            &format!("{foreign}/permissions"),
            json!({"permissions": ["docs.edit"]}),
        )
        .await;
    assert_problem(r, 404, "not-found").await;
    let r = app
        .send(
            Method::DELETE,
            &format!("{foreign}/permissions/docs.read"),
            None,
        )
        .await;
    assert_problem(r, 404, "not-found").await;
}
