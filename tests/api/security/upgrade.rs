//! Upgrading a database the previous release wrote: migrations V15 (the write side's indexes
//! of what a subject holds, which the delegation rule reads) and V16 (service accounts'
//! secret versions) must leave exactly what the new code writes live.
//!
//! The new code writes a history of assignments (to a user, a group and a service account,
//! tenant-wide and in a workspace), memberships (a current one, one removed, one in a deleted
//! group) and secret rotations. Then the database is put back the way the previous release
//! left it: the assignment claims in the old key, no membership claims, no `account_version`
//! column, V15 and V16 not applied. `charter migrate` must restore every claim and version.

use reqwest::Method;
use serde_json::{json, Value};

use crate::auth::role_id;
use crate::entitlements::id_of;
use crate::helpers::{run_charter_with, spawn_app, superuser, TestApp};

async fn create(app: &TestApp, path: &str, body: Value) -> String {
    id_of(app.post(path, body).await).await
}

async fn ok(app: &TestApp, method: Method, path: &str, body: Option<Value>) {
    let r = app.send(method.clone(), path, body).await;
    assert!(r.status().is_success(), "{method} {path}: {}", r.status());
}

/// The delegation claims and the service accounts' versions, sorted.
async fn state(db: &tokio_postgres::Client) -> (Vec<(String, String, String)>, Vec<(String, i64)>) {
    let claims = db
        .query(
            "SELECT claim_scope, claim_value, stream_id FROM unique_claims
             WHERE claim_scope LIKE 'assignment:%' OR claim_scope LIKE 'group.member:%'
             ORDER BY 1, 2",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let versions = db
        .query(
            "SELECT service_account_id::text, account_version FROM projections.service_accounts
             ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    (claims, versions)
}

/// What the previous release left: the inverse of V15 and V16, as its code wrote them.
const DOWNGRADE: &str = "
BEGIN;
-- its assignment claims: scope `assignment:<tenant>`, value `<role>:<type>:<subject>:<ws>`
UPDATE unique_claims
SET claim_scope = 'assignment:' || split_part(claim_scope, ':', 2),
    claim_value = split_part(claim_value, ':', 1) || ':' || split_part(claim_scope, ':', 3)
                  || ':' || split_part(claim_scope, ':', 4) || ':' || split_part(claim_value, ':', 2)
WHERE claim_scope LIKE 'assignment:%';
-- it had no membership claims
DELETE FROM unique_claims WHERE claim_scope LIKE 'group.member:%';
-- nor service account versions (V10's trigger)
DROP TRIGGER service_accounts_notify_auth ON projections.service_accounts;
ALTER TABLE projections.service_accounts DROP COLUMN account_version;
CREATE TRIGGER service_accounts_notify_auth
    AFTER UPDATE ON projections.service_accounts
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION projections.notify_auth();
DELETE FROM refinery_schema_history WHERE version IN (15, 16);
COMMIT;";

#[tokio::test]
async fn v15_and_v16_rebuild_what_the_previous_release_did_not_write() {
    let app = spawn_app().await;
    let t = app.create_tenant(&crate::helpers::slug("upgrade")).await;
    let t = t["id"].as_str().unwrap().to_owned();
    let base = format!("/v1/tenants/{t}");
    let ws = app.create_workspace(&t, "upgrade").await;
    let ws = ws["id"].as_str().unwrap().to_owned();
    let user = |name: &'static str| {
        let app = &app;
        let base = base.clone();
        async move {
            create(
                app,
                &format!("{base}/users"),
                json!({"username": name, "email": format!("{name}@example.com")}),
            )
            .await
        }
    };
    let (u1, u2) = (user("ada").await, user("bob").await);
    let g1 = create(&app, &format!("{base}/groups"), json!({"name": "current"})).await;
    let g2 = create(&app, &format!("{base}/groups"), json!({"name": "deleted"})).await;
    for (g, u) in [(&g1, &u1), (&g1, &u2), (&g2, &u1)] {
        ok(
            &app,
            Method::PUT,
            &format!("{base}/groups/{g}/members/{u}"),
            None,
        )
        .await;
    }
    ok(
        &app,
        Method::DELETE,
        &format!("{base}/groups/{g1}/members/{u2}"),
        None,
    )
    .await;
    ok(&app, Method::DELETE, &format!("{base}/groups/{g2}"), None).await;
    let rotated = create(
        &app,
        &format!("{base}/service-accounts"),
        json!({"name": "rotated"}),
    )
    .await;
    let never = create(
        &app,
        &format!("{base}/service-accounts"),
        json!({"name": "never"}),
    )
    .await;
    for _ in 0..2 {
        let path = format!("{base}/service-accounts/{rotated}/rotate-secret");
        ok(&app, Method::POST, &path, Some(json!({}))).await;
    }
    let admin = role_id(&app, &t, "tenant_admin").await;
    let viewer = role_id(&app, &t, "viewer").await;
    for body in [
        json!({"role_id": admin, "user_id": u1}),
        json!({"role_id": viewer, "user_id": u1, "workspace_id": ws}),
        json!({"role_id": viewer, "group_id": g1}),
        json!({"role_id": viewer, "service_account_id": rotated}),
    ] {
        create(&app, &format!("{base}/assignments"), body).await;
    }
    let gone = create(
        &app,
        &format!("{base}/assignments"),
        json!({"role_id": admin, "user_id": u2}),
    )
    .await;
    ok(
        &app,
        Method::DELETE,
        &format!("{base}/assignments/{gone}"),
        None,
    )
    .await;
    app.projected().await;

    let db = superuser(&app).await;
    let live = state(&db).await;
    // What the new code wrote live, which the upgrade must reproduce.
    let mine: Vec<_> = live
        .0
        .iter()
        .filter(|(s, _, _)| s.contains(&t))
        .cloned()
        .collect();
    let members: Vec<_> = mine
        .iter()
        .filter(|(s, _, _)| s.starts_with("group.member:"))
        .collect();
    assert_eq!(
        members.len(),
        1,
        "only ada's membership of the current group: {members:?}"
    );
    assert_eq!(members[0].0, format!("group.member:{t}:{u1}"));
    assert_eq!(members[0].1, g1);
    let assignments = mine
        .iter()
        .filter(|(s, _, _)| s.starts_with("assignment:"))
        .count();
    assert_eq!(assignments, 4, "the four live assignments: {mine:?}");
    let version = |id: &str| live.1.iter().find(|(s, _)| s == id).map(|(_, v)| *v);
    assert_eq!(version(&rotated), Some(2));
    assert_eq!(version(&never), Some(0));

    db.batch_execute(DOWNGRADE).await.expect("downgrade");
    let old = state_without_versions(&db).await;
    assert_ne!(old, live.0, "the downgrade changed nothing");

    let out = run_charter_with(&app.config, &["migrate"]).await;
    assert!(
        out.status.success(),
        "charter migrate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        state(&db).await,
        live,
        "V15 and V16 left another state than the live one"
    );
}

async fn state_without_versions(db: &tokio_postgres::Client) -> Vec<(String, String, String)> {
    db.query(
        "SELECT claim_scope, claim_value, stream_id FROM unique_claims
         WHERE claim_scope LIKE 'assignment:%' OR claim_scope LIKE 'group.member:%' ORDER BY 1, 2",
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
    .collect()
}
