//! SIGTERM: stop accepting, finish what is in flight, flush the relay, exit in time.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::Service;
use crate::helpers::{fresh_database, slug, test_config, url_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_finishes_in_flight_requests_flushes_the_relay_and_exits_within_10_s() {
    let database = fresh_database().await;
    let config = test_config(&database);
    let mut service = Service::new(&config);
    service.start().await;
    let token = service
        .admin_token(config.bootstrap.tenant.as_ref().unwrap())
        .await;
    let target = super::load::Target::create(&service.address(), &token, &slug("sigterm")).await;
    let http = super::client(&token, Duration::from_secs(30));

    // Hold the commands in flight: a superuser locks the outbox, so each command's
    // transaction waits at its outbox insert until the lock goes.
    let (mut holder, connection) = tokio_postgres::connect(
        &url_for("DATABASE_ADMIN_URL", &database),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    let lock = holder.transaction().await.unwrap();
    lock.batch_execute("LOCK TABLE outbox IN EXCLUSIVE MODE")
        .await
        .unwrap();
    let in_flight: Vec<_> = (0..16)
        .map(|i| {
            let request = http
                .post(format!(
                    "{}/v1/tenants/{}/workspaces",
                    service.address(),
                    target.tenant_id
                ))
                .json(&json!({"name": format!("in-flight-{i}")}))
                .send();
            tokio::spawn(request)
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;

    let signalled = Instant::now();
    service.signal("TERM");
    // Once the signal is handled, nothing new is accepted.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let refused = reqwest::Client::new()
        .get(format!("{}/health", service.address()))
        .send()
        .await;
    assert!(
        refused.is_err(),
        "a new connection was served after SIGTERM: {:?}",
        refused.map(|r| r.status())
    );
    // The in-flight commands finish once their transactions can.
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    lock.commit().await.unwrap();
    let mut acknowledged = Vec::new();
    for request in in_flight {
        let response = request
            .await
            .unwrap()
            .expect("an in-flight request was cut off");
        assert_eq!(response.status(), 201, "an in-flight command failed");
        let body: Value = response.json().await.unwrap();
        acknowledged.extend(
            body["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|id| id.as_str().unwrap().parse::<uuid::Uuid>().unwrap()),
        );
    }
    let status = service
        .wait_exit(Duration::from_secs(10).saturating_sub(signalled.elapsed()))
        .await
        .unwrap_or_else(|| panic!("still running 10 s after SIGTERM; {}", service.tail()));
    let exited = signalled.elapsed();
    assert!(status.success(), "exit status {status}; {}", service.tail());

    // The relay flushed on its way out: nothing is left in either outbox.
    let left: i64 = holder
        .query_one(
            "SELECT (SELECT count(*) FROM outbox) + (SELECT count(*) FROM projections.policy_outbox)",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0, "the relay left outbox rows behind at shutdown");
    let found: i64 = holder
        .query_one(
            "SELECT count(*) FROM events WHERE event_id = ANY($1)",
            &[&acknowledged],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(found as usize, acknowledged.len());
    // Every published event is on the broker, the in-flight commands' included.
    let pool = charter::db::pool(&config.database).unwrap();
    super::assert_all_on_the_broker(&config, &pool).await;
    eprintln!(
        "sigterm: 16 in-flight commands finished (201) after the signal; new connections refused; \
         outboxes empty; exited 0 after {exited:?}"
    );
}
