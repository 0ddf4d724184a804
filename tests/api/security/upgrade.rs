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

/// Undoes V18 (service accounts' platform access), which every release these tests go back
/// to lacked: refinery refuses to apply an older migration below a newer applied one. No
/// test here sets platform access, so `charter migrate` re-adds the column as it was.
const UNDO_V18: &str = "
ALTER TABLE projections.service_accounts DROP COLUMN platform_permissions;
DELETE FROM refinery_schema_history WHERE version = 18;";

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
DELETE FROM refinery_schema_history WHERE version IN (15, 16, 17);
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

    db.batch_execute(UNDO_V18).await.expect("undo V18");
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

/// The counters, sorted: `(tenant, workspace or nil, value)`.
async fn counters(db: &tokio_postgres::Client) -> Vec<(String, String, i64)> {
    db.query(
        "SELECT tenant_id::text, workspace_id::text, version FROM projections.policy_versions
         ORDER BY 1, 2",
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
    .collect()
}

/// What the release before V17 left: the fan-out table `projections.entitlements` (filled
/// with each user x workspace, as it derived them), `pv_workspaces`, and policy counters
/// under contract 1, where every tenant-wide bump was copied into each workspace that was
/// live then: rebuilt here from the log, exactly as that release counted.
const DOWNGRADE_V17: &str = "
BEGIN;
CREATE TABLE projections.pv_workspaces (
    workspace_id uuid PRIMARY KEY,
    tenant_id    uuid    NOT NULL,
    live         boolean NOT NULL
);
INSERT INTO projections.pv_workspaces SELECT workspace_id, tenant_id, live FROM projections.ent_workspaces;
CREATE TABLE projections.entitlements (
    tenant_id    uuid   NOT NULL,
    user_id      uuid   NOT NULL,
    workspace_id uuid   NOT NULL,
    roles        uuid[] NOT NULL,
    permissions  text[] NOT NULL,
    PRIMARY KEY (tenant_id, user_id, workspace_id)
);
INSERT INTO projections.entitlements
SELECT u.tenant_id, u.user_id, w.workspace_id, ARRAY[a.role_id], r.permissions
FROM projections.ent_users u
JOIN projections.ent_assignments a ON a.subject_id = u.user_id
JOIN projections.ent_roles r ON r.role_id = a.role_id
JOIN projections.ent_workspaces w ON w.tenant_id = u.tenant_id AND w.live
ON CONFLICT DO NOTHING;
DO $$ DECLARE owner text; BEGIN
  SELECT tableowner INTO owner FROM pg_tables WHERE schemaname = 'projections' AND tablename = 'ent_users';
  EXECUTE format('ALTER TABLE projections.entitlements OWNER TO %I', owner);
  EXECUTE format('ALTER TABLE projections.pv_workspaces OWNER TO %I', owner);
END $$;
-- Contract 1: a workspace counted its own bumps and every tenant bump made while it was live.
WITH bumps AS (
  SELECT e.tenant_id, e.position,
         CASE WHEN e.event_type = 'workspace.deleted' THEN (e.data ->> 'workspace_id')::uuid
              WHEN e.event_type LIKE 'role.%' OR e.event_type LIKE 'assignment.%'
                THEN (e.data ->> 'workspace_id')::uuid END AS workspace_id
  FROM events e
  WHERE e.event_type IN ('tenant.blocked', 'tenant.unblocked', 'tenant.deleted', 'workspace.deleted',
        'user.disabled', 'user.enabled', 'user.deleted', 'service_account.disabled',
        'service_account.enabled', 'service_account.deleted', 'group.member_added',
        'group.member_removed', 'group.deleted', 'role.permissions_granted',
        'role.permissions_revoked', 'role.deleted', 'assignment.created', 'assignment.deleted')
), spans AS (
  SELECT c.tenant_id, (c.data ->> 'workspace_id')::uuid AS workspace_id, c.position AS born,
         COALESCE((SELECT d.position FROM events d WHERE d.event_type = 'workspace.deleted'
                   AND d.data ->> 'workspace_id' = c.data ->> 'workspace_id'), 9223372036854775807) AS died
  FROM events c WHERE c.event_type = 'workspace.created'
), old AS (
  SELECT tenant_id, '00000000-0000-0000-0000-000000000000'::uuid AS workspace_id, count(*) AS n
  FROM bumps WHERE workspace_id IS NULL GROUP BY 1, 2
  UNION ALL
  SELECT s.tenant_id, s.workspace_id, count(*)
  FROM spans s JOIN bumps b ON b.tenant_id = s.tenant_id AND b.position > s.born
   AND ((b.workspace_id IS NULL AND b.position < s.died) OR b.workspace_id = s.workspace_id)
  GROUP BY 1, 2
)
INSERT INTO projections.policy_versions (tenant_id, workspace_id, version)
SELECT tenant_id, workspace_id, n FROM old
ON CONFLICT (tenant_id, workspace_id) DO UPDATE SET version = EXCLUDED.version;
DELETE FROM refinery_schema_history WHERE version = 17;
COMMIT;";

/// V17 moves a database the previous release wrote to the compact model: the fan-out tables
/// go, and the counters, written under contract 1, become what the new code derives from
/// the log (contract 2). After `charter migrate` the counters equal the live ones the new
/// code wrote, and a replay of the whole log is identical to the read models.
#[tokio::test]
async fn v17_moves_the_previous_releases_read_side_to_the_compact_model() {
    let app = spawn_app().await;
    let t = app.create_tenant(&crate::helpers::slug("v17")).await;
    let t = t["id"].as_str().unwrap().to_owned();
    let base = format!("/v1/tenants/{t}");
    let w1 = app.create_workspace(&t, "one").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let u = create(
        &app,
        &format!("{base}/users"),
        json!({"username": "ada", "email": "ada@example.com"}),
    )
    .await;
    let g = create(&app, &format!("{base}/groups"), json!({"name": "g"})).await;
    ok(
        &app,
        Method::PUT,
        &format!("{base}/groups/{g}/members/{u}"),
        None,
    )
    .await;
    let viewer = role_id(&app, &t, "viewer").await;
    create(
        &app,
        &format!("{base}/assignments"),
        json!({"role_id": viewer, "group_id": g}),
    )
    .await;
    // A workspace born after some tenant-wide bumps, one deleted, and workspace-scoped ones.
    let w2 = app.create_workspace(&t, "two").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let w3 = app.create_workspace(&t, "three").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    create(
        &app,
        &format!("{base}/assignments"),
        json!({"role_id": viewer, "user_id": u, "workspace_id": w2}),
    )
    .await;
    ok(
        &app,
        Method::POST,
        &format!("{base}/users/{u}/disable"),
        None,
    )
    .await;
    ok(
        &app,
        Method::POST,
        &format!("{base}/users/{u}/enable"),
        None,
    )
    .await;
    ok(
        &app,
        Method::DELETE,
        &format!("{base}/workspaces/{w3}"),
        None,
    )
    .await;
    app.projected().await;

    let db = superuser(&app).await;
    let live = counters(&db).await;
    let mine = |c: &[(String, String, i64)], w: &str| {
        c.iter()
            .find(|(tt, ww, _)| *tt == t && ww == w)
            .map(|(_, _, v)| *v)
    };
    let nil = uuid::Uuid::nil().to_string();
    assert_eq!(
        mine(&live, &nil),
        Some(4),
        "membership, assignment, disable, enable"
    );
    assert_eq!(mine(&live, &w1), None, "no change of w1's own");
    assert_eq!(mine(&live, &w2), Some(1));
    assert_eq!(mine(&live, &w3), Some(1));

    db.batch_execute(UNDO_V18).await.expect("undo V18");
    db.batch_execute(DOWNGRADE_V17).await.expect("downgrade");
    let old = counters(&db).await;
    assert_eq!(
        mine(&old, &w1),
        Some(4),
        "contract 1 copied every tenant bump into w1"
    );
    assert_eq!(
        mine(&old, &w2),
        Some(3),
        "w2 saw disable and enable, and its own"
    );

    let out = run_charter_with(&app.config, &["migrate"]).await;
    assert!(
        out.status.success(),
        "charter migrate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        counters(&db).await,
        live,
        "V17 left other counters than the new code's"
    );
    for gone in ["entitlements", "pv_workspaces"] {
        let n: i64 = db
            .query_one(
                "SELECT count(*) FROM pg_tables WHERE schemaname = 'projections' AND tablename = $1",
                &[&gone],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 0, "{gone} is still there");
    }
    let out = run_charter_with(&app.config, &["replay", "--json"]).await;
    assert!(
        out.status.success(),
        "replay after V17 differs:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
