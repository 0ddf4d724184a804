//! Tenant isolation: ids of tenant B used under tenant A's path are 404 on every route, change
//! nothing, and never show in A's lists.

use reqwest::Method;
use serde_json::{json, Value};

use crate::entitlements::{id_of, token_of};
use crate::helpers::{assert_problem, slug, spawn_app};

#[tokio::test]
async fn ids_of_another_tenant_are_404_on_every_route() {
    let app = spawn_app().await;
    let a = app.create_tenant(&slug("iso-a")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let b = app.create_tenant(&slug("iso-b")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let in_b = format!("/v1/tenants/{b}");
    let ws = app.create_workspace(&b, "prod").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let user = id_of(
        app.post(
            &format!("{in_b}/users"),
            json!({"username": "bee", "email": "bee@example.com"}),
        )
        .await,
    )
    .await;
    let group = id_of(
        app.post(&format!("{in_b}/groups"), json!({"name": "bees"}))
            .await,
    )
    .await;
    app.send(
        Method::PUT,
        &format!("{in_b}/groups/{group}/members/{user}"),
        None,
    )
    .await;
    let role = id_of(
        app.post(
            &format!("{in_b}/roles"),
            json!({"name": "hive", "permissions": ["iam.users.read"]}),
        )
        .await,
    )
    .await;
    let assignment = id_of(
        app.post(
            &format!("{in_b}/assignments"),
            json!({"role_id": role, "user_id": user}),
        )
        .await,
    )
    .await;
    // A group of tenant A, to try to pull B's user into.
    let a_group = id_of(
        app.post(&format!("/v1/tenants/{a}/groups"), json!({"name": "ants"}))
            .await,
    )
    .await;

    let in_a = format!("/v1/tenants/{a}");
    let name = json!({"name": "x"});
    let routes: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, format!("{in_a}/workspaces/{ws}"), None),
        (
            Method::PATCH,
            format!("{in_a}/workspaces/{ws}"),
            Some(name.clone()),
        ),
        (Method::DELETE, format!("{in_a}/workspaces/{ws}"), None),
        (Method::GET, format!("{in_a}/users/{user}"), None),
        (
            Method::PATCH,
            format!("{in_a}/users/{user}"),
            Some(json!({"display_name": "x"})),
        ),
        (Method::DELETE, format!("{in_a}/users/{user}"), None),
        (Method::POST, format!("{in_a}/users/{user}/disable"), None),
        (Method::POST, format!("{in_a}/users/{user}/enable"), None),
        (
            Method::GET,
            format!("{in_a}/users/{user}/entitlements"),
            None,
        ),
        (Method::GET, format!("{in_a}/groups/{group}"), None),
        (Method::DELETE, format!("{in_a}/groups/{group}"), None),
        (
            Method::PUT,
            format!("{in_a}/groups/{group}/members/{user}"),
            None,
        ),
        (
            Method::DELETE,
            format!("{in_a}/groups/{group}/members/{user}"),
            None,
        ),
        (
            Method::PUT,
            format!("{in_a}/groups/{a_group}/members/{user}"),
            None,
        ),
        (Method::GET, format!("{in_a}/roles/{role}"), None),
        (
            Method::PATCH,
            format!("{in_a}/roles/{role}"),
            Some(name.clone()),
        ),
        (Method::DELETE, format!("{in_a}/roles/{role}"), None),
        (
            Method::POST,
            format!("{in_a}/roles/{role}/permissions"),
            Some(json!({"permissions": ["iam.users.write"]})),
        ),
        (
            Method::DELETE,
            format!("{in_a}/roles/{role}/permissions/iam.users.read"),
            None,
        ),
        (
            Method::DELETE,
            format!("{in_a}/assignments/{assignment}"),
            None,
        ),
        (
            Method::POST,
            format!("{in_a}/check"),
            Some(json!({"user_id": user, "permission": "iam.users.read"})),
        ),
    ];
    let before = app.count_events().await;
    for (method, path, body) in routes {
        let response = app.send(method.clone(), &path, body).await;
        let status = response.status().as_u16();
        assert_eq!(status, 404, "{method} {path}");
        assert_problem(response, 404, "not-found").await;
    }
    assert_eq!(app.count_events().await, before, "nothing was appended");

    // Body references to B's ids are refused as invalid, not acted on.
    let r = app
        .post(
            &format!("{in_a}/assignments"),
            json!({"role_id": role, "user_id": user}),
        )
        .await;
    assert_problem(r, 422, "role-not-found").await;
    let a_role = id_of(
        app.post(
            &format!("{in_a}/roles"),
            json!({"name": "ant", "permissions": []}),
        )
        .await,
    )
    .await;
    let r = app
        .post(
            &format!("{in_a}/assignments"),
            json!({"role_id": a_role, "user_id": user}),
        )
        .await;
    assert_problem(r, 422, "subject-not-found").await;
    let r = app
        .post(
            &format!("{in_a}/assignments"),
            json!({"role_id": a_role, "group_id": group}),
        )
        .await;
    assert_problem(r, 422, "subject-not-found").await;
    let r = app
        .post(
            &format!("{in_a}/roles"),
            json!({"name": "w", "permissions": [], "workspace_id": ws}),
        )
        .await;
    assert_problem(r, 422, "workspace-not-found").await;

    // A's lists never show B's resources.
    let token = token_of(
        app.post(&format!("{in_a}/groups"), json!({"name": "last"}))
            .await,
    )
    .await;
    for (list, id) in [
        ("workspaces", &ws),
        ("users", &user),
        ("groups", &group),
        ("roles", &role),
        ("assignments", &assignment),
    ] {
        let page: Value = app
            .get(&format!("{in_a}/{list}?consistency={token}&limit=200"))
            .await
            .json()
            .await
            .unwrap();
        let ids: Vec<&str> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap())
            .collect();
        assert!(!ids.contains(&id.as_str()), "{list} of A shows B's {id}");
    }
}
