//! `GET /v1/audit/events`: filters, reach (platform vs a tenant's auditor), cursor pages that
//! stay stable while writes go on, authentication events, and redacted secrets.

use std::time::Duration;

use serde_json::{json, Value};
use uuid::Uuid;

use crate::auth::{get_as, login, tokens, user_with_role, PASSWORD};
use crate::helpers::{assert_problem, run_charter, slug, spawn_app, superuser, TestApp};

fn order(position: &Value) -> (i64, i64) {
    let (tx, pos) = position.as_str().unwrap().split_once('.').unwrap();
    (tx.parse().unwrap(), pos.parse().unwrap())
}

/// Every page of `query` as `token`, following cursors; `between` runs after each page.
async fn all_pages(
    app: &TestApp,
    token: &str,
    query: &str,
    limit: usize,
    between: impl Fn(usize) -> Option<String>,
) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    for page in 0.. {
        let after = cursor
            .as_ref()
            .map(|c| format!("&after={c}"))
            .unwrap_or_default();
        let r = get_as(
            app,
            token,
            &format!("/v1/audit/events?{query}&limit={limit}{after}"),
        )
        .await;
        assert_eq!(r.status(), 200);
        let body: Value = r.json().await.unwrap();
        items.extend(body["items"].as_array().unwrap().iter().cloned());
        if let Some(path) = between(page) {
            let r = app
                .post(
                    &path,
                    json!({"name": format!("w{page}-{}", Uuid::now_v7().simple())}),
                )
                .await;
            assert_eq!(r.status(), 201);
        }
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    items
}

