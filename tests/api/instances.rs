//! Several instances on one database: migrations applied concurrently are safe, and exactly
//! one of them relays the outbox.

use std::time::{Duration, Instant};

use futures::future::join_all;
use serde_json::Value;

use crate::helpers::{fresh_database, slug, spawn_with_config, test_config};
use crate::kafka::wait_for_empty_outbox;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_share_one_database_with_exactly_one_relay_leader() {
    let database = fresh_database().await;
    let mut config = test_config(&database);
    config.relay.enabled = true;
    // Three instances start at once and race to migrate the empty database.
    let apps = join_all((0..3).map(|_| spawn_with_config(config.clone()))).await;

    let deadline = Instant::now() + Duration::from_secs(20);
    let leaders = loop {
        let mut leaders = 0;
        for app in &apps {
            let ready: Value = app.ops("/ready").await.json().await.unwrap();
            assert_eq!(ready["migrations"]["ok"], true, "{ready}");
            if ready["relay"]["detail"]["leader"] == true {
                leaders += 1;
            }
        }
        if leaders >= 1 || Instant::now() > deadline {
            break leaders;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(leaders, 1, "exactly one relay leader");

    // Writes through any instance are relayed by the leader.
    for app in &apps {
        app.create_tenant(&slug("multi")).await;
    }
    wait_for_empty_outbox(&apps[0], Duration::from_secs(30)).await;
    let migrations: i64 = apps[0]
        .pool
        .get()
        .await
        .unwrap()
        .query_one("SELECT count(*) FROM refinery_schema_history", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        migrations,
        i64::from(charter::db::latest_migration()),
        "each migration applied exactly once"
    );
}
