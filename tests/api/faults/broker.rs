//! A broker outage: commands keep succeeding into the outbox, `/ready` and `/metrics` show
//! the backlog, and after the broker returns every event arrives, in order.

use super::Broker;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::knob;
use super::load::{self, Load, Target};
use crate::helpers::{
    fresh_database, login_eventually, slug, spawn_with_config, test_config, ADMIN, ADMIN_PASSWORD,
};
use crate::kafka::{consume, dedup, wait_for_empty_outbox};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_succeed_while_the_broker_is_down_and_the_backlog_drains_in_order() {
    let dir =
        std::env::temp_dir().join(format!("charter-outage-{}", uuid::Uuid::now_v7().simple()));
    let mut broker = Broker::start(dir.clone(), super::free_port());
    let database = fresh_database().await;
    let mut config = test_config(&database);
    config.kafka.brokers = format!("127.0.0.1:{}", broker.port);
    config.kafka.message_timeout_ms = 3_000;
    config.relay.enabled = true;
    let app = spawn_with_config(config).await;

    app.create_tenant(&slug("outage")).await;
    wait_for_empty_outbox(&app, Duration::from_secs(30)).await;

    // Under a steady load of mixed commands, the broker goes away.
    let token = login_eventually(
        &app.address,
        app.config.bootstrap.tenant.as_ref().unwrap(),
        ADMIN,
        ADMIN_PASSWORD,
    )
    .await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let target = Target::create(&app.address, &token, &slug("outage-load")).await;
    let down_for = Duration::from_secs(knob("BROKER_DOWN_S", 8));
    broker.stop();
    let stopped_at = Instant::now();
    let load = Load::start(&target, knob("BROKER_CLIENTS", 8) as usize);
    // The relay notices: /ready stays 200 but reports degraded; /metrics shows the backlog,
    // which only grows while the broker is away.
    let mut backlog = Vec::new();
    let mut degraded = false;
    while stopped_at.elapsed() < down_for {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let r = app.ops("/ready").await;
        assert_eq!(
            r.status(),
            200,
            "a broker outage does not unready the service"
        );
        let ready: Value = r.json().await.unwrap();
        degraded |= ready["status"] == "degraded";
        let metrics = app.ops("/metrics").await.text().await.unwrap();
        let gauge = metrics
            .lines()
            .find_map(|l| l.strip_prefix("charter_outbox_backlog "))
            .expect("backlog gauge");
        backlog.push(gauge.trim().parse::<f64>().unwrap() as i64);
    }
    let report = load.stop().await;
    load::print("broker outage", &report, stopped_at.elapsed());
    assert!(degraded, "/ready never reported degraded during the outage");
    assert!(
        report.ok > 0 && report.outcomes.keys().all(|s| s.starts_with('2')),
        "every command succeeds while the broker is down: {:?}",
        report.outcomes
    );
    assert!(
        backlog.windows(2).all(|w| w[0] <= w[1]) && backlog.last() > backlog.first(),
        "the backlog grows while the broker is down: {backlog:?}"
    );
    eprintln!("broker outage: backlog every 0.5 s: {backlog:?}");

    let client = app.pool.get().await.unwrap();
    let pending = || async {
        let row = client
            .query_one(
                "SELECT (SELECT count(*) FROM outbox), (SELECT count(*) FROM projections.policy_outbox)",
                &[],
            )
            .await
            .unwrap();
        (row.get::<_, i64>(0), row.get::<_, i64>(1))
    };
    let (events_at_restart, bumps_at_restart) = pending().await;
    let restarted_at = Instant::now();
    broker.restart();
    let mut events_drained = None;
    let deadline = restarted_at + Duration::from_secs(180);
    loop {
        let (events, bumps) = pending().await;
        if events == 0 && events_drained.is_none() {
            events_drained = Some(restarted_at.elapsed());
        }
        if events == 0 && bumps == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{events} events and {bumps} policy bumps still queued"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let drained = restarted_at.elapsed();
    eprintln!(
        "broker outage: down {down_for:?}; after the broker restarted, {events_at_restart} queued \
         events drained in {:?} and, with them, {bumps_at_restart} policy bumps in {drained:?}",
        events_drained.unwrap()
    );

    let (events, took) = every_event_arrives_in_order(&app, Duration::from_secs(120)).await;
    eprintln!("broker outage: a fresh consumer group read all {events} events in {took:?}");
    let _ = std::fs::remove_dir_all(dir);
}

/// The broker is not there when Charter starts, so the relay's start-up topic creation fails;
/// once the broker comes, every event arrives, in order. (The relay now asks for the topics
/// again after a failed batch: a full-suite run once saw a slow broker time the creation out
/// and every batch then fail with UnknownTopicOrPartition. This test does not reproduce that
/// timing, tansu creating the topic on first produce here; it keeps the late broker covered.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_comes_after_charter_gets_its_topics_and_every_event() {
    let dir = std::env::temp_dir().join(format!("charter-late-{}", uuid::Uuid::now_v7().simple()));
    let port = super::free_port();
    let database = fresh_database().await;
    let mut config = test_config(&database);
    config.kafka.brokers = format!("127.0.0.1:{port}");
    config.kafka.message_timeout_ms = 3_000;
    config.relay.enabled = true;
    let app = spawn_with_config(config).await;
    app.create_tenant(&slug("late-broker")).await;
    // Long enough for the relay's start-up attempt to fail and its first batches too.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let broker = Broker::start(dir.clone(), port);
    let arrived = Instant::now();
    wait_for_empty_outbox(&app, Duration::from_secs(60)).await;
    let (events, _) = every_event_arrives_in_order(&app, Duration::from_secs(60)).await;
    eprintln!(
        "late broker: {events} events published within {:?} of the broker's start",
        arrived.elapsed()
    );
    drop(broker);
    let _ = std::fs::remove_dir_all(dir);
}

/// A fresh consumer group reads every event of the app's log from the topic, in commit order
/// (duplicates aside). Returns how many, and how long the reading took.
async fn every_event_arrives_in_order(
    app: &crate::helpers::TestApp,
    within: Duration,
) -> (usize, Duration) {
    let committed: Vec<String> = app
        .event_ids()
        .await
        .iter()
        .map(|id| id.to_string())
        .collect();
    let consuming = Instant::now();
    let received = consume(
        &app.config.kafka.brokers,
        &app.config.kafka.events_topic,
        committed.len(),
        within,
    )
    .await;
    let took = consuming.elapsed();
    let order = dedup(
        received
            .iter()
            .map(|(_, e)| cloudevents::AttributesReader::id(e).to_owned())
            .collect(),
    );
    assert_eq!(order, committed, "every event arrived, in commit order");
    (committed.len(), took)
}
