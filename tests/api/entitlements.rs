//! Assignments, entitlements, the permission check and policy_version counters.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, slug, spawn_app, TestApp};

/// The `data.id` of a successful command response.
pub async fn id_of(response: reqwest::Response) -> String {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert!(status.is_success(), "{status}: {body}");
    body["data"]["id"].as_str().unwrap().to_owned()
}

/// The consistency token of a successful command response.
pub async fn token_of(response: reqwest::Response) -> String {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert!(status.is_success(), "{status}: {body}");
    body["consistency_token"].as_str().unwrap().to_owned()
}

async fn pv(app: &TestApp, t: &str, ws: Option<&str>, token: &str) -> i64 {
    let q = ws.map_or(String::new(), |w| format!("workspace_id={w}&"));
    let r: Value = app
        .get(&format!(
            "/v1/tenants/{t}/policy-version?{q}consistency={token}"
        ))
        .await
        .json()
        .await
        .unwrap();
    r["policy_version"].as_i64().unwrap()
}

async fn entitlements(app: &TestApp, t: &str, user: &str, token: &str) -> Value {
    let r = app
        .get(&format!(
            "/v1/tenants/{t}/users/{user}/entitlements?consistency={token}"
        ))
        .await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// A user's permissions in one live workspace, from a lookup without `workspace_id`: the
/// workspace's entry when one is listed, otherwise exactly the tenant-wide ones.
fn permissions_in(e: &Value, workspace: &str) -> Vec<String> {
    let listed = e["workspaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["workspace_id"] == workspace);
    let scope = listed.unwrap_or(&e["tenant"]);
    if scope.is_null() {
        return vec![];
    }
    serde_json::from_value(scope["permissions"].clone()).unwrap()
}

/// The lookup scoped to one workspace: that workspace's entry, or null when nothing applies.
async fn entitlements_in(app: &TestApp, t: &str, user: &str, ws: &str, token: &str) -> Value {
    let r = app
        .get(&format!(
            "/v1/tenants/{t}/users/{user}/entitlements?workspace_id={ws}&consistency={token}"
        ))
        .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let entries = body["workspaces"].as_array().unwrap();
    assert!(entries.len() <= 1, "{body}");
    entries.first().cloned().unwrap_or(Value::Null)
}

async fn check(app: &TestApp, t: &str, user: &str, permission: &str, ws: Option<&str>) -> bool {
    let r = app
        .post(
            &format!("/v1/tenants/{t}/check"),
            json!({"user_id": user, "permission": permission, "workspace_id": ws}),
        )
        .await;
    assert_eq!(r.status(), 200);
    r.json::<Value>().await.unwrap()["allowed"]
        .as_bool()
        .unwrap()
}

#[tokio::test]
async fn entitlements_follow_assignments_groups_and_user_status() {
    let app = spawn_app().await;
    let r = app
        .post(
            "/v1/permissions/register",
            json!({"service": "docs", "permissions": [
                {"name": "docs.read", "label": "Read"}, {"name": "docs.edit", "label": "Edit"}
            ]}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let t = app.create_tenant(&slug("ent")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let w1 = app.create_workspace(&t, "one").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let w2 = app.create_workspace(&t, "two").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let base = format!("/v1/tenants/{t}");
    let alice = id_of(
        app.post(
            &format!("{base}/users"),
            json!({"username": "alice", "email": "alice@example.com"}),
        )
        .await,
    )
    .await;
    let bob = id_of(
        app.post(
            &format!("{base}/users"),
            json!({"username": "bob", "email": "bob@example.com"}),
        )
        .await,
    )
    .await;
    let editors = id_of(
        app.post(&format!("{base}/groups"), json!({"name": "editors"}))
            .await,
    )
    .await;
    let r = app
        .send(
            Method::PUT,
            &format!("{base}/groups/{editors}/members/{bob}"),
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    let reader = id_of(
        app.post(
            &format!("{base}/roles"),
            json!({"name": "reader", "permissions": ["docs.read"]}),
        )
        .await,
    )
    .await;
    let editor = id_of(
        app.post(
            &format!("{base}/roles"),
            json!({"name": "editor", "permissions": ["docs.edit"], "workspace_id": w1}),
        )
        .await,
    )
    .await;

    // Counters before any assignment: the membership change bumped the tenant and both
    // workspaces once.
    let token = token_of(
        app.post(&format!("{base}/groups"), json!({"name": "spare"}))
            .await,
    )
    .await;
    let (t0, w1_0, w2_0) = (
        pv(&app, &t, None, &token).await,
        pv(&app, &t, Some(&w1), &token).await,
        pv(&app, &t, Some(&w2), &token).await,
    );
    assert_eq!((t0, w1_0, w2_0), (1, 1, 1));

    // Tenant-wide reader for alice; editor (a W1 role) for the editors group, in W1 by default.
    let r = app
        .post(
            &format!("{base}/assignments"),
            json!({"role_id": reader, "user_id": alice}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let r = app
        .post(
            &format!("{base}/assignments"),
            json!({"role_id": editor, "group_id": editors}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["data"]["workspace_id"], w1.as_str());
    let token = body["consistency_token"].as_str().unwrap().to_owned();

    let a = entitlements(&app, &t, &alice, &token).await;
    assert_eq!(permissions_in(&a, &w1), ["docs.read"]);
    assert_eq!(permissions_in(&a, &w2), ["docs.read"]);
    assert_eq!(a["tenant"]["permissions"], json!(["docs.read"]));
    // Tenant-wide grants are not repeated per workspace: the listing is only what adds.
    assert!(a["workspaces"].as_array().unwrap().is_empty(), "{a}");
    let in_w2 = entitlements_in(&app, &t, &alice, &w2, &token).await;
    assert_eq!(in_w2["permissions"], json!(["docs.read"]));
    assert_eq!(in_w2["workspace_id"], w2.as_str());
    let b = entitlements(&app, &t, &bob, &token).await;
    assert_eq!(permissions_in(&b, &w1), ["docs.edit"]);
    assert!(permissions_in(&b, &w2).is_empty());
    assert!(
        b["tenant"].is_null(),
        "a workspace role grants nothing tenant-wide"
    );
    assert!(check(&app, &t, &bob, "docs.edit", Some(&w1)).await);
    assert!(!check(&app, &t, &bob, "docs.edit", Some(&w2)).await);
    assert!(check(&app, &t, &alice, "docs.read", None).await);

    // The tenant-wide assignment bumped everything once, the W1 one only W1.
    assert_eq!(pv(&app, &t, None, &token).await, t0 + 1);
    assert_eq!(pv(&app, &t, Some(&w1), &token).await, w1_0 + 2);
    assert_eq!(pv(&app, &t, Some(&w2), &token).await, w2_0 + 1);
    assert_eq!(a["policy_version"], t0 + 1);

    // Granting a permission to the reader role reaches alice everywhere.
    let token = token_of(
        app.post(
            &format!("{base}/roles/{reader}/permissions"),
            json!({"permissions": ["docs.edit"]}),
        )
        .await,
    )
    .await;
    let a = entitlements(&app, &t, &alice, &token).await;
    assert_eq!(permissions_in(&a, &w2), ["docs.edit", "docs.read"]);

    // Leaving the group, being disabled, or a deleted workspace each take entitlements away.
    let token = token_of(
        app.send(
            Method::DELETE,
            &format!("{base}/groups/{editors}/members/{bob}"),
            None,
        )
        .await,
    )
    .await;
    assert!(entitlements(&app, &t, &bob, &token).await["workspaces"]
        .as_array()
        .unwrap()
        .is_empty());
    let token = token_of(
        app.send(Method::POST, &format!("{base}/users/{alice}/disable"), None)
            .await,
    )
    .await;
    assert!(entitlements(&app, &t, &alice, &token).await["workspaces"]
        .as_array()
        .unwrap()
        .is_empty());
    assert!(!check(&app, &t, &alice, "docs.read", None).await);
    let token = token_of(
        app.send(Method::POST, &format!("{base}/users/{alice}/enable"), None)
            .await,
    )
    .await;
    let a = entitlements(&app, &t, &alice, &token).await;
    assert_eq!(
        a["tenant"]["permissions"],
        json!(["docs.edit", "docs.read"])
    );
    for w in [&w1, &w2] {
        let entry = entitlements_in(&app, &t, &alice, w, &token).await;
        assert_eq!(entry["permissions"], json!(["docs.edit", "docs.read"]));
    }
    let token = token_of(
        app.send(Method::DELETE, &format!("{base}/workspaces/{w2}"), None)
            .await,
    )
    .await;
    assert!(
        entitlements_in(&app, &t, &alice, &w2, &token)
            .await
            .is_null(),
        "nothing applies in a deleted workspace"
    );
    assert!(!entitlements_in(&app, &t, &alice, &w1, &token)
        .await
        .is_null());
    assert!(!check(&app, &t, &alice, "docs.read", Some(&w2)).await);

    // Another tenant's path: 404, whatever the route.
    let other = app.create_tenant(&slug("other")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .get(&format!(
            "/v1/tenants/{other}/users/{alice}/entitlements?consistency={token}"
        ))
        .await;
    assert_problem(r, 404, "not-found").await;
    let r = app
        .post(
            &format!("/v1/tenants/{other}/check"),
            json!({"user_id": alice, "permission": "docs.read"}),
        )
        .await;
    assert_problem(r, 404, "not-found").await;
    let r = app
        .post(
            &format!("/v1/tenants/{other}/assignments"),
            json!({"role_id": reader, "user_id": alice}),
        )
        .await;
    assert_problem(r, 422, "role-not-found").await;
}

#[tokio::test]
async fn assignments_are_validated_and_unique() {
    let app = spawn_app().await;
    let t = app.create_tenant(&slug("asg")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let base = format!("/v1/tenants/{t}");
    let w1 = app.create_workspace(&t, "one").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let w2 = app.create_workspace(&t, "two").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let carol = id_of(
        app.post(
            &format!("{base}/users"),
            json!({"username": "carol", "email": "carol@example.com"}),
        )
        .await,
    )
    .await;
    let ws_role = id_of(
        app.post(
            &format!("{base}/roles"),
            json!({"name": "w1-viewer", "permissions": ["iam.users.read"], "workspace_id": w1}),
        )
        .await,
    )
    .await;

    let r = app
        .post(
            &format!("{base}/assignments"),
            json!({"role_id": ws_role, "user_id": carol, "workspace_id": w2}),
        )
        .await;
    assert_problem(r, 422, "role-workspace-mismatch").await;
    let r = app
        .post(
            &format!("{base}/assignments"),
            json!({"role_id": ws_role, "user_id": carol, "group_id": carol}),
        )
        .await;
    assert_problem(r, 422, "validation-failed").await;
    let r = app
        .post(
            &format!("{base}/assignments"),
            json!({"role_id": ws_role, "user_id": uuid::Uuid::now_v7()}),
        )
        .await;
    assert_problem(r, 422, "subject-not-found").await;

    let id = id_of(
        app.post(
            &format!("{base}/assignments"),
            json!({"role_id": ws_role, "user_id": carol}),
        )
        .await,
    )
    .await;
    let r = app
        .post(
            &format!("{base}/assignments"),
            json!({"role_id": ws_role, "user_id": carol, "workspace_id": w1}),
        )
        .await;
    assert_problem(r, 409, "already-taken").await;

    // A role of a deleted workspace cannot be assigned, whether the workspace is named or not.
    let w3 = app.create_workspace(&t, "three").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let w3_role = id_of(
        app.post(
            &format!("{base}/roles"),
            json!({"name": "w3-viewer", "permissions": [], "workspace_id": w3}),
        )
        .await,
    )
    .await;
    app.send(Method::DELETE, &format!("{base}/workspaces/{w3}"), None)
        .await;
    let r = app
        .post(
            &format!("{base}/assignments"),
            json!({"role_id": w3_role, "user_id": carol}),
        )
        .await;
    assert_problem(r, 422, "role-not-found").await;

    let delete = format!("{base}/assignments/{id}");
    let token = token_of(app.send(Method::DELETE, &delete, None).await).await;
    let list: Value = app
        .get(&format!(
            "{base}/assignments?user_id={carol}&consistency={token}"
        ))
        .await
        .json()
        .await
        .unwrap();
    assert!(list["items"].as_array().unwrap().is_empty());
    assert_problem(
        app.send(Method::DELETE, &delete, None).await,
        404,
        "not-found",
    )
    .await;
}
