//! The permission registry: idempotent registration, label changes, global names.

use serde_json::{json, Value};

use crate::helpers::{assert_problem, spawn_app};

#[tokio::test]
async fn charter_registers_its_own_permissions_at_start_up() {
    let app = spawn_app().await;
    // Start-up returns no consistency token: wait (bounded) for the read model to catch up.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let list = loop {
        let list: Value = app
            .get("/v1/permissions?service=charter&limit=200")
            .await
            .json()
            .await
            .unwrap();
        if !list["items"].as_array().unwrap().is_empty() || std::time::Instant::now() > deadline {
            break list;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for expected in [
        "iam.tenants.read",
        "iam.users.write",
        "iam.roles.write",
        "iam.assignments.write",
        "iam.audit.read",
    ] {
        assert!(names.contains(&expected), "{expected} in {names:?}");
    }
}

#[tokio::test]
async fn registration_is_idempotent_and_names_are_global() {
    let app = spawn_app().await;
    let register = |service: &str, perms: Value| {
        app.post(
            "/v1/permissions/register",
            json!({"service": service, "permissions": perms}),
        )
    };
    let perms = json!([
        {"name": "connections.create", "label": "Create connections"},
        {"name": "connections.read", "label": "Read connections"}
    ]);
    let r = register("connector", perms.clone()).await;
    assert_eq!(r.status(), 200);
    let r: Value = r.json().await.unwrap();
    assert_eq!(r["events"].as_array().unwrap().len(), 2);
    assert_eq!(r["data"]["permissions"].as_array().unwrap().len(), 2);

    let r: Value = register("connector", perms).await.json().await.unwrap();
    assert_eq!(r["events"], json!([]), "the same set again appends nothing");

    let r: Value = register(
        "connector",
        json!([{"name": "connections.read", "label": "View connections"}]),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(r["events"].as_array().unwrap().len(), 1, "one label change");
    let token = r["consistency_token"].as_str().unwrap();
    let list: Value = app
        .get(&format!(
            "/v1/permissions?service=connector&consistency={token}"
        ))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"][1]["label"], "View connections");

    // Another service cannot take a registered name.
    let r = register(
        "intruder",
        json!([{"name": "connections.create", "label": "Mine"}]),
    )
    .await;
    assert_problem(r, 409, "already-taken").await;

    for bad in [
        json!({"service": "connector", "permissions": [{"name": "Connections.Create", "label": "x"}]}),
        json!({"service": "connector", "permissions": [{"name": "connections", "label": "x"}]}),
        json!({"service": "Bad Service", "permissions": [{"name": "a.b", "label": "x"}]}),
        json!({"service": "connector", "permissions": []}),
        json!({"service": "connector", "permissions": [{"name": "a.b", "label": "x"}, {"name": "a.b", "label": "y"}]}),
    ] {
        assert_problem(
            app.post("/v1/permissions/register", bad).await,
            422,
            "validation-failed",
        )
        .await;
    }
}
