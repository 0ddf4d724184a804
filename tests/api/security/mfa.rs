//! MFA takeover with a bearer token: a workspace-scoped token (what a data-plane service holds)
//! cannot manage the account, enrolling a second factor needs the password, and an
//! administrator can reset a lost one.

use reqwest::Method;
use serde_json::{json, Value};

use crate::auth::{get_as, login, post_as, tokens, until_refused, user_with_role, PASSWORD};
use crate::helpers::{assert_problem, slug, spawn_app, TestApp};

async fn count(app: &TestApp, user_id: &str, event_type: &str) -> i64 {
    let client = app.pool.get().await.unwrap();
    client
        .query_one(
            "SELECT count(*) FROM events WHERE stream_id = 'user-' || $1 AND event_type = $2",
            &[&user_id, &event_type],
        )
        .await
        .unwrap()
        .get(0)
}

fn totp(secret: &str) -> String {
    let totp = totp_rs::TOTP::new(
        totp_rs::Algorithm::SHA1,
        6,
        1,
        30,
        totp_rs::Secret::Encoded(secret.to_owned())
            .to_bytes()
            .unwrap(),
        None,
        "test".into(),
    )
    .unwrap();
    totp.generate(chrono::Utc::now().timestamp() as u64)
}

#[tokio::test]
async fn a_workspace_token_cannot_manage_the_account_but_can_log_out() {
    let app = spawn_app().await;
    let t = app.create_tenant(&slug("wsauth")).await;
    let tid = t["id"].as_str().unwrap();
    let wid = app.create_workspace(tid, "prod").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let uid = user_with_role(&app, tid, "ivan", "tenant_admin").await;
    let r = app
        .anonymous
        .post(app.url("/v1/auth/login"))
        .json(
            &json!({"tenant": tid, "username": "ivan", "password": PASSWORD, "workspace_id": wid}),
        )
        .send()
        .await
        .unwrap();
    let (workspace_token, _) = tokens(r).await;
    let before = app.count_events().await;
    for (method, path, body) in [
        (Method::GET, "/v1/auth/me", None),
        (
            Method::POST,
            "/v1/auth/mfa/enroll",
            Some(json!({"password": PASSWORD})),
        ),
        (
            Method::POST,
            "/v1/auth/mfa/activate",
            Some(json!({"code": "123456"})),
        ),
        (
            Method::POST,
            "/v1/auth/mfa/disable",
            Some(json!({"password": PASSWORD})),
        ),
        (
            Method::POST,
            "/v1/auth/password",
            Some(json!({"old_password": PASSWORD, "new_password": "another long passphrase"})),
        ),
        (Method::POST, "/v1/auth/logout-all", None),
    ] {
        let mut request = app
            .anonymous
            .request(method.clone(), app.url(path))
            .bearer_auth(&workspace_token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let body = assert_problem(request.send().await.unwrap(), 403, "forbidden").await;
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .contains("workspace-scoped"),
            "{method} {path}: {body}"
        );
    }
    assert_eq!(app.count_events().await, before, "nothing was appended");
    assert_eq!(count(&app, &uid, "user.mfa_enrolled").await, 0);
    // Logging out is the one thing it may do: its own session ends.
    let r = post_as(&app, &workspace_token, "/v1/auth/logout", json!({})).await;
    assert_eq!(r.status(), 204);
    until_refused(&app, &workspace_token).await;
}

#[tokio::test]
async fn enrolling_a_second_factor_needs_the_password_and_wrong_ones_lock() {
    let app = spawn_app().await;
    let t = app.create_tenant(&slug("enroll")).await;
    let tid = t["id"].as_str().unwrap();
    let uid = user_with_role(&app, tid, "judy", "viewer").await;
    let (access, _) = tokens(login(&app, tid, "judy", PASSWORD, None).await).await;
    // No password: the body is incomplete.
    let r = post_as(&app, &access, "/v1/auth/mfa/enroll", json!({})).await;
    assert_problem(r, 422, "invalid-body").await;
    // A wrong one is a failed login: five lock the account.
    for _ in 0..5 {
        let body = json!({"password": "not judy's password"});
        let r = post_as(&app, &access, "/v1/auth/mfa/enroll", body).await;
        assert_problem(r, 422, "wrong-password").await;
    }
    assert_eq!(count(&app, &uid, "user.mfa_enrolled").await, 0);
    assert_eq!(count(&app, &uid, "user.login_failed").await, 5);
    assert_eq!(count(&app, &uid, "user.account_locked").await, 1);
    let r = post_as(
        &app,
        &access,
        "/v1/auth/mfa/enroll",
        json!({"password": PASSWORD}),
    )
    .await;
    assert_problem(r, 409, "account-locked").await;
    assert_problem(
        login(&app, tid, "judy", PASSWORD, None).await,
        401,
        "invalid-credentials",
    )
    .await;
    // Unlocked, the right password enrolls.
    let r = app
        .post(&format!("/v1/tenants/{tid}/users/{uid}/unlock"), json!({}))
        .await;
    assert_eq!(r.status(), 200);
    let r = post_as(
        &app,
        &access,
        "/v1/auth/mfa/enroll",
        json!({"password": PASSWORD}),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(count(&app, &uid, "user.mfa_enrolled").await, 1);
}

#[tokio::test]
async fn an_administrator_resets_a_lost_second_factor_and_every_session_ends() {
    let app = spawn_app().await;
    let t = app.create_tenant(&slug("reset")).await;
    let tid = t["id"].as_str().unwrap();
    let uid = user_with_role(&app, tid, "karl", "viewer").await;
    user_with_role(&app, tid, "lena", "viewer").await;
    let (access, _) = tokens(login(&app, tid, "karl", PASSWORD, None).await).await;
    let r = post_as(
        &app,
        &access,
        "/v1/auth/mfa/enroll",
        json!({"password": PASSWORD}),
    )
    .await;
    let secret = r.json::<Value>().await.unwrap()["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = post_as(
        &app,
        &access,
        "/v1/auth/mfa/activate",
        json!({"code": totp(&secret)}),
    )
    .await;
    assert_eq!(r.status(), 200);
    // The phone is lost: the password alone no longer logs in.
    assert_problem(
        login(&app, tid, "karl", PASSWORD, None).await,
        401,
        "invalid-credentials",
    )
    .await;
    let path = format!("/v1/tenants/{tid}/users/{uid}/mfa/reset");
    // A viewer may not reset anyone's factor.
    let (viewer, _) = tokens(login(&app, tid, "lena", PASSWORD, None).await).await;
    let r = post_as(&app, &viewer, &path, json!({})).await;
    assert_problem(r, 403, "forbidden").await;
    // The administrator may.
    let r = app.post(&path, json!({})).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["data"]["mfa_enabled"], false);
    assert_eq!(body["data"]["account_version"], 2);
    assert_eq!(body["events"].as_array().unwrap().len(), 1);
    assert_eq!(count(&app, &uid, "user.mfa_reset").await, 1);
    // Every token of the user ends, and the password alone logs in again.
    until_refused(&app, &access).await;
    let (fresh, _) = tokens(login(&app, tid, "karl", PASSWORD, None).await).await;
    let me: Value = get_as(&app, &fresh, "/v1/auth/me")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["mfa_enabled"], false);
    // Again: nothing left to reset, nothing appended.
    let r = app.post(&path, json!({})).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["events"], json!([]));
}