/// Polls `query` until it returns at least `n` events: the audit API reads only below the
/// cluster-wide xid8 horizon, which another test's open transaction may hold back.
async fn at_least(app: &TestApp, token: &str, query: &str, n: usize) -> Vec<Value> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let items = all_pages(app, token, query, 1000, |_| None).await;
        if items.len() >= n {
            return items;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{query}: {} of {n} events",
            items.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn auditors_read_the_log_of_their_subtree_in_stable_pages() {
    let app = spawn_app().await;
    let a = app.create_tenant(&slug("aud-a")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let b = app.create_tenant(&slug("aud-b")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .post(
            "/v1/tenants",
            json!({"name": "Child", "slug": slug("aud-c"), "parent_id": a}),
        )
        .await;
    let c = r.json::<Value>().await.unwrap()["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.create_workspace(&b, "secret-plans").await;
    let ivy = user_with_role(&app, &a, "ivy", "auditor").await;
    user_with_role(&app, &a, "vic", "viewer").await;
    // An authentication event to find: a failed login in tenant A.
    assert_eq!(
        login(&app, &a, "ivy", "not the password", None)
            .await
            .status(),
        401
    );
    let (auditor, _) = tokens(login(&app, &a, "ivy", PASSWORD, None).await).await;
    let (viewer, _) = tokens(login(&app, &a, "vic", PASSWORD, None).await).await;
    // The last of those events (ivy's successful login) must be below the horizon.
    at_least(
        &app,
        &auditor,
        &format!("stream_id=user-{ivy}&event_type=user.login_succeeded"),
        1,
    )
    .await;

    // A tenant's auditor sees its tenant and the child, never B.
    let mine = all_pages(&app, &auditor, "", 1000, |_| None).await;
    let tenants: std::collections::BTreeSet<&str> = mine
        .iter()
        .map(|i| i["tenant_id"].as_str().unwrap())
        .collect();
    assert!(
        tenants.contains(a.as_str()) && tenants.contains(c.as_str()),
        "{tenants:?}"
    );
    assert!(!tenants.contains(b.as_str()));
    assert_eq!(tenants.len(), 2, "{tenants:?}");
    assert_problem(
        get_as(&app, &auditor, &format!("/v1/audit/events?tenant_id={b}")).await,
        404,
        "not-found",
    )
    .await;
    assert_problem(
        get_as(&app, &viewer, "/v1/audit/events").await,
        403,
        "forbidden",
    )
    .await;

    // The platform administrator filters by any tenant.
    let admin = app.http.clone();
    let of_b: Value = admin
        .get(app.url(&format!("/v1/audit/events?tenant_id={b}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let types: Vec<&str> = of_b["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["event_type"].as_str().unwrap())
        .collect();
    assert!(
        types.contains(&"tenant.created") && types.contains(&"workspace.created"),
        "{types:?}"
    );

    // Authentication events are in the same log, filterable the same way.
    let failed = all_pages(
        &app,
        &auditor,
        &format!("tenant_id={a}&event_type=user.login_failed"),
        10,
        |_| None,
    )
    .await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["stream_id"], format!("user-{ivy}"));
    assert_eq!(failed[0]["data"]["reason"], "bad_password");
    assert_eq!(failed[0]["actor"], "anonymous");
    // Secrets are redacted.
    let set = all_pages(
        &app,
        &auditor,
        &format!("stream_id=user-{ivy}&event_type=user.password_set"),
        10,
        |_| None,
    )
    .await;
    assert_eq!(set[0]["data"]["password_hash"], "[REDACTED]");

    // Pages of 3, with writes going on between pages: strictly increasing, no duplicates,
    // and exactly the events a single read returns up to the last position seen.
    let write_to = format!("/v1/tenants/{a}/workspaces");
    let paged = all_pages(&app, &auditor, &format!("tenant_id={a}"), 3, |page| {
        (page < 5).then(|| write_to.clone())
    })
    .await;
    let positions: Vec<(i64, i64)> = paged.iter().map(|i| order(&i["position"])).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    let whole = all_pages(&app, &auditor, &format!("tenant_id={a}"), 1000, |_| None).await;
    let last = *positions.last().unwrap();
    let expected: Vec<(i64, i64)> = whole
        .iter()
        .map(|i| order(&i["position"]))
        .filter(|p| *p <= last)
        .collect();
    assert_eq!(positions, expected);

    // Filters by actor, correlation id and time.
    let correlation = Uuid::now_v7();
    let r = app
        .http
        .post(app.url(&format!("/v1/tenants/{a}/groups")))
        .header("x-correlation-id", correlation.to_string())
        .json(&json!({"name": "auditors"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let by_correlation =
        at_least(&app, &auditor, &format!("correlation_id={correlation}"), 1).await;
    assert_eq!(by_correlation.len(), 1);
    assert_eq!(by_correlation[0]["event_type"], "group.created");
    let actor = by_correlation[0]["actor"].as_str().unwrap().to_owned();
    assert!(actor.starts_with("user:"), "{actor}");
    let by_actor = all_pages(
        &app,
        &auditor,
        &format!("tenant_id={a}&actor={actor}"),
        1000,
        |_| None,
    )
    .await;
    assert!(by_actor.iter().all(|i| i["actor"] == actor.as_str()) && !by_actor.is_empty());
    let future = all_pages(&app, &auditor, "from=2999-01-01T00:00:00Z", 10, |_| None).await;
    assert!(future.is_empty());

    // Bad parameters are 400s.
    for bad in [
        "limit=0",
        "limit=1001",
        "after=nope",
        "tenant_id=x",
        "bogus=1",
    ] {
        let r = get_as(&app, &auditor, &format!("/v1/audit/events?{bad}")).await;
        assert_eq!(r.status(), 400, "{bad}");
    }
}

/// Waits until every event is sealed and the chain verifies; returns the verification.
async fn sealed(app: &TestApp) -> charter_projections::audit_chain::Verification {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let client = app.pool.get().await.unwrap();
        let report = charter_projections::audit_chain::verify(&client, 7, |_| {})
            .await
            .unwrap();
        assert_eq!(report.first_break, None, "an untouched log verifies");
        if report.unsealed == 0 && report.verified > 0 {
            return report;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still unsealed: {report:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_hash_chain_detects_a_changed_a_deleted_and_an_inserted_row() {
    use charter_projections::audit_chain::{verify, BreakKind};
    for kind in [BreakKind::Changed, BreakKind::Missing, BreakKind::Inserted] {
        let app = spawn_app().await;
        let t = app.create_tenant(&slug("chain")).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        for name in ["one", "two", "three"] {
            app.create_workspace(&t, name).await;
        }
        let clean = sealed(&app).await;
        // The head an auditor writes down.
        let head: Value = app.get("/v1/audit/head").await.json().await.unwrap();
        // (It may have moved on since: whatever was appended meanwhile is sealed after.)
        let written = json!(clean.head.as_ref().unwrap().position);
        assert!(
            order(&head["position"]) >= order(&written),
            "{head} vs {written}"
        );
        assert_eq!(head["hash"].as_str().unwrap().len(), 64);

        let db = superuser(&app).await;
        let victim = db
            .query_one(
                "SELECT tx_id::text::bigint, position FROM events WHERE event_type = 'workspace.created'
                 ORDER BY tx_id, position LIMIT 1",
                &[],
            )
            .await
            .unwrap();
        let (tx, position): (i64, i64) = (victim.get(0), victim.get(1));
        // Only a superuser gets past the append-only guard, by switching triggers off.
        db.batch_execute("SET session_replication_role = replica")
            .await
            .unwrap();
        let expected = match kind {
            BreakKind::Changed => {
                db.execute("UPDATE events SET data = jsonb_set(data, '{name}', '\"evil\"') WHERE position = $1", &[&position])
                    .await
                    .unwrap();
                format!("{tx}.{position}")
            }
            BreakKind::Missing => {
                db.execute("DELETE FROM events WHERE position = $1", &[&position])
                    .await
                    .unwrap();
                format!("{tx}.{position}")
            }
            BreakKind::Inserted => {
                // A forged event slipped into the middle of the sealed range.
                db.execute(
                    "INSERT INTO events OVERRIDING SYSTEM VALUE
                     SELECT 900000000, tx_id, gen_random_uuid(), stream_type, stream_id, 999999,
                            tenant_id, workspace_id, event_type, schema_version, data, metadata,
                            recorded_at
                     FROM events WHERE position = $1",
                    &[&position],
                )
                .await
                .unwrap();
                format!("{tx}.900000000")
            }
        };
        let client = app.pool.get().await.unwrap();
        let report = verify(&client, 7, |_| {}).await.unwrap();
        let found = report.first_break.expect("the tampering is detected");
        assert_eq!((found.kind, found.position), (kind, expected), "{kind:?}");
    }
}

#[tokio::test]
async fn the_cli_exports_ndjson_and_verifies_the_chain() {
    let app = spawn_app().await;
    let t = app.create_tenant(&slug("export")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for name in ["one", "two", "three", "four"] {
        app.create_workspace(&t, name).await;
    }
    sealed(&app).await;
    let dir = std::env::temp_dir().join(format!("charter-export-{}", Uuid::now_v7().simple()));
    let out = dir.with_extension("ndjson");
    let run = run_charter(
        &app,
        &[
            "audit",
            "export",
            "--tenant-id",
            &t,
            "--out",
            out.to_str().unwrap(),
        ],
    )
    .await;
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let lines: Vec<Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    std::fs::remove_file(&out).ok();
    let api: Value = app
        .get(&format!("/v1/audit/events?tenant_id={t}&limit=1000"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        &lines,
        api["items"].as_array().unwrap(),
        "the export equals the API's view"
    );
    assert_eq!(
        lines.len(),
        8,
        "tenant.created, 3 system roles, 4 workspaces"
    );

    let ok = run_charter(&app, &["audit", "verify"]).await;
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let report: Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert!(report["verified"].as_u64().unwrap() >= 8 && report["first_break"].is_null());

    let db = superuser(&app).await;
    db.batch_execute(
        "SET session_replication_role = replica;
         UPDATE events SET metadata = jsonb_set(metadata, '{actor}', '\"nobody\"')
         WHERE position = (SELECT min(position) FROM events WHERE event_type = 'workspace.created')",
    )
    .await
    .unwrap();
    let broken = run_charter(&app, &["audit", "verify"]).await;
    assert_eq!(broken.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&broken.stderr);
    assert!(
        stderr.contains("broken at position") && stderr.contains("Changed"),
        "{stderr}"
    );
}
