//! Tenant commands end to end: lifecycle, hierarchy rules, uniqueness, concurrency control,
//! idempotency and read-your-writes.

use futures::future::join_all;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, slug, spawn_app, TENANT_EVENTS};

#[tokio::test]
async fn tenant_lifecycle_returns_state_events_token_and_etag() {
    let app = spawn_app().await;
    let s = slug("acme");
    let r = app
        .post("/v1/tenants", json!({"name": "  Acme Corp ", "slug": s}))
        .await;
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["etag"], "\"1\"");
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let body: Value = r.json().await.unwrap();
    let id = body["data"]["id"].as_str().unwrap().to_owned();
    assert_eq!(location, format!("/v1/tenants/{id}"));
    assert_eq!(body["data"]["name"], "Acme Corp", "names are trimmed");
    assert_eq!(body["data"]["status"], "active");
    assert_eq!(
        body["events"].as_array().unwrap().len(),
        TENANT_EVENTS as usize
    );
    let token = body["consistency_token"].as_str().unwrap().to_owned();

    let r = app.get(&format!("/v1/tenants/{id}")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["etag"], "\"1\"");

    // Read-your-writes on the projection.
    let r = app.get(&format!("/v1/tenants?consistency={token}")).await;
    assert_eq!(r.status(), 200);
    let list: Value = r.json().await.unwrap();
    assert!(list["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["id"] == id.as_str()));

    let r = app
        .send(
            Method::PATCH,
            &format!("/v1/tenants/{id}"),
            Some(json!({"name": "Acme"})),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["etag"], "\"2\"");

    let r = app
        .post(
            &format!("/v1/tenants/{id}/block"),
            json!({"reason": "unpaid"}),
        )
        .await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["data"]["status"], "blocked");
    assert_eq!(body["data"]["blocked_reason"], "unpaid");

    // Blocking again changes nothing and appends nothing.
    let before = app.count_events().await;
    let r = app
        .post(&format!("/v1/tenants/{id}/block"), json!({}))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["events"], json!([]));
    assert_eq!(app.count_events().await, before);

    let r = app
        .send(Method::POST, &format!("/v1/tenants/{id}/unblock"), None)
        .await;
    assert_eq!(r.json::<Value>().await.unwrap()["data"]["status"], "active");

    let r = app
        .send(Method::DELETE, &format!("/v1/tenants/{id}"), None)
        .await;
    assert_eq!(r.status(), 200);
    assert_problem(
        app.get(&format!("/v1/tenants/{id}")).await,
        404,
        "not-found",
    )
    .await;
    assert_problem(
        app.send(Method::DELETE, &format!("/v1/tenants/{id}"), None)
            .await,
        404,
        "not-found",
    )
    .await;
}

