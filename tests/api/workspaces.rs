//! Workspace commands, their tenant's status, and name uniqueness per tenant.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, slug, spawn_app};

#[tokio::test]
async fn workspace_lifecycle_and_tenant_scoping() {
    let app = spawn_app().await;
    let a = app.create_tenant(&slug("a")).await;
    let b = app.create_tenant(&slug("b")).await;
    let (a, b) = (a["id"].as_str().unwrap(), b["id"].as_str().unwrap());

    let ws = app.create_workspace(a, "production").await;
    let ws_id = ws["id"].as_str().unwrap();
    assert_eq!(ws["tenant_id"], a);

    // Names are unique per tenant, ignoring case, but free across tenants.
    let r = app
        .post(
            &format!("/v1/tenants/{a}/workspaces"),
            json!({"name": "PRODUCTION"}),
        )
        .await;
    assert_problem(r, 409, "already-taken").await;
    app.create_workspace(b, "production").await;

    // Tenant B cannot see or touch tenant A's workspace through its own path.
    assert_problem(
        app.get(&format!("/v1/tenants/{b}/workspaces/{ws_id}"))
            .await,
        404,
        "not-found",
    )
    .await;
    let r = app
        .send(
            Method::PATCH,
            &format!("/v1/tenants/{b}/workspaces/{ws_id}"),
            Some(json!({"name": "x"})),
        )
        .await;
    assert_problem(r, 404, "not-found").await;
    let r = app
        .send(
            Method::DELETE,
            &format!("/v1/tenants/{b}/workspaces/{ws_id}"),
            None,
        )
        .await;
    assert_problem(r, 404, "not-found").await;
    // Not even If-Match reveals whether it exists, or at which version.
    for tag in ["\"1\"", "\"999\"", "*"] {
        let r = app
            .http
            .patch(app.url(&format!("/v1/tenants/{b}/workspaces/{ws_id}")))
            .header("If-Match", tag)
            .json(&json!({"name": "probe"}))
            .send()
            .await
            .unwrap();
        assert_problem(r, 404, "not-found").await;
    }

    let r = app
        .send(
            Method::PATCH,
            &format!("/v1/tenants/{a}/workspaces/{ws_id}"),
            Some(json!({"name": "prod"})),
        )
        .await;
    assert_eq!(r.status(), 200);
    let token = r.json::<Value>().await.unwrap()["consistency_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let list: Value = app
        .get(&format!("/v1/tenants/{a}/workspaces?consistency={token}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(list["items"][0]["name"], "prod");
    // The old name is free again after the rename.
    app.create_workspace(a, "production").await;

    let r = app
        .send(
            Method::DELETE,
            &format!("/v1/tenants/{a}/workspaces/{ws_id}"),
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_problem(
        app.get(&format!("/v1/tenants/{a}/workspaces/{ws_id}"))
            .await,
        404,
        "not-found",
    )
    .await;
    app.create_workspace(a, "prod").await;
}

#[tokio::test]
async fn no_command_touches_a_workspace_of_a_blocked_or_deleted_tenant() {
    let app = spawn_app().await;
    let t = app.create_tenant(&slug("frozen")).await;
    let t = t["id"].as_str().unwrap();
    let ws = app.create_workspace(t, "staging").await;
    let ws = ws["id"].as_str().unwrap();
    app.post(&format!("/v1/tenants/{t}/block"), json!({})).await;
    let before = app.count_events().await;

    let r = app
        .post(
            &format!("/v1/tenants/{t}/workspaces"),
            json!({"name": "new"}),
        )
        .await;
    assert_problem(r, 409, "tenant-blocked").await;
    let r = app
        .send(
            Method::PATCH,
            &format!("/v1/tenants/{t}/workspaces/{ws}"),
            Some(json!({"name": "x"})),
        )
        .await;
    assert_problem(r, 409, "tenant-blocked").await;
    let r = app
        .send(
            Method::DELETE,
            &format!("/v1/tenants/{t}/workspaces/{ws}"),
            None,
        )
        .await;
    assert_problem(r, 409, "tenant-blocked").await;
    assert_eq!(app.count_events().await, before, "nothing appended");

    app.send(Method::POST, &format!("/v1/tenants/{t}/unblock"), None)
        .await;
    app.send(Method::DELETE, &format!("/v1/tenants/{t}"), None)
        .await;
    let r = app
        .post(
            &format!("/v1/tenants/{t}/workspaces"),
            json!({"name": "new"}),
        )
        .await;
    assert_problem(r, 404, "not-found").await;
    assert_problem(
        app.get(&format!("/v1/tenants/{t}/workspaces")).await,
        404,
        "not-found",
    )
    .await;
}
