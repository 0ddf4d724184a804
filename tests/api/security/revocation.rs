//! Tokens that outlive what revoked them: a token's permissions and its `policy_version` come
//! from one point of the log, and a refresh racing a logout-all mints under the version it
//! was decided against.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::auth::{get_as, login, post_as, tokens, until_refused, user_with_role, PASSWORD};
use crate::helpers::{slug, spawn_app, spawn_app_with, superuser};
use crate::tokens::claims_of;

/// The tenant scope's `policy_version` counter, read straight from the read model.
async fn tenant_counter(client: &tokio_postgres::Client, tenant_id: &str) -> i64 {
    let tenant_id = uuid::Uuid::parse_str(tenant_id).unwrap();
    client
        .query_one(
            "SELECT COALESCE((SELECT version FROM projections.policy_versions \
             WHERE tenant_id = $1 AND workspace_id = $2), 0)",
            &[&tenant_id, &uuid::Uuid::nil()],
        )
        .await
        .unwrap()
        .get(0)
}

async fn refresh(app: &crate::helpers::TestApp, refresh_token: &str) -> reqwest::Response {
    app.anonymous
        .post(app.url("/v1/auth/refresh"))
        .json(&json!({"refresh_token": refresh_token}))
        .send()
        .await
        .unwrap()
}

/// An administrator whose assignment is being deleted refreshes while the entitlements read
/// model lags behind (a superuser holds its table). The counter must not move ahead of the
/// permissions in the read model (the two move in one transaction), and the token
/// minted then (from the index, which follows the log itself) must never carry the revoked
/// grant on a current counter: either it has neither the grant nor the old counter, or it is
/// stale once the deletion is projected. Either way it cannot re-create the assignment.
/// (With the two read models projected apart, the counter moved alone and the token carried
/// the new counter with the old permissions: never stale.)
#[tokio::test]
async fn a_revoked_permission_never_rides_on_a_current_counter() {
    let app = spawn_app().await;
    let t = app.create_tenant(&slug("stale")).await;
    let tid = t["id"].as_str().unwrap().to_owned();
    let uid = user_with_role(&app, &tid, "mallory", "tenant_admin").await;
    let (_, refresh_token) = tokens(login(&app, &tid, "mallory", PASSWORD, None).await).await;
    let page: Value = app
        .get(&format!("/v1/tenants/{tid}/assignments?user_id={uid}"))
        .await
        .json()
        .await
        .unwrap();
    let assignment = page["items"][0].clone();
    let mut blocker = superuser(&app).await;
    let before = tenant_counter(&blocker, &tid).await;
    let hold = blocker.transaction().await.unwrap();
    hold.batch_execute("LOCK TABLE projections.ent_assignments IN SHARE MODE")
        .await
        .unwrap();
    let r = app
        .send(
            reqwest::Method::DELETE,
            &format!(
                "/v1/tenants/{tid}/assignments/{}",
                assignment["id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    // Give the policy counter every chance to move on its own.
    let watcher = superuser(&app).await;
    let deadline = Instant::now() + Duration::from_millis(1_500);
    let mut moved = false;
    while Instant::now() < deadline && !moved {
        moved = tenant_counter(&watcher, &tid).await > before;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let r = refresh(&app, &refresh_token).await;
    assert_eq!(r.status(), 200);
    let minted: Value = r.json().await.unwrap();
    let token = minted["access_token"].as_str().unwrap().to_owned();
    let claims = claims_of(&token);
    println!(
        "while entitlements were held: counter moved alone: {moved}; the token carries \
         policy_version {} (was {before}) with {} permissions",
        claims["policy_version"],
        claims["permissions"].as_array().unwrap().len()
    );
    hold.rollback().await.unwrap();
    app.projected().await;
    assert!(!moved, "the policy counter moved ahead of the entitlements");
    let carries_grant = claims["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p == "iam.assignments.write");
    if carries_grant {
        // Minted from before the deletion: it must be stale now.
        assert!(claims["policy_version"].as_i64().unwrap() <= before);
        until_refused(&app, &token).await;
    }
    let r = post_as(
        &app,
        &token,
        &format!("/v1/tenants/{tid}/assignments"),
        json!({"role_id": assignment["role_id"], "user_id": uid}),
    )
    .await;
    assert!(
        [401, 403].contains(&r.status().as_u16()),
        "a token minted across the revocation re-created the assignment: {}",
        r.status()
    );
}

/// Refreshes racing logout-alls: every token a refresh returned must end with the logout-all
/// it raced, whichever committed first. (Minting from a fresh read of the user after the
/// refresh's transaction gave a token minted across the logout-all the new account version.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_racing_a_logout_all_never_outlives_it() {
    let app = spawn_app_with(|c| {
        c.rate_limit.per_user = charter::config::LimitConfig::new(6_000, 1_000);
    })
    .await;
    let t = app.create_tenant(&slug("race")).await;
    let tid = t["id"].as_str().unwrap();
    user_with_role(&app, tid, "oscar", "viewer").await;
    let app = std::sync::Arc::new(app);
    // One round: a fresh session, then its refresh and a logout-all, the one started `offset`
    // microseconds after the other (a negative offset delays the refresh). Spinning, since
    // timers are coarser than the race. Returns the refreshed token, if the refresh won.
    let round = |offset: i64| {
        let app = app.clone();
        async move {
            let (access, refresh_token) =
                tokens(login(&app, tid, "oscar", PASSWORD, None).await).await;
            let spin = |us: i64| {
                let until = Instant::now() + Duration::from_micros(us.max(0) as u64);
                while Instant::now() < until {
                    std::hint::spin_loop();
                }
            };
            let (a, b) = (app.clone(), app.clone());
            let refreshing = tokio::spawn(async move {
                spin(-offset);
                refresh(&a, &refresh_token).await
            });
            let ending = tokio::spawn(async move {
                spin(offset);
                post_as(&b, &access, "/v1/auth/logout-all", json!({})).await
            });
            let (refreshed, ended) = (refreshing.await.unwrap(), ending.await.unwrap());
            assert_eq!(ended.status(), 204);
            if refreshed.status() != 200 {
                return None;
            }
            let body: Value = refreshed.json().await.unwrap();
            Some(body["access_token"].as_str().unwrap().to_owned())
        }
    };
    // First find where the refresh stops winning, then hammer the offsets around it, where
    // the logout-all commits between the refresh's transaction and its token.
    let mut minted = Vec::new();
    let mut boundary = -12_000;
    for offset in (-12_000..=12_000).step_by(400) {
        match round(offset).await {
            Some(token) => minted.push(token),
            None => boundary = offset + 200,
        }
    }
    let rounds = 200;
    for i in 0..rounds {
        let offset = boundary - 800 + (i * 1_600) / rounds;
        if let Some(token) = round(offset).await {
            minted.push(token);
        }
    }
    app.projected().await;
    let mut survivors = 0;
    for token in &minted {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let status = get_as(&app, token, "/v1/auth/me").await.status();
            if status == 401 {
                break;
            }
            if Instant::now() > deadline {
                survivors += 1;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    println!(
        "{} refreshes raced a logout-all (the refresh starts winning {boundary} us ahead): {} \
         returned a token, {survivors} of those outlived the logout-all",
        61 + rounds,
        minted.len()
    );
    assert!(!minted.is_empty(), "some refreshes won their race");
    assert_eq!(survivors, 0, "tokens outlived the logout-all they raced");
}
