//! The in-process entitlement index: read-your-writes under concurrent writers, the batch
//! `check`, and its refusals.

use std::sync::Arc;

use reqwest::Method;
use serde_json::{json, Value};

use crate::entitlements::{id_of, token_of};
use crate::helpers::{assert_problem, slug, spawn_app, TestApp};

/// A tenant with a workspace, a registered permission, a tenant-wide role holding it, and
/// `users` users. Returns (tenant, workspace, role, users).
async fn world(app: &TestApp, users: usize) -> (String, String, String, Vec<String>) {
    let r = app
        .post(
            "/v1/permissions/register",
            json!({"service": "idx", "permissions": [
                {"name": "idx.read", "label": "Read"}, {"name": "idx.write", "label": "Write"}
            ]}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let t = app.create_tenant(&slug("idx")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let w = app.create_workspace(&t, "one").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let role = id_of(
        app.post(
            &format!("/v1/tenants/{t}/roles"),
            json!({"name": "reader", "permissions": ["idx.read"]}),
        )
        .await,
    )
    .await;
    let mut ids = Vec::new();
    for i in 0..users {
        ids.push(
            id_of(
                app.post(
                    &format!("/v1/tenants/{t}/users"),
                    json!({"username": format!("u{i}"), "email": format!("u{i}@example.com")}),
                )
                .await,
            )
            .await,
        );
    }
    (t, w, role, ids)
}

/// 8 writers, each granting and revoking one user's role over and over, and after every
/// command reading that user's entitlements and checking the permission with the command's
/// consistency token: no answer may come from before the token, while the other writers
/// keep changing the same tenant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_lookup_answers_from_before_its_consistency_token() {
    let app = Arc::new(spawn_app().await);
    let (t, w, role, users) = world(&app, 8).await;
    let mut writers = Vec::new();
    for user in users {
        let (app, t, w, role) = (app.clone(), t.clone(), w.clone(), role.clone());
        writers.push(tokio::spawn(async move {
            let mut answers = 0;
            let mut last_version = 0;
            for _ in 0..12 {
                let r = app
                    .post(
                        &format!("/v1/tenants/{t}/assignments"),
                        json!({"role_id": role, "user_id": user}),
                    )
                    .await;
                let body: Value = r.json().await.unwrap();
                let assignment = body["data"]["id"].as_str().unwrap().to_owned();
                let token = body["consistency_token"].as_str().unwrap().to_owned();
                let (perms, version) = read(&app, &t, &user, &w, &token).await;
                assert_eq!(perms, ["idx.read"], "granted at {token}");
                assert!(
                    checked(&app, &t, &user, &w, &token).await,
                    "granted at {token}"
                );
                assert!(
                    version > last_version,
                    "the version moves with every change"
                );
                last_version = version;
                let token = token_of(
                    app.send(
                        Method::DELETE,
                        &format!("/v1/tenants/{t}/assignments/{assignment}"),
                        None,
                    )
                    .await,
                )
                .await;
                let (perms, version) = read(&app, &t, &user, &w, &token).await;
                assert!(perms.is_empty(), "revoked at {token}, still {perms:?}");
                assert!(
                    !checked(&app, &t, &user, &w, &token).await,
                    "revoked at {token}"
                );
                assert!(version > last_version);
                last_version = version;
                answers += 4;
            }
            answers
        }));
    }
    let mut answers = 0;
    for w in writers {
        answers += w.await.unwrap();
    }
    assert_eq!(answers, 8 * 12 * 4);
}

/// The user's permissions in workspace `w` and that scope's effective version, read at
/// `token`.
async fn read(app: &TestApp, t: &str, user: &str, w: &str, token: &str) -> (Vec<String>, i64) {
    let r = app
        .get(&format!(
            "/v1/tenants/{t}/users/{user}/entitlements?workspace_id={w}&consistency={token}"
        ))
        .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let perms = body["workspaces"]
        .as_array()
        .unwrap()
        .first()
        .map(|e| serde_json::from_value(e["permissions"].clone()).unwrap())
        .unwrap_or_default();
    let version: Value = app
        .get(&format!(
            "/v1/tenants/{t}/policy-version?workspace_id={w}&consistency={token}"
        ))
        .await
        .json()
        .await
        .unwrap();
    (perms, version["policy_version"].as_i64().unwrap())
}

async fn checked(app: &TestApp, t: &str, user: &str, w: &str, token: &str) -> bool {
    let r = app
        .post(
            &format!("/v1/tenants/{t}/check"),
            json!({"items": [{"user_id": user, "permission": "idx.read", "workspace_id": w}],
                   "consistency": token}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    body["results"][0]["allowed"].as_bool().unwrap()
}

#[tokio::test]
async fn a_batch_check_answers_in_order() {
    let app = spawn_app().await;
    let (t, w, role, users) = world(&app, 2).await;
    let ws_role = id_of(
        app.post(
            &format!("/v1/tenants/{t}/roles"),
            json!({"name": "writer", "permissions": ["idx.write"], "workspace_id": w}),
        )
        .await,
    )
    .await;
    let (a, b) = (&users[0], &users[1]);
    id_of(
        app.post(
            &format!("/v1/tenants/{t}/assignments"),
            json!({"role_id": role, "user_id": a}),
        )
        .await,
    )
    .await;
    let token = token_of(
        app.post(
            &format!("/v1/tenants/{t}/assignments"),
            json!({"role_id": ws_role, "user_id": b}),
        )
        .await,
    )
    .await;
    let r = app
        .post(
            &format!("/v1/tenants/{t}/check"),
            json!({"consistency": token, "items": [
                {"user_id": a, "permission": "idx.read"},
                {"user_id": a, "permission": "idx.read", "workspace_id": w},
                {"user_id": a, "permission": "idx.write", "workspace_id": w},
                {"user_id": b, "permission": "idx.write", "workspace_id": w},
                {"user_id": b, "permission": "idx.write"},
                {"user_id": b, "permission": "idx.read", "workspace_id": w},
            ]}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let allowed: Vec<bool> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["allowed"].as_bool().unwrap())
        .collect();
    assert_eq!(allowed, [true, true, false, true, false, false]);
    // Workspace answers carry the workspace's effective version, tenant answers the tenant's.
    let tenant_version = body["results"][0]["policy_version"].as_i64().unwrap();
    let ws_version = body["results"][1]["policy_version"].as_i64().unwrap();
    assert!(ws_version > tenant_version, "{body}");
    assert_eq!(body["results"][4]["policy_version"], tenant_version);
}

/// Over 100 items, no items, unregistered permission names, users and workspaces of another
/// tenant, a single check mixed with items, malformed items: each a 4xx problem that answers
/// nothing, and names no other tenant's data.
#[tokio::test]
async fn a_bad_batch_check_is_a_problem_and_answers_nothing() {
    let app = spawn_app().await;
    let (t, w, _, users) = world(&app, 1).await;
    let (other, other_w, _, other_users) = world(&app, 1).await;
    let me = &users[0];
    let item = json!({"user_id": me, "permission": "idx.read"});
    let path = format!("/v1/tenants/{t}/check");
    let cases: Vec<(&str, Value, u16, &str)> = vec![
        (
            "101 items",
            json!({"items": vec![item.clone(); 101]}),
            422,
            "validation-failed",
        ),
        ("no items", json!({"items": []}), 422, "validation-failed"),
        ("neither form", json!({}), 422, "validation-failed"),
        (
            "both forms",
            json!({"items": [item.clone()], "user_id": me, "permission": "idx.read"}),
            422,
            "validation-failed",
        ),
        (
            "unregistered permission",
            json!({"items": [item.clone(), {"user_id": me, "permission": "idx.nope"}]}),
            422,
            "validation-failed",
        ),
        (
            "malformed permission",
            json!({"items": [{"user_id": me, "permission": "Not A Name"}]}),
            422,
            "validation-failed",
        ),
        (
            "another tenant's user",
            json!({"items": [item.clone(), {"user_id": other_users[0], "permission": "idx.read"}]}),
            422,
            "validation-failed",
        ),
        (
            "another tenant's workspace",
            json!({"items": [{"user_id": me, "permission": "idx.read", "workspace_id": other_w}]}),
            422,
            "validation-failed",
        ),
        (
            "not a uuid",
            json!({"items": [{"user_id": "x", "permission": "idx.read"}]}),
            422,
            "invalid-body",
        ),
        (
            "unknown field",
            json!({"items": [{"user_id": me, "permission": "idx.read", "tenant_id": other}]}),
            422,
            "invalid-body",
        ),
    ];
    for (what, body, status, problem) in cases {
        let r = app.post(&path, body).await;
        let p = assert_problem(r, status, problem).await;
        assert!(p.get("results").is_none(), "{what}: {p}");
        let text = p.to_string();
        assert!(
            !text.contains(&other_users[0]) && !text.contains(&other_w),
            "{what}: the answer names another tenant's ids: {p}"
        );
    }
    // The field errors name the offending items, and only them.
    let r = app
        .post(
            &path,
            json!({"items": [item.clone(), {"user_id": other_users[0], "permission": "idx.nope",
                                            "workspace_id": other_w}, item.clone()]}),
        )
        .await;
    let p = assert_problem(r, 422, "validation-failed").await;
    let mut fields: Vec<String> = p["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_owned())
        .collect();
    fields.sort();
    assert_eq!(
        fields,
        [
            "items[1].permission",
            "items[1].user_id",
            "items[1].workspace_id"
        ]
    );
    // A workspace of this tenant is fine, and the same question on the other tenant's path is
    // answered there (about its own user) and not here.
    let r = app
        .post(
            &path,
            json!({"items": [{"user_id": me, "permission": "idx.read", "workspace_id": w}]}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let r = app
        .post(
            &format!("/v1/tenants/{other}/check"),
            json!({"items": [{"user_id": me, "permission": "idx.read"}]}),
        )
        .await;
    assert_problem(r, 422, "validation-failed").await;
}
