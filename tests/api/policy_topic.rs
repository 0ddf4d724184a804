//! Every policy_version bump reaches the compacted policy topic, keyed
//! `<tenant_id>/<workspace_id>` (nil workspace for the tenant's counter), as plain JSON
//! `{tenant_id, workspace_id, policy_version, contract}` that an outside consumer group can
//! read. Contract 2: a tenant-wide change moves the tenant's counter alone (one message,
//! whatever the number of workspaces), and a workspace's effective version is the tenant's
//! counter plus its own.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::StreamExt;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Headers;
use rdkafka::{ClientConfig, Message};
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::entitlements::{id_of, token_of};
use crate::helpers::{slug, spawn_app_with, TestApp};

/// One message as an outside consumer sees it.
struct Received {
    key: String,
    value: Value,
    content_type: Option<String>,
}

/// Reads `topic` from the beginning with a fresh consumer group until `want` messages have
/// arrived, then keeps listening for `quiet` to catch any extra ones.
async fn consume_raw(
    brokers: &str,
    topic: &str,
    want: usize,
    within: Duration,
    quiet: Duration,
) -> Vec<Received> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set(
            "group.id",
            format!("charter-test-policy-{}", Uuid::now_v7()),
        )
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("topic.metadata.refresh.interval.ms", "500")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let deadline = Instant::now() + within;
    let mut out = Vec::new();
    let mut stream = consumer.stream();
    loop {
        let left = if out.len() < want {
            deadline.saturating_duration_since(Instant::now())
        } else {
            quiet
        };
        let Ok(next) = tokio::time::timeout(left, stream.next()).await else {
            assert!(
                out.len() >= want,
                "only {} of {want} messages arrived on {topic} within {within:?}",
                out.len()
            );
            return out;
        };
        let message = match next {
            Some(Ok(m)) => m,
            Some(Err(e)) => {
                eprintln!("consumer error (retrying): {e}");
                continue;
            }
            None => return out,
        };
        let key = String::from_utf8(message.key().expect("a key").to_vec()).unwrap();
        let value =
            serde_json::from_slice(message.payload().expect("a payload")).expect("a JSON value");
        let content_type = message.headers().and_then(|h| {
            h.iter()
                .find(|h| h.key == "content-type")
                .and_then(|h| h.value)
                .map(|v| String::from_utf8(v.to_vec()).unwrap())
        });
        out.push(Received {
            key,
            value,
            content_type,
        });
    }
}

