//! Groups and membership.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, slug, spawn_app, TestApp};

async fn user(app: &TestApp, tenant: &str, name: &str) -> String {
    let r = app
        .post(
            &format!("/v1/tenants/{tenant}/users"),
            json!({"username": name, "email": format!("{name}@example.com")}),
        )
        .await;
    assert_eq!(r.status(), 201);
    r.json::<Value>().await.unwrap()["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn groups_and_membership() {
    let app = spawn_app().await;
    let t = app.create_tenant(&slug("groups")).await;
    let t = t["id"].as_str().unwrap();
    let other = app.create_tenant(&slug("other")).await;
    let other = other["id"].as_str().unwrap();
    let frank = user(&app, t, "frank").await;
    let stranger = user(&app, other, "grace").await;

    let r = app
        .post(
            &format!("/v1/tenants/{t}/groups"),
            json!({"name": "Admins"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let g = r.json::<Value>().await.unwrap()["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .post(
            &format!("/v1/tenants/{t}/groups"),
            json!({"name": "admins"}),
        )
        .await;
    assert_problem(r, 409, "already-taken").await;

    let member = format!("/v1/tenants/{t}/groups/{g}/members/{frank}");
    let r: Value = app
        .send(Method::PUT, &member, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(r["data"]["members"], json!([frank]));
    assert_eq!(r["events"].as_array().unwrap().len(), 1);
    let r: Value = app
        .send(Method::PUT, &member, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(r["events"], json!([]), "adding twice changes nothing");
    let token = r["consistency_token"].as_str().unwrap().to_owned();
    let list: Value = app
        .get(&format!("/v1/tenants/{t}/groups?consistency={token}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"][0]["members"], 1);

    // Only live users of the same tenant can join.
    for unknown in [stranger.clone(), uuid::Uuid::now_v7().to_string()] {
        let r = app
            .send(
                Method::PUT,
                &format!("/v1/tenants/{t}/groups/{g}/members/{unknown}"),
                None,
            )
            .await;
        assert_problem(r, 404, "not-found").await;
    }
    // Another tenant's path does not reach the group.
    let r = app
        .send(
            Method::PUT,
            &format!("/v1/tenants/{other}/groups/{g}/members/{stranger}"),
            None,
        )
        .await;
    assert_problem(r, 404, "not-found").await;
    assert_problem(
        app.get(&format!("/v1/tenants/{other}/groups/{g}")).await,
        404,
        "not-found",
    )
    .await;

    assert_eq!(app.send(Method::DELETE, &member, None).await.status(), 200);
    assert_problem(
        app.send(Method::DELETE, &member, None).await,
        404,
        "not-found",
    )
    .await;

    let r = app
        .send(Method::DELETE, &format!("/v1/tenants/{t}/groups/{g}"), None)
        .await;
    assert_eq!(r.status(), 200);
    assert_problem(
        app.get(&format!("/v1/tenants/{t}/groups/{g}")).await,
        404,
        "not-found",
    )
    .await;
    let r = app
        .post(
            &format!("/v1/tenants/{t}/groups"),
            json!({"name": "admins"}),
        )
        .await;
    assert_eq!(r.status(), 201, "the name is free again");
}
