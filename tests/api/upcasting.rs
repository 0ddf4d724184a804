//! `user.created` v2 added given and family names. A v1 row written before the change stays
//! in the log untouched, loads and folds as v2 on the write side, projects as v2, and a replay
//! over the mixed v1/v2 history equals the live read models.

use std::time::Duration;

use reqwest::Method;
use secrecy::SecretString;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{slug, spawn_app, url_for, TestApp};

/// Appends `user.created` v1 exactly as the code before v2 wrote it: the event and its outbox
/// row in one transaction.
async fn append_v1_user(app: &TestApp, tenant: Uuid, user: Uuid, name: &str) -> Value {
    let data = json!({
        "user_id": user,
        "tenant_id": tenant,
        "username": name,
        "email": format!("{name}@example.com"),
        "display_name": "Grace Brewster Murray Hopper",
        "has_password": false
    });
    let metadata = json!({"actor": "user:legacy", "correlation_id": Uuid::now_v7()});
    let mut client = app.pool.get().await.unwrap();
    let tx = client.transaction().await.unwrap();
    let position: i64 = tx
        .query_one(
            "INSERT INTO events (event_id, stream_type, stream_id, stream_version, tenant_id, \
             event_type, schema_version, data, metadata) \
             VALUES ($1, 'user', $2, 1, $3, 'user.created', 1, $4, $5) RETURNING position",
            &[
                &Uuid::now_v7(),
                &format!("user-{user}"),
                &tenant,
                &data,
                &metadata,
            ],
        )
        .await
        .unwrap()
        .get(0);
    tx.execute("INSERT INTO outbox (position) VALUES ($1)", &[&position])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    data
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v1_user_loads_folds_projects_and_replays_as_v2() {
    let app = spawn_app().await;
    let t: Uuid = app.create_tenant(&slug("upcast")).await["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let legacy = Uuid::now_v7();
    let v1 = append_v1_user(&app, t, legacy, "grace").await;

    // A v2 user created through the API, beside it.
    let r = app
        .post(
            &format!("/v1/tenants/{t}/users"),
            json!({"username": "ada", "email": "ada@example.com", "given_name": "Ada",
                   "family_name": "Lovelace", "display_name": "Ada Lovelace"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let ada = r.json::<Value>().await.unwrap()["data"].clone();
    assert_eq!(
        (&ada["given_name"], &ada["family_name"]),
        (&json!("Ada"), &json!("Lovelace"))
    );

    // The write side loads the v1 stream (upcast) and decides on it.
    let r = app
        .send(
            Method::PATCH,
            &format!("/v1/tenants/{t}/users/{legacy}"),
            Some(json!({"email": "grace@navy.example"})),
        )
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let grace = r.json::<Value>().await.unwrap()["data"].clone();
    assert_eq!(grace["username"], "grace");
    assert_eq!(grace["display_name"], "Grace Brewster Murray Hopper");
    assert_eq!(grace["email"], "grace@navy.example");
    assert_eq!(
        (&grace["given_name"], &grace["family_name"]),
        (&Value::Null, &Value::Null)
    );
    assert_eq!(grace["version"], 2);

    // The read model folded the v1 row as v2.
    app.projected().await;
    let listed: Value = app
        .get(&format!("/v1/tenants/{t}/users"))
        .await
        .json()
        .await
        .unwrap();
    let row = |name: &str| {
        listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["username"] == name)
            .unwrap_or_else(|| panic!("{name} is listed: {listed}"))
            .clone()
    };
    let (grace, ada) = (row("grace"), row("ada"));
    assert_eq!(grace["display_name"], "Grace Brewster Murray Hopper");
    assert_eq!(grace["email"], "grace@navy.example");
    assert!(
        grace["given_name"].is_null() && grace["family_name"].is_null(),
        "{grace}"
    );
    assert_eq!(
        (&ada["given_name"], &ada["family_name"]),
        (&json!("Ada"), &json!("Lovelace"))
    );

    // The v1 row is still v1, byte for byte.
    let client = app.pool.get().await.unwrap();
    let stored = client
        .query_one(
            "SELECT schema_version, data FROM events WHERE stream_id = $1 AND stream_version = 1",
            &[&format!("user-{legacy}")],
        )
        .await
        .unwrap();
    assert_eq!(stored.get::<_, i32>(0), 1);
    assert_eq!(stored.get::<_, Value>(1), v1);
    let versions: Vec<i32> = client
        .query(
            "SELECT DISTINCT schema_version FROM events WHERE event_type = 'user.created' ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, [1, 2], "the history mixes both versions");

    // A replay over the mixed history equals live.
    let mut owner = app.config.database.clone();
    owner.url = SecretString::from(url_for("DATABASE_OWNER_URL", &app.database_name()));
    owner.migration_url = None;
    let projections = charter_projections::all();
    let pool = charter::db::owner_pool(&owner, projections.len() + 3).unwrap();
    let report = charter_projections::replay::Replay::new(pool, projections, 500)
        .run(false, false, Duration::from_secs(30), |_| {})
        .await
        .unwrap();
    let differing: Vec<_> = report.tables.iter().filter(|t| !t.identical()).collect();
    assert!(differing.is_empty(), "{differing:?}");
    let users = report.tables.iter().find(|t| t.table == "users").unwrap();
    assert!(
        users.live_rows >= 3,
        "bootstrap admin, grace and ada: {users:?}"
    );
}
