//! Poison events: an event a projection cannot apply is retried, then recorded in
//! `projections.failed_events` and skipped, so later events still project; `/ready` and
//! `/metrics` report it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use charter::store::events::{append, NewEvent};
use charter_events::streams::tenant_stream;
use charter_events::Metadata;
use charter_log::{checkpoint, reader, LogPosition};
use charter_projections::runner::{RunnerError, Step};
use charter_projections::{tenants, Runner};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{slug, spawn_app_with, TestApp};

/// Appends, straight into the log, a `tenant.renamed` for a tenant that was never created: it
/// decodes, but the `tenants` projection finds no row to rename (an invariant violation).
async fn inject_poison(app: &TestApp) -> Uuid {
    let ghost = Uuid::now_v7();
    let event_id = Uuid::now_v7();
    let mut client = app.pool.get().await.unwrap();
    let tx = client.transaction().await.unwrap();
    let event = NewEvent {
        event_id,
        event_type: "tenant.renamed",
        schema_version: 1,
        tenant_id: ghost,
        workspace_id: None,
        data: json!({"tenant_id": ghost, "name": "Ghost"}),
        published: true,
    };
    let meta = Metadata {
        actor: "test".into(),
        correlation_id: Uuid::now_v7(),
        ..Metadata::default()
    };
    append(&tx, "tenant", &tenant_stream(ghost), 0, &[event], &meta)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    event_id
}