async fn policy_outbox_len(app: &TestApp) -> i64 {
    app.pool
        .get()
        .await
        .unwrap()
        .query_one("SELECT count(*) FROM projections.policy_outbox", &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_entitlement_change_reaches_the_policy_topic() {
    let app = spawn_app_with(|c| c.relay.enabled = true).await;
    let r = app
        .post(
            "/v1/permissions/register",
            json!({"service": "docs", "permissions": [
                {"name": "docs.read", "label": "Read"}, {"name": "docs.edit", "label": "Edit"}
            ]}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let t = app.create_tenant(&slug("policy")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let base = format!("/v1/tenants/{t}");
    let w1 = app.create_workspace(&t, "one").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let alice = id_of(
        app.post(
            &format!("{base}/users"),
            json!({"username": "alice", "email": "alice@example.com"}),
        )
        .await,
    )
    .await;
    let reader = id_of(
        app.post(
            &format!("{base}/roles"),
            json!({"name": "reader", "permissions": ["docs.read"]}),
        )
        .await,
    )
    .await;

    // Tenant-wide assignment: the tenant's counter.
    let r = app
        .post(
            &format!("{base}/assignments"),
            json!({"role_id": reader, "user_id": alice}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let w2 = app.create_workspace(&t, "two").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Workspace assignment: W1 only.
    let r = app
        .post(
            &format!("{base}/assignments"),
            json!({"role_id": reader, "user_id": alice, "workspace_id": w1}),
        )
        .await;
    assert_eq!(r.status(), 201);
    // A tenant role's permissions, then the user's status: the tenant's counter, twice.
    let r = app
        .post(
            &format!("{base}/roles/{reader}/permissions"),
            json!({"permissions": ["docs.edit"]}),
        )
        .await;
    assert!(r.status().is_success(), "{}", r.status());
    let token = token_of(
        app.send(Method::POST, &format!("{base}/users/{alice}/disable"), None)
            .await,
    )
    .await;

    // The read model, once every projection has passed the last change.
    let r = app
        .get(&format!("{base}/policy-version?consistency={token}"))
        .await;
    assert_eq!(r.status(), 200);
    // (That waited for the index; the read model is read below.)
    app.projected().await;
    let tenant_id: Uuid = t.parse().unwrap();
    let counters: BTreeMap<String, i64> = app
        .pool
        .get()
        .await
        .unwrap()
        .query(
            "SELECT workspace_id, version FROM projections.policy_versions WHERE tenant_id = $1",
            &[&tenant_id],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (format!("{t}/{}", r.get::<_, Uuid>(0)), r.get(1)))
        .collect();
    let expected: BTreeMap<String, i64> = [
        (format!("{t}/{}", Uuid::nil()), 3),
        (format!("{t}/{w1}"), 1),
    ]
    .into_iter()
    .collect();
    assert_eq!(
        counters, expected,
        "the bump rule: no tenant-wide change reached a workspace row"
    );
    // The effective versions: the tenant's counter, plus the workspace's.
    for (w, effective) in [(&w1, 4), (&w2, 3)] {
        let r: Value = app
            .get(&format!(
                "{base}/policy-version?workspace_id={w}&consistency={token}"
            ))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(r["policy_version"], effective, "{w}");
    }
    // Every scope starts at 0, so the counters add up to the number of bumps.
    let bumps: i64 = counters.values().sum();

    // The relay drains the policy outbox.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n = policy_outbox_len(&app).await;
        if n == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "policy_outbox still holds {n} rows"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // An outside consumer group sees, per key, versions ascending up to the counter: the
    // newest version of each scope, and some of the ones before it (a bump overwrites its
    // scope's row while it is still queued, as compaction would).
    let received = consume_raw(
        &app.config.kafka.brokers,
        &app.config.kafka.policy_topic,
        counters.len(),
        Duration::from_secs(30),
        Duration::from_secs(2),
    )
    .await;
    // The bootstrap tenant's own bumps share the topic.
    let received: Vec<_> = received
        .into_iter()
        .filter(|m| m.key.starts_with(&format!("{t}/")))
        .collect();
    assert!(
        received.len() as i64 <= bumps,
        "at most one message per bump: {} for {bumps}",
        received.len()
    );
    eprintln!(
        "policy topic: {} messages for {bumps} bumps",
        received.len()
    );
    let mut per_key: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for m in &received {
        assert_eq!(m.content_type.as_deref(), Some("application/json"));
        let (tenant, workspace) = m.key.split_once('/').expect("key tenant/workspace");
        assert_eq!(tenant, t);
        let workspace: Uuid = workspace.parse().expect("a workspace uuid in the key");
        let version = m.value["policy_version"].as_i64().expect("policy_version");
        let workspace_json = if workspace.is_nil() {
            Value::Null
        } else {
            json!(workspace.to_string())
        };
        assert_eq!(
            m.value,
            json!({"tenant_id": t, "workspace_id": workspace_json, "policy_version": version,
                   "contract": 2}),
            "value of {}",
            m.key
        );
        per_key.entry(m.key.clone()).or_default().push(version);
    }
    for (key, counter) in &counters {
        let versions = per_key
            .get(key)
            .unwrap_or_else(|| panic!("nothing for {key}"));
        assert!(
            versions.windows(2).all(|w| w[0] < w[1]) && versions[0] >= 1,
            "versions of {key} ascend: {versions:?}"
        );
        assert_eq!(versions.last(), Some(counter), "last message of {key}");
    }
    assert_eq!(
        per_key.keys().collect::<Vec<_>>(),
        counters.keys().collect::<Vec<_>>()
    );
    assert_eq!(policy_outbox_len(&app).await, 0);
}
