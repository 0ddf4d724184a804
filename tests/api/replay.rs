//! `charter replay`: a rebuild into a shadow schema equals live while the service serves
//! traffic, a tampered read model is caught with its rows, `--swap` promotes the shadow
//! (repairing it) without touching the outboxes, and `--projection` narrows the work.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use serde_json::{json, Value};

use crate::helpers::{run_charter, slug, spawn_app, superuser, url_for, TestApp};

async fn create_user(app: &TestApp, tenant: &str, name: &str) -> Value {
    let r = app
        .post(
            &format!("/v1/tenants/{tenant}/users"),
            json!({"username": name, "email": format!("{name}@example.com"), "display_name": name}),
        )
        .await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    r.json::<Value>().await.unwrap()["data"].clone()
}

/// How many rows were ever written to the event store's outbox and to the policy outbox
/// (the relay deletes what it published, so this reads their identity sequences).
async fn outboxes(app: &TestApp) -> (i64, i64) {
    let row = superuser(app)
        .await
        .query_one(
            "SELECT COALESCE(pg_sequence_last_value(pg_get_serial_sequence('outbox', 'id')::regclass), 0), \
             COALESCE(pg_sequence_last_value(pg_get_serial_sequence('projections.policy_outbox', 'id')::regclass), 0)",
            &[],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

async fn shadow_schemas(app: &TestApp) -> i64 {
    superuser(app)
        .await
        .query_one(
            "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'shadow\\_%'",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replay_during_traffic_equals_live() {
    let app = Arc::new(spawn_app().await);
    let t = app.create_tenant(&slug("replaylive")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for i in 0..20 {
        create_user(&app, &t, &format!("before{i}")).await;
    }
    app.projected().await;

    // Writers keep the service busy for the whole replay.
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (app, t, stop) = (app.clone(), t.clone(), stop.clone());
            tokio::spawn(async move {
                let mut written = 0;
                while !stop.load(Ordering::Relaxed) {
                    let r = app
                        .post(
                            &format!("/v1/tenants/{t}/workspaces"),
                            json!({"name": format!("w{w}-{written}")}),
                        )
                        .await;
                    assert_eq!(r.status(), 201);
                    written += 1;
                }
                written
            })
        })
        .collect();

    let mut owner = app.config.database.clone();
    owner.url = SecretString::from(url_for("DATABASE_OWNER_URL", &app.database_name()));
    owner.migration_url = None;
    let projections = charter_projections::all();
    let pool = charter::db::owner_pool(&owner, projections.len() + 3).unwrap();
    let replay = charter_projections::replay::Replay::new(pool, projections, 100);
    let mut progress = Vec::new();
    let report = replay
        .run(false, false, Duration::from_secs(60), |p| progress.push(p))
        .await
        .expect("replay");
    stop.store(true, Ordering::Relaxed);
    let mut written = 0;
    for w in writers {
        written += w.await.unwrap();
    }
    println!(
        "replay during traffic: {} events in {:.2} s while {written} commands were served",
        report.events, report.rebuild_seconds
    );
    assert!(written > 0, "the writers ran during the replay");
    let last = progress.last().expect("progress is reported");
    assert_eq!(last.applied, report.events);
    for t in &report.tables {
        assert!(t.identical(), "{t:?}");
        if [
            "tenants",
            "workspaces",
            "users",
            "audit_chain",
            "checkpoints",
        ]
        .contains(&t.table.as_str())
        {
            assert!(t.live_rows > 0, "{t:?}");
        }
    }
    let owned: usize = charter_projections::all()
        .iter()
        .map(|p| p.tables().len())
        .sum();
    assert_eq!(
        report.tables.len(),
        owned + 2,
        "every owned table, checkpoints and failures"
    );
    assert_eq!(shadow_schemas(&app).await, 0, "the shadow is dropped");
}

#[tokio::test]
async fn a_tampered_read_model_is_caught_and_swap_repairs_it() {
    let app = spawn_app().await;
    let t = app.create_tenant(&slug("replayswap")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let user = create_user(&app, &t, "honest").await;
    let id = user["id"].as_str().unwrap().to_owned();
    create_user(&app, &t, "bystander").await;
    app.projected().await;
    let before = outboxes(&app).await;

    let clean = run_charter(&app, &["replay"]).await;
    let stdout = String::from_utf8_lossy(&clean.stdout);
    assert!(
        clean.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&clean.stderr)
    );
    assert!(!stdout.contains("DIFFERS"), "{stdout}");

    // A superuser edits one live row behind the service's back.
    superuser(&app)
        .await
        .execute(
            "UPDATE projections.users SET display_name = 'tampered' WHERE user_id = $1::text::uuid",
            &[&id],
        )
        .await
        .unwrap();
    let caught = run_charter(&app, &["replay", "--projection", "users"]).await;
    let stdout = String::from_utf8_lossy(&caught.stdout);
    let stderr = String::from_utf8_lossy(&caught.stderr);
    assert_eq!(caught.status.code(), Some(1), "{stdout}{stderr}");
    let users_line = stdout.lines().find(|l| l.starts_with("users ")).unwrap();
    assert!(users_line.ends_with("DIFFERS"), "{stdout}");
    let live_only = stdout
        .lines()
        .find(|l| l.contains("live only:"))
        .expect("the live row is shown");
    assert!(
        live_only.contains("tampered") && live_only.contains(&id),
        "{stdout}"
    );
    let shadow_only = stdout
        .lines()
        .find(|l| l.contains("shadow only:"))
        .expect("the rebuilt row is shown");
    assert!(
        shadow_only.contains("\"honest\"") && shadow_only.contains(&id),
        "{stdout}"
    );
    assert!(
        !stdout.contains("groups ") && !stdout.contains("audit_chain"),
        "--projection users compares only what users owns: {stdout}"
    );
    assert!(stderr.contains("DIFFER"), "{stderr}");

    let swapped = run_charter(&app, &["replay", "--projection", "users", "--swap"]).await;
    let stderr = String::from_utf8_lossy(&swapped.stderr);
    assert!(swapped.status.success(), "{stderr}");
    assert!(stderr.contains("promoted"), "{stderr}");
    let r = app.get(&format!("/v1/tenants/{t}/users/{id}")).await;
    assert_eq!(r.json::<Value>().await.unwrap()["display_name"], "honest");

    // The live projection goes on from the promoted checkpoint.
    let r = app
        .send(
            reqwest::Method::PATCH,
            &format!("/v1/tenants/{t}/users/{id}"),
            Some(json!({"display_name": "renamed"})),
        )
        .await;
    assert!(r.status().is_success(), "{}", r.status());
    app.projected().await;
    let r = app.get(&format!("/v1/tenants/{t}/users/{id}")).await;
    assert_eq!(r.json::<Value>().await.unwrap()["display_name"], "renamed");

    let again = run_charter(&app, &["replay", "--json"]).await;
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let report: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(report["promoted"], false);
    assert!(report["events"].as_u64().unwrap() > 0);

    let unknown = run_charter(&app, &["replay", "--projection", "nope"]).await;
    assert!(!unknown.status.success());
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        stderr.contains("unknown projection") && stderr.contains("users"),
        "{stderr}"
    );

    let after = outboxes(&app).await;
    assert_eq!(after.1, before.1, "replay and swap add no policy bumps");
    assert_eq!(
        after.0 - before.0,
        1,
        "only the one command wrote to the outbox (its event)"
    );
    assert_eq!(shadow_schemas(&app).await, 0, "every shadow is dropped");
}

/// Followers read the log batch after batch through prepared statements, which PostgreSQL
/// plans generically after a few runs: that plan must walk the global-order index, never sort
/// the rest of the log (as it did while `ORDER BY tx_id` meant the selected bigint alias).
#[tokio::test]
async fn the_log_is_read_through_its_index_even_with_a_generic_plan() {
    let app = spawn_app().await;
    let client = app.pool.get().await.unwrap();
    client
        // A test database is small, where a sort is cheapest: take the scans that ignore order
        // away, so the plan shows whether the index alone can deliver the log in order.
        .batch_execute(
            "SET plan_cache_mode = force_generic_plan; SET enable_seqscan = off; \
             SET enable_bitmapscan = off",
        )
        .await
        .unwrap();
    let plan: String = client
        .query(
            &format!("EXPLAIN {}", charter_log::reader::read_range_sql()),
            &[&"0", &0i64, &i64::MAX.to_string(), &i64::MAX, &5000i64],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(plan.contains("events_global_order"), "{plan}");
    assert!(!plan.contains("Sort"), "{plan}");
}