#[tokio::test]
async fn hierarchy_rejects_missing_parents_and_cycles() {
    let app = spawn_app().await;
    let missing = uuid::Uuid::now_v7();
    let r = app
        .post(
            "/v1/tenants",
            json!({"name": "Orphan", "slug": slug("orphan"), "parent_id": missing}),
        )
        .await;
    assert_problem(r, 422, "parent-not-found").await;

    let root = app.create_tenant(&slug("root")).await;
    let root_id = root["id"].as_str().unwrap();
    let r = app
        .post(
            "/v1/tenants",
            json!({"name": "Child", "slug": slug("child"), "parent_id": root_id}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let child: Value = r.json().await.unwrap();
    let child_id = child["data"]["id"].as_str().unwrap();
    assert_eq!(child["data"]["parent_id"], root_id);

    // root below its own child: a cycle.
    let r = app
        .send(
            Method::PATCH,
            &format!("/v1/tenants/{root_id}"),
            Some(json!({"parent_id": child_id})),
        )
        .await;
    assert_problem(r, 422, "hierarchy-cycle").await;
    // Below itself: also a cycle.
    let r = app
        .send(
            Method::PATCH,
            &format!("/v1/tenants/{root_id}"),
            Some(json!({"parent_id": root_id})),
        )
        .await;
    assert_problem(r, 422, "hierarchy-cycle").await;

    // Moving the child to the root level works (explicit null).
    let r = app
        .send(
            Method::PATCH,
            &format!("/v1/tenants/{child_id}"),
            Some(json!({"parent_id": null})),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap()["data"]["parent_id"],
        Value::Null
    );

    // A blocked parent takes no new children.
    app.post(&format!("/v1/tenants/{root_id}/block"), json!({}))
        .await;
    let r = app
        .post(
            "/v1/tenants",
            json!({"name": "Late", "slug": slug("late"), "parent_id": root_id}),
        )
        .await;
    assert_problem(r, 422, "parent-blocked").await;
}

#[tokio::test]
async fn slugs_are_unique_even_under_concurrency() {
    let app = spawn_app().await;
    let s = slug("dup");
    let attempts = (0..8).map(|i| {
        app.post(
            "/v1/tenants",
            json!({"name": format!("Dup {i}"), "slug": s}),
        )
    });
    let statuses: Vec<u16> = join_all(attempts)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        7,
        "{statuses:?}"
    );
    assert_eq!(app.count_events().await, TENANT_EVENTS);
    let r = app
        .post("/v1/tenants", json!({"name": "Again", "slug": s}))
        .await;
    assert_problem(r, 409, "already-taken").await;
}

#[tokio::test]
async fn concurrent_patches_with_the_same_if_match_have_exactly_one_winner() {
    let app = spawn_app().await;
    let tenant = app.create_tenant(&slug("race")).await;
    let id = tenant["id"].as_str().unwrap().to_owned();
    let requests = (0..32).map(|i| {
        app.http
            .patch(app.url(&format!("/v1/tenants/{id}")))
            .header("If-Match", "\"1\"")
            .json(&json!({"name": format!("Writer {i}")}))
            .send()
    });
    let responses = join_all(requests).await;
    let mut won = 0;
    let mut failed = 0;
    for r in responses {
        let r = r.unwrap();
        match r.status().as_u16() {
            200 => won += 1,
            412 => {
                assert_problem(r, 412, "precondition-failed").await;
                failed += 1;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!((won, failed), (1, 31));
    let r = app.get(&format!("/v1/tenants/{id}")).await;
    assert_eq!(r.headers()["etag"], "\"2\"");
    assert_eq!(app.count_events().await, TENANT_EVENTS + 1);

    // A stale If-Match after the fact, and a garbage one, are 412 too.
    for tag in ["\"1\"", "W/\"2\"", "\"abc\""] {
        let r = app
            .http
            .patch(app.url(&format!("/v1/tenants/{id}")))
            .header("If-Match", tag)
            .json(&json!({"name": "late"}))
            .send()
            .await
            .unwrap();
        assert_problem(r, 412, "precondition-failed").await;
    }
}

#[tokio::test]
async fn concurrent_patches_without_if_match_all_succeed_by_retrying() {
    let app = spawn_app().await;
    let tenant = app.create_tenant(&slug("retry")).await;
    let id = tenant["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/tenants/{id}");
    let requests =
        (0..8).map(|i| app.send(Method::PATCH, &path, Some(json!({"name": format!("W{i}")}))));
    let statuses: Vec<u16> = join_all(requests)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    // A writer only loses a race to another writer's commit, so it loses at most once to each
    // of the other 7: within its 8 attempts every one of them lands. No 409, no lost update.
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(
        app.count_events().await,
        TENANT_EVENTS + 8,
        "one rename per request"
    );
}

#[tokio::test]
async fn idempotent_retries_replay_the_first_response_and_append_nothing() {
    let app = spawn_app().await;
    let s = slug("idem");
    let send = |body: Value, key: &'static str| {
        app.http
            .post(app.url("/v1/tenants"))
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
    };
    let body = json!({"name": "Idem", "slug": s});
    // Eight copies race for the key: exactly one executes, the others wait for it and replay.
    let responses = join_all((0..8).map(|_| send(body.clone(), "key-1"))).await;
    let mut replies = Vec::new();
    for r in responses {
        let r = r.unwrap();
        let head = (
            r.status().as_u16(),
            r.headers()["etag"].to_str().unwrap().to_owned(),
            r.headers()["location"].to_str().unwrap().to_owned(),
        );
        replies.push((head, r.bytes().await.unwrap()));
    }
    assert_eq!(replies[0].0 .0, 201);
    assert!(
        replies.iter().all(|r| *r == replies[0]),
        "identical status, headers and bytes"
    );
    assert_eq!(
        app.count_events().await,
        TENANT_EVENTS,
        "one tenant created, once"
    );

    let late = send(body.clone(), "key-1").await.unwrap();
    assert_eq!(late.bytes().await.unwrap(), replies[0].1);
    assert_eq!(app.count_events().await, TENANT_EVENTS);

    let r = send(json!({"name": "Other", "slug": slug("other")}), "key-1")
        .await
        .unwrap();
    assert_problem(r, 422, "idempotency-key-reused").await;
}

async fn chain(app: &crate::helpers::TestApp, levels: usize) -> (String, String) {
    let root = app.create_tenant(&slug("chain")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut leaf = root.clone();
    for _ in 1..levels {
        let body = json!({"name": "level", "slug": slug("lvl"), "parent_id": leaf});
        let r = app.post("/v1/tenants", body).await;
        assert_eq!(r.status(), 201);
        leaf = r.json::<Value>().await.unwrap()["data"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
    }
    (root, leaf)
}

async fn move_tenant(app: &crate::helpers::TestApp, id: &str, parent: &str) -> reqwest::Response {
    let path = format!("/v1/tenants/{id}");
    app.send(Method::PATCH, &path, Some(json!({ "parent_id": parent })))
        .await
}

#[tokio::test]
async fn a_move_may_not_push_any_descendant_past_the_depth_limit() {
    let app = spawn_app().await;
    let (_, deep_leaf) = chain(&app, 20).await;
    let (tall_root, _) = chain(&app, 13).await;
    // 20 levels above, 13 moving: 33, one too many.
    assert_problem(
        move_tenant(&app, &tall_root, &deep_leaf).await,
        422,
        "hierarchy-too-deep",
    )
    .await;
    let (short_root, _) = chain(&app, 12).await;
    assert_eq!(
        move_tenant(&app, &short_root, &deep_leaf).await.status(),
        200,
        "20 + 12 = 32 fits"
    );
}