/// Creates a tenant and returns its id and the command's consistency token.
async fn create_tenant(app: &TestApp, prefix: &str) -> (String, String) {
    let r = app
        .post(
            "/v1/tenants",
            json!({"name": format!("Tenant {prefix}"), "slug": slug(prefix)}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let body: Value = r.json().await.unwrap();
    (
        body["data"]["id"].as_str().unwrap().to_owned(),
        body["consistency_token"].as_str().unwrap().to_owned(),
    )
}

async fn create_tenant_directly(app: &TestApp, prefix: &str) -> (String, String) {
    use charter::command::{execute, tenant::CreateTenant, CommandRequest, Writer};
    let writer = Writer {
        pool: app.pool.clone(),
        appended: charter_log::listener::Signal::local().0,
    };
    let id = Uuid::now_v7();
    let handler = CreateTenant {
        tenant_id: id,
        name: format!("Tenant {prefix}"),
        slug: slug(prefix),
        parent_id: None,
    };
    let request = CommandRequest {
        metadata: charter_events::Metadata {
            actor: "test".into(),
            correlation_id: Uuid::now_v7(),
            ..Default::default()
        },
        if_match: None,
        idempotency: None,
    };
    let token = std::sync::Mutex::new(String::new());
    execute(&writer, &handler, &request, |o| {
        *token.lock().unwrap() = o.token.to_string();
        charter::store::idempotency::StoredResponse {
            status: 201,
            etag: None,
            location: None,
            body: Value::Null,
        }
    })
    .await
    .unwrap();
    (id.to_string(), token.into_inner().unwrap())
}

async fn failed_events(app: &TestApp) -> Vec<(String, Uuid, String, i32)> {
    let client = app.pool.get().await.unwrap();
    client
        .query(
            "SELECT projection, event_id, error, attempts FROM projections.failed_events \
             ORDER BY id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect()
}

#[tokio::test]
async fn a_poison_event_is_recorded_skipped_and_reported() {
    let app = spawn_app_with(|c| c.projections.max_attempts = 3).await;
    let (before, _) = create_tenant(&app, "before").await;
    let poison = inject_poison(&app).await;
    let (after, token) = create_tenant(&app, "after").await;

    // Read-your-writes past the poison event: it is retried (with backoff), recorded and
    // skipped, and the tenant created after it is listed. The horizon is cluster-wide, so
    // allow for other tests' transactions holding it back.
    let deadline = Instant::now() + Duration::from_secs(30);
    let list = loop {
        let r = app.get(&format!("/v1/tenants?consistency={token}")).await;
        if r.status() == 200 {
            break r.json::<Value>().await.unwrap();
        }
        assert_eq!(r.status(), 503, "only a consistency timeout is expected");
        assert!(
            Instant::now() < deadline,
            "the projection never got past the poison"
        );
    };
    let root = app.root_tenant_id.to_string();
    let ids: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .filter(|id| *id != root)
        .collect();
    assert!(ids.contains(&before.as_str()), "{list}");
    assert!(
        ids.contains(&after.as_str()),
        "later events still project: {list}"
    );
    assert_eq!(
        ids.len(),
        2,
        "the ghost tenant is not in the read model: {list}"
    );

    let failed = failed_events(&app).await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    let (projection, event_id, error, attempts) = &failed[0];
    assert_eq!(projection, "tenants");
    assert_eq!(*event_id, poison);
    assert!(error.contains("touched 0 tenant rows"), "{error}");
    assert_eq!(*attempts, 3);

    let r = app.ops("/ready").await;
    assert_eq!(
        r.status(),
        200,
        "a poison event degrades, it does not unready"
    );
    let ready: Value = r.json().await.unwrap();
    assert_eq!(ready["status"], "degraded", "{ready}");
    assert_eq!(ready["failed_events_count"], 1, "{ready}");
    let listed = &ready["failed_events"][0];
    assert_eq!(listed["projection"], "tenants");
    assert_eq!(listed["event_id"], poison.to_string());
    assert_eq!(listed["event_type"], "tenant.renamed");
    assert!(listed["position"]
        .as_str()
        .unwrap()
        .parse::<LogPosition>()
        .is_ok());
    assert!(!listed["error"].as_str().unwrap().is_empty());
    assert!(listed["failed_at"].is_string());

    let metrics = app.ops("/metrics").await.text().await.unwrap();
    let gauge = metrics
        .lines()
        .find_map(|l| l.strip_prefix("charter_projection_failed_events "))
        .unwrap_or_else(|| panic!("no failed-events gauge in\n{metrics}"));
    assert!(gauge.trim().parse::<f64>().unwrap() >= 1.0, "{gauge}");
    assert!(
        metrics.contains("charter_projection_failed_events_total{projection=\"tenants\"}"),
        "{metrics}"
    );
}

/// Drives a runner by hand: the batch holding the poison event fails, the events before it
/// are applied one at a time, the poison event fails alone until it is recorded, and the
/// runner goes back to batches for the rest.
#[tokio::test]
async fn the_events_around_a_poison_event_still_project() {
    let app = spawn_app_with(|c| c.projections.enabled = false).await;
    checkpoint::ensure(
        &app.pool.get().await.unwrap(),
        checkpoint::LIVE_SCHEMA,
        &["tenants"],
    )
    .await
    .unwrap();
    // Without projections nobody can log in, so this test writes through the command layer.
    let (before, _) = create_tenant_directly(&app, "before").await;
    let poison = inject_poison(&app).await;
    let (after, token) = create_tenant_directly(&app, "after").await;
    let token: LogPosition = token.parse().unwrap();
    // Wait until everything is below the horizon, so that the first batch holds it all.
    let deadline = Instant::now() + Duration::from_secs(30);
    while reader::head(&app.pool.get().await.unwrap()).await.unwrap() < token {
        assert!(
            Instant::now() < deadline,
            "the horizon never passed the token"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let runner = Runner::new(
        app.pool.clone(),
        Arc::new(tenants::Tenants),
        checkpoint::LIVE_SCHEMA,
        500,
    )
    .with_max_attempts(2);
    let mut outcomes = Vec::new();
    let mut busy = 0;
    loop {
        let outcome = match runner.step().await {
            Ok(Step::Idle) => break,
            // Nobody else runs this projection, but a failed step's transaction is rolled
            // back when its connection is next used: until then another pooled connection
            // finds the projection's lock still held.
            Ok(Step::Busy) => {
                busy += 1;
                assert!(busy < 200, "the projection stayed locked");
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
            Ok(Step::Applied(n, _)) => format!("applied {n}"),
            Ok(Step::Poisoned { event_id, .. }) => {
                assert_eq!(event_id, poison);
                "poisoned".to_owned()
            }
            Err(RunnerError::Event { event_id, .. }) => {
                assert_eq!(event_id, poison);
                "failed".to_owned()
            }
            Err(other) => panic!("unexpected error: {other}"),
        };
        outcomes.push(outcome);
        assert!(outcomes.len() < 100, "{outcomes:?}");
    }
    // The batch fails; the tenant created before the poison event lands alone; the poison
    // event fails alone once, then again and is recorded; the rest goes in one batch.
    assert_eq!(outcomes.first().map(String::as_str), Some("failed"));
    let from_poison = outcomes.iter().rposition(|o| o == "failed").unwrap();
    assert!(
        outcomes[1..from_poison].iter().all(|o| o == "applied 1"),
        "{outcomes:?}"
    );
    assert!(
        from_poison >= 2,
        "the events before the poison land first: {outcomes:?}"
    );
    assert_eq!(outcomes[from_poison + 1], "poisoned", "{outcomes:?}");
    assert!(outcomes[from_poison + 2..]
        .iter()
        .all(|o| o.starts_with("applied")));
    assert_eq!(
        outcomes.len(),
        from_poison + 3,
        "one batch after it: {outcomes:?}"
    );

    let client = app.pool.get().await.unwrap();
    for id in [&before, &after] {
        let row = tenants::get(&client, id.parse().unwrap()).await.unwrap();
        assert!(row.is_some(), "tenant {id} is projected");
    }
    let at = checkpoint::all(&client, checkpoint::LIVE_SCHEMA)
        .await
        .unwrap();
    assert_eq!(
        at,
        vec![("tenants".to_owned(), token)],
        "the checkpoint reached the end"
    );
    let failed = failed_events(&app).await;
    assert_eq!(failed.len(), 1);
    assert_eq!((failed[0].1, failed[0].3), (poison, 2));
}
