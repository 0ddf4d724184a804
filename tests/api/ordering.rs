//! The global order: a reader following (tx_id, position) below the xid8 horizon sees every
//! event exactly once, in stream-version order, even when transactions commit out of order.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use charter::store::events::{append, NewEvent};
use charter::store::StoreError;
use charter_events::Metadata;
use charter_log::reader::read_after;
use charter_log::LogPosition;
use deadpool_postgres::Pool;
use rand::Rng;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{fresh_database, test_config};

async fn migrated_pool() -> Pool {
    let database = fresh_database().await;
    let config = test_config(&database);
    charter::db::migrate(&config.database).await.unwrap();
    let mut db = config.database.clone();
    db.pool_size = 40;
    charter::db::pool(&db).unwrap()
}

fn event(tenant: Uuid) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event_type: "test.appended",
        schema_version: 1,
        tenant_id: tenant,
        workspace_id: None,
        data: json!({}),
        published: true,
    }
}

fn meta() -> Metadata {
    Metadata {
        actor: "test".into(),
        correlation_id: Uuid::now_v7(),
        ..Metadata::default()
    }
}

/// Appends one event to `stream`, holding the transaction open for a random moment so that
/// commits land out of insert order. Retries on version conflicts. Returns the event id and
/// where it landed in the global order.
async fn append_one(pool: &Pool, stream: &str, tenant: Uuid) -> (Uuid, LogPosition) {
    loop {
        let mut client = pool.get().await.unwrap();
        let tx = client.transaction().await.unwrap();
        let version: i64 = tx
            .query_one(
                "SELECT COALESCE(max(stream_version), 0) FROM events WHERE stream_id = $1",
                &[&stream],
            )
            .await
            .unwrap()
            .get(0);
        let e = event(tenant);
        let id = e.event_id;
        let at = match append(&tx, "test", stream, version, &[e], &meta()).await {
            Ok(appended) => appended.last,
            Err(StoreError::Conflict { .. }) => continue,
            Err(other) => panic!("{other}"),
        };
        let pause = rand::rng().random_range(0..3_000);
        tokio::time::sleep(Duration::from_micros(pause)).await;
        tx.commit().await.unwrap();
        return (id, at);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_writers_and_a_follower_agree_on_every_event() {
    let pool = migrated_pool().await;
    for round in 0..3 {
        let streams: Vec<String> = (0..40).map(|i| format!("test-{round}-{i}")).collect();
        let tenant = Uuid::now_v7();
        let start = {
            let client = pool.get().await.unwrap();
            charter_log::reader::head(&client).await.unwrap()
        };
        // Once the writers are done, the reader must reach the last position written. An empty
        // read before that proves nothing: the horizon is cluster-wide, and transactions of
        // other tests running in parallel can hold it back for a while.
        let (target_tx, target) = tokio::sync::watch::channel(None::<LogPosition>);
        let reader = {
            let pool = pool.clone();
            tokio::spawn(async move {
                let client = pool.get().await.unwrap();
                let mut cursor = start;
                let mut seen = Vec::new();
                let mut deadline = None;
                loop {
                    let batch = read_after(&client, cursor, 300).await.unwrap();
                    if let Some(last) = batch.last() {
                        cursor = LogPosition {
                            tx_id: last.tx_id,
                            position: last.position,
                        };
                    }
                    let empty = batch.is_empty();
                    seen.extend(batch);
                    if let Some(goal) = *target.borrow() {
                        if cursor >= goal {
                            return seen;
                        }
                        let deadline = *deadline
                            .get_or_insert_with(|| Instant::now() + Duration::from_secs(60));
                        if Instant::now() > deadline {
                            return seen; // the comparison below reports what is missing
                        }
                    }
                    if empty {
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                }
            })
        };
        let writers = (0..16).map(|w| {
            let pool = pool.clone();
            let streams = streams.clone();
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for i in 0..(5_000 / 16 + usize::from(w < 5_000 % 16)) {
                    let stream = &streams[(w * 7 + i * 13) % streams.len()];
                    ids.push(append_one(&pool, stream, tenant).await);
                }
                ids
            })
        });
        let appended: Vec<(Uuid, LogPosition)> = futures::future::join_all(writers)
            .await
            .into_iter()
            .flat_map(|r| r.unwrap())
            .collect();
        let goal = appended.iter().map(|(_, at)| *at).max().unwrap();
        target_tx.send(Some(goal)).unwrap();
        let seen = reader.await.unwrap();
        let written: Vec<Uuid> = appended.iter().map(|(id, _)| *id).collect();

        assert_eq!(written.len(), 5_000);
        let seen_ids: Vec<Uuid> = seen.iter().map(|e| e.event_id).collect();
        let unique: HashSet<Uuid> = seen_ids.iter().copied().collect();
        assert_eq!(
            unique.len(),
            seen_ids.len(),
            "round {round}: an event was seen twice"
        );
        assert_eq!(
            unique,
            written.iter().copied().collect(),
            "round {round}: an event was skipped"
        );
        let mut next: HashMap<&str, i64> = HashMap::new();
        for e in &seen {
            let expected = next.entry(e.stream_id.as_str()).or_insert(1);
            assert_eq!(
                e.stream_version, *expected,
                "round {round}: {} out of order",
                e.stream_id
            );
            *expected += 1;
        }
    }
}

/// The failure the horizon prevents, made deterministic: a transaction that inserted first
/// commits last. Following `position` alone skips it; following the horizon does not.
#[tokio::test]
async fn a_late_commit_is_not_skipped() {
    let pool = migrated_pool().await;
    let tenant = Uuid::now_v7();
    let mut slow_client = pool.get().await.unwrap();
    let slow = slow_client.transaction().await.unwrap();
    append(&slow, "test", "test-slow", 0, &[event(tenant)], &meta())
        .await
        .unwrap();

    let mut fast_client = pool.get().await.unwrap();
    let fast = fast_client.transaction().await.unwrap();
    append(&fast, "test", "test-fast", 0, &[event(tenant)], &meta())
        .await
        .unwrap();
    fast.commit().await.unwrap();

    let reader = pool.get().await.unwrap();
    // A naive reader sees the fast event and moves its cursor past the slow one's position.
    let naive: Vec<i64> = reader
        .query("SELECT position FROM events ORDER BY position", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(naive.len(), 1, "only the fast event is committed");
    let naive_cursor = naive[0];
    // The horizon reader sees nothing yet: the slow transaction holds the horizon back.
    assert!(read_after(&reader, LogPosition::START, 100)
        .await
        .unwrap()
        .is_empty());

    slow.commit().await.unwrap();
    let after_naive: i64 = reader
        .query_one(
            "SELECT count(*) FROM events WHERE position > $1",
            &[&naive_cursor],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        after_naive, 0,
        "the naive reader has skipped the late commit for good"
    );
    // The horizon is cluster-wide: other tests' open transactions may hold it back a moment.
    let deadline = Instant::now() + Duration::from_secs(60);
    let seen = loop {
        let seen = read_after(&reader, LogPosition::START, 100).await.unwrap();
        if seen.len() >= 2 || Instant::now() > deadline {
            break seen;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let streams: Vec<&str> = seen.iter().map(|e| e.stream_id.as_str()).collect();
    assert_eq!(
        streams,
        ["test-slow", "test-fast"],
        "both, in transaction order"
    );
}

#[tokio::test]
async fn the_service_role_cannot_rewrite_history() {
    let pool = migrated_pool().await;
    {
        let mut c = pool.get().await.unwrap();
        let tx = c.transaction().await.unwrap();
        append(
            &tx,
            "test",
            "test-history",
            0,
            &[event(Uuid::now_v7())],
            &meta(),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }
    let client = pool.get().await.unwrap();
    // Neither rewriting rows nor taking the guards down is open to the service role: it does
    // not own the table, so it cannot re-grant itself privileges or touch the triggers.
    for sql in [
        "UPDATE events SET data = '{\"forged\": true}'",
        "DELETE FROM events",
        "TRUNCATE events CASCADE",
        "ALTER TABLE events DISABLE TRIGGER events_append_only_rows",
        "DROP TRIGGER events_append_only_rows ON events",
        "DROP TABLE events CASCADE",
    ] {
        let err = client.batch_execute(sql).await.expect_err(sql);
        let code = err.as_db_error().map(|e| e.code().code().to_owned());
        assert_eq!(code.as_deref(), Some("42501"), "{sql}: {err}");
    }
    // A GRANT from a non-owner is accepted with a warning and grants nothing.
    client
        .batch_execute("GRANT UPDATE, DELETE ON events TO CURRENT_USER")
        .await
        .unwrap();
    let can: bool = client
        .query_one(
            "SELECT has_table_privilege('events', 'UPDATE') OR has_table_privilege('events', 'DELETE')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(!can, "the service role gave itself UPDATE or DELETE");
    let n: i64 = client
        .query_one("SELECT count(*) FROM events WHERE data = '{}'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1, "the event is still there, unchanged");
}

/// The guard behind the ordering invariant: an append refuses to run in a transaction that
/// already wrote (and so already has a transaction id that may sort before a predecessor).
#[tokio::test]
async fn an_append_after_another_write_is_refused() {
    let pool = migrated_pool().await;
    let mut c = pool.get().await.unwrap();
    let tx = c.transaction().await.unwrap();
    tx.execute(
        "INSERT INTO unique_claims (claim_scope, claim_value, stream_id) VALUES ('t', 'v', 's')",
        &[],
    )
    .await
    .unwrap();
    let refused = append(
        &tx,
        "test",
        "test-late",
        0,
        &[event(Uuid::now_v7())],
        &meta(),
    )
    .await;
    assert!(
        matches!(refused, Err(StoreError::TransactionNotFresh)),
        "{refused:?}"
    );
}
