//! `charter_seed` (behind `charter-loadgen seed-log`): a generated history, written straight
//! into a live service's event store, folds into every read model without a failed event,
//! matches what the generator reports, validates against the published event schemas, passes
//! the domain check from end to end, and leaves `unique_claims` and `tenant_hierarchy` as the
//! commands would have.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use charter_log::checkpoint;
use charter_log::reader::{event_from_row, head, EVENT_COLUMNS};
use charter_seed::check::LogChecker;
use charter_seed::{Expected, Options};
use serde_json::Value;
use uuid::Uuid;

use crate::helpers::spawn_app;

fn schema(file: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("schemas/events")
        .join(file);
    serde_json::from_str(&std::fs::read_to_string(&path).expect("schema file")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seeded_history_projects_cleanly_validates_and_passes_the_domain_check() {
    let app = spawn_app().await;
    let client = app.pool.get().await.unwrap();
    let before: i64 = client
        .query_one("SELECT coalesce(max(position), 0) FROM events", &[])
        .await
        .unwrap()
        .get(0);

    // Two runs: the second continues a log that already holds a seeded history (its slugs,
    // registrations and platform administrator).
    let mut summaries = Vec::new();
    for (events, seed) in [(3_000, 42), (1_000, 42)] {
        let options = Options {
            events,
            seed,
            days: 30,
            batch_events: 700,
            check: true,
        };
        let mut commits = Vec::new();
        let summary = charter_seed::run(&app.pool, &options, |n| commits.push(n))
            .await
            .expect("seed");
        assert_eq!(summary.events, events);
        assert!(
            commits.len() >= 2 && commits.last() == Some(&events),
            "{commits:?}"
        );
        summaries.push(summary);
    }

    // The live projections fold it all, without a poison event.
    let target = head(&client).await.unwrap();
    let caught_up = checkpoint::wait_for(&app.pool, target, Duration::from_secs(120)).await;
    assert!(caught_up.unwrap(), "the projections did not reach {target}");
    let failed: Vec<String> = client
        .query(
            "SELECT projection || ': ' || event_type || ': ' || error FROM projections.failed_events",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(failed.is_empty(), "failed events: {failed:?}");

    // Exactly the events reported, none of them in the outbox.
    let per_type: BTreeMap<String, u64> = client
        .query(
            "SELECT event_type, count(*) FROM events WHERE position > $1 GROUP BY 1",
            &[&before],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get::<_, i64>(1) as u64))
        .collect();
    let mut reported = BTreeMap::new();
    for (t, n) in summaries.iter().flat_map(|s| s.per_type.iter()) {
        *reported.entry(t.clone()).or_insert(0) += n;
    }
    assert_eq!(per_type, reported);
    let outboxed: i64 = client
        .query_one(
            "SELECT count(*) FROM outbox WHERE position > $1",
            &[&before],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(outboxed, 0, "seeded events must not reach the outbox");

    // The read models hold what the generator says it created.
    for summary in &summaries {
        let actual = read_models(&client, &summary.tenant_ids, &summary.services).await;
        assert_eq!(actual, summary.expected);
    }
    let first = &summaries[0].expected;
    assert!(first.users > 100 && first.group_members > 100, "{first:?}");

    // The whole log, the service's own events included: in order, every row valid against
    // its schema, every command one the domain decides, every stream gap-free.
    let rows = client
        .query(
            &format!("SELECT {EVENT_COLUMNS} FROM events ORDER BY tx_id, position"),
            &[],
        )
        .await
        .unwrap();
    let mut validators = HashMap::new();
    let mut checker = LogChecker::new();
    let mut last = None;
    for row in &rows {
        let e = event_from_row(row).unwrap();
        let file = format!("{}.v{}.json", e.event_type, e.schema_version);
        let validator = validators
            .entry(file.clone())
            .or_insert_with(|| jsonschema::validator_for(&schema(&file)).unwrap());
        let errors: Vec<String> = validator
            .iter_errors(&e.data)
            .map(|e| e.to_string())
            .collect();
        assert!(
            errors.is_empty(),
            "{file}: {} does not validate: {errors:?}",
            e.data
        );
        assert!(
            last <= Some(e.recorded_at),
            "recorded_at goes back at {}",
            e.position
        );
        last = Some(e.recorded_at);
        checker
            .feed(e)
            .unwrap_or_else(|e| panic!("domain check: {e}"));
    }
    let report = checker
        .finish()
        .unwrap_or_else(|e| panic!("domain check: {e}"));
    assert_eq!(report.events, rows.len() as u64);

    // The write side's indexes are the ones the commands would have left.
    let claims: BTreeSet<(String, String, String)> = client
        .query(
            "SELECT claim_scope, claim_value, stream_id FROM unique_claims",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let only_db: Vec<_> = claims.difference(&report.claims).collect();
    let only_log: Vec<_> = report.claims.difference(&claims).collect();
    assert!(
        only_db.is_empty() && only_log.is_empty(),
        "unique_claims differs from the log's claims: only in the table {only_db:?}, only from the log {only_log:?}"
    );
    let hierarchy: BTreeMap<Uuid, Option<Uuid>> = client
        .query("SELECT tenant_id, parent_id FROM tenant_hierarchy", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(hierarchy, report.hierarchy);
    assert!(
        hierarchy.values().any(|p| p.is_some()),
        "some seeded tenants are nested: {hierarchy:?}"
    );
}

/// The read-model rows of the given tenants (and of the given services' permissions).
async fn read_models(
    client: &deadpool_postgres::Client,
    tenants: &[Uuid],
    services: &[String],
) -> Expected {
    let count = |sql: String| async move {
        let row = client.query_one(&sql, &[&tenants]).await.unwrap();
        row.get::<_, i64>(0) as u64
    };
    let rows = |table: &str, filter: &str| {
        format!("SELECT count(*) FROM projections.{table} WHERE tenant_id = ANY($1) {filter}")
    };
    let permissions: i64 = client
        .query_one(
            "SELECT count(*) FROM projections.permissions WHERE service = ANY($1)",
            &[&services],
        )
        .await
        .unwrap()
        .get(0);
    Expected {
        tenants: count(rows("tenants", "")).await,
        workspaces: count(rows("workspaces", "")).await,
        users: count(rows("users", "")).await,
        users_live: count(rows("users", "AND status <> 'deleted'")).await,
        groups: count(rows("groups", "")).await,
        group_members: count(rows("group_members", "")).await,
        roles: count(rows("roles", "")).await,
        assignments: count(rows("assignments", "")).await,
        permissions: permissions as u64,
        sessions: count(
            "SELECT count(*) FROM events WHERE event_type = 'session.started' AND tenant_id = ANY($1)"
                .into(),
        )
        .await,
    }
}
