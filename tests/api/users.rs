//! Users: lifecycle, credentials that never leak, uniqueness within a tenant, isolation.

use futures::future::join_all;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, slug, spawn_app};

const PASSWORD: &str = "correct horse battery staple";

#[tokio::test]
async fn user_lifecycle_without_leaking_the_password() {
    let app = spawn_app().await;
    let t = app.create_tenant(&slug("users")).await;
    let t = t["id"].as_str().unwrap();
    let r = app
        .post(
            &format!("/v1/tenants/{t}/users"),
            json!({"username": "Alice", "email": "alice@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let body: Value = r.json().await.unwrap();
    let user = &body["data"];
    let id = user["id"].as_str().unwrap().to_owned();
    assert_eq!(user["username"], "Alice");
    assert_eq!(user["has_password"], true);
    assert_eq!(user["account_version"], 1);
    assert_eq!(user["status"], "active");
    assert_eq!(
        body["events"].as_array().unwrap().len(),
        2,
        "created + password_set"
    );
    let text = body.to_string();
    assert!(
        !text.contains(PASSWORD) && !text.contains("pbkdf2"),
        "{text}"
    );

    // The hash is in the log (so the log rebuilds credentials) but has no outbox row, so it
    // never reaches Kafka, and no other event carries it.
    let client = app.pool.get().await.unwrap();
    let row = client
        .query_one(
            "SELECT data->>'password_hash', \
                    EXISTS (SELECT 1 FROM outbox o WHERE o.position = e.position) \
             FROM events e WHERE event_type = 'user.password_set' AND tenant_id <> $1",
            &[&app.root_tenant_id],
        )
        .await
        .unwrap();
    let hash: String = row.get(0);
    assert!(hash.starts_with("$pbkdf2-sha256$i=1000$"));
    assert!(
        !row.get::<_, bool>(1),
        "user.password_set must not be outboxed"
    );
    assert!(charter::auth::password::verify(PASSWORD, &hash).unwrap());
    let leaks: i64 = client
        .query_one(
            "SELECT count(*) FROM events WHERE event_type <> 'user.password_set' \
             AND data::text LIKE '%pbkdf2%'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(leaks, 0);

    let token = body["consistency_token"].as_str().unwrap();
    let list: Value = app
        .get(&format!("/v1/tenants/{t}/users?consistency={token}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"][0]["id"], id.as_str());
    assert!(!list.to_string().contains("pbkdf2"));

    let path = format!("/v1/tenants/{t}/users/{id}");
    let r = app
        .send(
            Method::PATCH,
            &path,
            Some(json!({"email": "alice@corp.example", "display_name": "Alice A."})),
        )
        .await;
    assert_eq!(r.status(), 200);
    let r: Value = r.json().await.unwrap();
    assert_eq!(r["data"]["email"], "alice@corp.example");
    assert_eq!(r["events"].as_array().unwrap().len(), 2);

    let r: Value = app
        .send(Method::POST, &format!("{path}/disable"), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(r["data"]["status"], "disabled");
    let r: Value = app
        .send(Method::POST, &format!("{path}/enable"), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(r["data"]["status"], "active");
    assert_eq!(app.get(&path).await.status(), 200);

    // The old email is free again; deleting frees the username too.
    let r = app
        .post(
            &format!("/v1/tenants/{t}/users"),
            json!({"username": "bob", "email": "ALICE@example.com"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    assert_eq!(app.send(Method::DELETE, &path, None).await.status(), 200);
    assert_problem(app.get(&path).await, 404, "not-found").await;
    let r = app
        .post(
            &format!("/v1/tenants/{t}/users"),
            json!({"username": "alice", "email": "new@example.com"}),
        )
        .await;
    assert_eq!(r.status(), 201, "username free after delete");
}

#[tokio::test]
async fn usernames_and_emails_are_unique_per_tenant_ignoring_case_even_concurrently() {
    let app = spawn_app().await;
    let a = app.create_tenant(&slug("ua")).await;
    let b = app.create_tenant(&slug("ub")).await;
    let (a, b) = (a["id"].as_str().unwrap(), b["id"].as_str().unwrap());
    let path = format!("/v1/tenants/{a}/users");
    let attempts = (0..8).map(|i| {
        app.post(&path, json!({"username": if i % 2 == 0 { "Carol" } else { "carol" }, "email": format!("c{i}@example.com")}))
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
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 409),
        "{statuses:?}"
    );
    let r = app
        .post(
            &path,
            json!({"username": "dave", "email": "C0@EXAMPLE.COM"}),
        )
        .await;
    let first_email_won = statuses[0] == 201;
    if first_email_won {
        assert_problem(r, 409, "already-taken").await;
    }
    // Another tenant is another namespace.
    let r = app
        .post(
            &format!("/v1/tenants/{b}/users"),
            json!({"username": "carol", "email": "c0@example.com"}),
        )
        .await;
    assert_eq!(r.status(), 201);
}

#[tokio::test]
async fn bad_users_are_refused_and_other_tenants_users_are_invisible() {
    let app = spawn_app().await;
    let a = app.create_tenant(&slug("va")).await;
    let b = app.create_tenant(&slug("vb")).await;
    let (a, b) = (a["id"].as_str().unwrap(), b["id"].as_str().unwrap());
    let users = format!("/v1/tenants/{a}/users");
    let create = |body: Value| app.post(&users, body);
    for body in [
        json!({"username": "erin", "email": "erin@example.com", "password": "short"}),
        json!({"username": "erin", "email": "erin@example.com", "password": "Erin@Example.com"}),
        json!({"username": "erin smith", "email": "erin@example.com"}),
        json!({"username": "erin", "email": "not-an-email"}),
    ] {
        assert_problem(create(body).await, 422, "validation-failed").await;
    }
    let erin = create(json!({"username": "erin", "email": "erin@example.com"})).await;
    let erin = erin.json::<Value>().await.unwrap()["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let foreign = format!("/v1/tenants/{b}/users/{erin}");
    assert_problem(app.get(&foreign).await, 404, "not-found").await;
    for (method, path) in [
        (Method::DELETE, foreign.clone()),
        (Method::POST, format!("{foreign}/disable")),
        (Method::POST, format!("{foreign}/enable")),
    ] {
        assert_problem(app.send(method, &path, None).await, 404, "not-found").await;
    }
    let r = app
        .send(Method::PATCH, &foreign, Some(json!({"display_name": "x"})))
        .await;
    assert_problem(r, 404, "not-found").await;
}
