//! Events reach Kafka as binary-mode CloudEvents that an outside consumer group can read and
//! validate against the published JSON Schemas.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use cloudevents::binding::rdkafka::MessageExt;
use cloudevents::{AttributesReader, Data, Event};
use futures::StreamExt;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{ClientConfig, Message};
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{slug, spawn_app_with, TestApp};

/// Reads `topic` from the beginning with a fresh consumer group until `want` distinct event
/// ids have arrived, as an outside service would. Returns (key, event) in arrival order.
pub async fn consume(
    brokers: &str,
    topic: &str,
    want: usize,
    within: Duration,
) -> Vec<(String, Event)> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("charter-test-{}", Uuid::now_v7()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("topic.metadata.refresh.interval.ms", "500")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let deadline = Instant::now() + within;
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    let mut stream = consumer.stream();
    while seen.len() < want {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(next) = tokio::time::timeout(left, stream.next()).await else {
            panic!(
                "only {} of {want} events arrived on {topic} within {within:?}",
                seen.len()
            );
        };
        let message = match next {
            Some(Ok(m)) => m,
            Some(Err(e)) => {
                eprintln!("consumer error (retrying): {e}");
                continue;
            }
            None => break,
        };
        let key = String::from_utf8(message.key().unwrap_or_default().to_vec()).unwrap();
        let event = message.to_event().expect("a binary-mode CloudEvent");
        seen.insert(event.id().to_owned());
        out.push((key, event));
    }
    out
}

pub async fn wait_for_empty_outbox(app: &TestApp, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let n: i64 = app
            .pool
            .get()
            .await
            .unwrap()
            .query_one("SELECT count(*) FROM outbox", &[])
            .await
            .unwrap()
            .get(0);
        if n == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "outbox still holds {n} rows");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn schema(file: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("schemas/events")
        .join(file);
    serde_json::from_str(&std::fs::read_to_string(&path).expect("schema file")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_separate_consumer_group_receives_every_event_as_a_cloudevent() {
    let app = spawn_app_with(|c| c.relay.enabled = true).await;
    let t = app.create_tenant(&slug("kafka")).await;
    let t = t["id"].as_str().unwrap().to_owned();
    let ws = app.create_workspace(&t, "production").await;
    let ws = ws["id"].as_str().unwrap().to_owned();
    app.send(
        Method::PATCH,
        &format!("/v1/tenants/{t}/workspaces/{ws}"),
        Some(json!({"name": "prod"})),
    )
    .await;
    app.post(
        &format!("/v1/tenants/{t}/block"),
        json!({"reason": "audit"}),
    )
    .await;
    app.send(Method::POST, &format!("/v1/tenants/{t}/unblock"), None)
        .await;

    let rows = app
        .pool
        .get()
        .await
        .unwrap()
        .query(
            "SELECT event_id, event_type, schema_version, stream_id, stream_version, position, \
             tenant_id, workspace_id, metadata->>'correlation_id' FROM events \
             WHERE tenant_id = $1::text::uuid ORDER BY tx_id, position",
            &[&t],
        )
        .await
        .unwrap();
    assert_eq!(
        rows.len(),
        5 + 3,
        "five commands, and the three roles seeded with the tenant"
    );
    wait_for_empty_outbox(&app, Duration::from_secs(30)).await;

    // Everything published (Charter's own permission registrations included) arrives.
    let published = app.event_ids().await.len();
    let received = consume(
        &app.config.kafka.brokers,
        &app.config.kafka.events_topic,
        published,
        Duration::from_secs(30),
    )
    .await;
    let by_id: HashMap<String, &(String, Event)> =
        received.iter().map(|r| (r.1.id().to_owned(), r)).collect();
    let mut validators = HashMap::new();
    for row in &rows {
        let id: Uuid = row.get(0);
        let event_type: String = row.get(1);
        let version: i32 = row.get(2);
        let (key, ce) = by_id
            .get(&id.to_string())
            .unwrap_or_else(|| panic!("{id} not received"));
        let tenant_id: Uuid = row.get(6);
        assert_eq!(key, &tenant_id.to_string(), "keyed by tenant");
        assert_eq!(ce.ty(), format!("dev.charter.{event_type}.v{version}"));
        assert_eq!(
            ce.source().to_string(),
            format!("/charter/tenants/{tenant_id}")
        );
        assert_eq!(ce.subject(), Some(row.get::<_, String>(3).as_str()));
        let file = format!("{event_type}.v{version}.json");
        assert_eq!(
            ce.dataschema().map(|u| u.to_string()),
            Some(format!("https://charter.dev/schemas/events/{file}"))
        );
        let ext = |name: &str| ce.extension(name).map(|v| v.to_string());
        assert_eq!(ext("tenantid"), Some(tenant_id.to_string()));
        assert_eq!(ext("streamversion"), Some(row.get::<_, i64>(4).to_string()));
        assert_eq!(ext("position"), Some(row.get::<_, i64>(5).to_string()));
        assert_eq!(ext("correlationid"), row.get::<_, Option<String>>(8));
        assert_eq!(
            ext("workspaceid"),
            row.get::<_, Option<Uuid>>(7).map(|w| w.to_string())
        );
        let data: Value = match ce.data() {
            Some(Data::Json(v)) => v.clone(),
            Some(Data::Binary(b)) => serde_json::from_slice(b).unwrap(),
            other => panic!("unexpected data {other:?}"),
        };
        let validator = validators
            .entry(file.clone())
            .or_insert_with(|| jsonschema::validator_for(&schema(&file)).unwrap());
        let errors: Vec<String> = validator
            .iter_errors(&data)
            .map(|e| e.to_string())
            .collect();
        assert!(
            errors.is_empty(),
            "{file}: {data} does not validate: {errors:?}"
        );
    }
    // One tenant, one partition key: its events arrive in the order they were committed.
    let ours: std::collections::HashSet<String> = rows
        .iter()
        .map(|r| r.get::<_, Uuid>(0).to_string())
        .collect();
    let order: Vec<String> = received
        .iter()
        .map(|(_, e)| e.id().to_owned())
        .filter(|id| ours.contains(id))
        .collect();
    let committed: Vec<String> = rows
        .iter()
        .map(|r| r.get::<_, Uuid>(0).to_string())
        .collect();
    assert_eq!(dedup(order), committed);
}

/// First occurrence of each id (delivery is at-least-once).
pub fn dedup(ids: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    ids.into_iter()
        .filter(|id| seen.insert(id.clone()))
        .collect()
}
