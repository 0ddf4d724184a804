//! Authentication against the real server: login with and without MFA, lockout and unlock,
//! anti-enumeration, refresh rotation with reuse detection, logout and logout-all.

use std::time::{Duration, Instant};

use reqwest::{Response, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{assert_problem, slug, spawn_app, TestApp};

pub const PASSWORD: &str = "a long enough passphrase";

/// Creates a user with `PASSWORD` holding the system role `role` tenant-wide, and waits
/// until the grant is projected. Returns the user's id.
pub async fn user_with_role(app: &TestApp, tenant_id: &str, username: &str, role: &str) -> String {
    let r = app
        .post(
            &format!("/v1/tenants/{tenant_id}/users"),
            json!({"username": username, "email": format!("{username}@example.com"), "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status(), 201, "create user {username}");
    let user_id = r.json::<Value>().await.unwrap()["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let role_id = role_id(app, tenant_id, role).await;
    let r = app
        .post(
            &format!("/v1/tenants/{tenant_id}/assignments"),
            json!({"role_id": role_id, "user_id": user_id}),
        )
        .await;
    assert_eq!(r.status(), 201, "assign {role}");
    let token = r.json::<Value>().await.unwrap()["consistency_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .get(&format!(
            "/v1/tenants/{tenant_id}/assignments?consistency={token}"
        ))
        .await;
    assert_eq!(r.status(), 200);
    user_id
}

/// The id of role `name`, once the roles read model shows it.
pub async fn role_id(app: &TestApp, tenant_id: &str, name: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let roles: Value = app
            .get(&format!("/v1/tenants/{tenant_id}/roles?limit=200"))
            .await
            .json()
            .await
            .unwrap();
        let found = roles["items"].as_array().and_then(|items| {
            items
                .iter()
                .find(|r| r["name"] == name)
                .map(|r| r["id"].as_str().unwrap().to_owned())
        });
        if let Some(id) = found {
            return id;
        }
        assert!(Instant::now() < deadline, "no role {name} in {roles}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the read models include the command that answered `response`.
pub async fn settled(app: &TestApp, tenant_id: &str, response: Response) -> Value {
    assert!(response.status().is_success(), "{}", response.status());
    let body: Value = response.json().await.unwrap();
    let token = body["consistency_token"].as_str().unwrap();
    let r = app
        .get(&format!(
            "/v1/tenants/{tenant_id}/roles?limit=1&consistency={token}"
        ))
        .await;
    assert_eq!(r.status(), 200);
    body
}

pub async fn login(
    app: &TestApp,
    tenant: &str,
    username: &str,
    password: &str,
    code: Option<&str>,
) -> Response {
    let mut body = json!({"tenant": tenant, "username": username, "password": password});
    if let Some(code) = code {
        body["totp_code"] = json!(code);
    }
    app.anonymous
        .post(app.url("/v1/auth/login"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

pub async fn tokens(response: Response) -> (String, String) {
    assert_eq!(response.status(), 200, "login");
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["expires_in"].as_u64().unwrap() > 0);
    (
        body["access_token"].as_str().unwrap().to_owned(),
        body["refresh_token"].as_str().unwrap().to_owned(),
    )
}

/// `GET path` with `token`.
pub async fn get_as(app: &TestApp, token: &str, path: &str) -> Response {
    app.anonymous
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

pub async fn post_as(app: &TestApp, token: &str, path: &str, body: Value) -> Response {
    app.anonymous
        .post(app.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Polls `/v1/auth/me` until `token` is refused; returns how long that took.
pub async fn until_refused(app: &TestApp, token: &str) -> Duration {
    let started = Instant::now();
    loop {
        let r = get_as(app, token, "/v1/auth/me").await;
        if r.status() == 401 {
            return started.elapsed();
        }
        assert_eq!(r.status(), 200);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the token stayed valid"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn refresh(app: &TestApp, refresh_token: &str) -> Response {
    app.anonymous
        .post(app.url("/v1/auth/refresh"))
        .json(&json!({"refresh_token": refresh_token}))
        .send()
        .await
        .unwrap()
}

/// The TOTP code of `secret` at `unix_time + offset_steps * 30`, computed independently of
/// Charter's code path (totp-rs directly).
fn code(secret: &str, offset_steps: i64) -> String {
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
    let now = chrono::Utc::now().timestamp() + offset_steps * 30;
    totp.generate(now as u64)
}

#[tokio::test]
async fn the_admin_api_needs_a_token() {
    let app = spawn_app().await;
    let r = app
        .anonymous
        .get(app.url("/v1/tenants"))
        .send()
        .await
        .unwrap();
    let body = assert_problem(r, 401, "unauthorized").await;
    assert!(body["detail"].as_str().unwrap().contains("bearer"));
    let r = app
        .anonymous
        .get(app.url("/v1/tenants"))
        .bearer_auth("not.a.jwt")
        .send()
        .await
        .unwrap();
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("invalid_token"));
    assert_problem(r, 401, "invalid-token").await;
    for public in [
        "/health",
        "/.well-known/jwks.json",
        "/.well-known/openid-configuration",
    ] {
        let r = app.anonymous.get(app.url(public)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{public}");
    }
    let config: Value = app
        .anonymous
        .get(app.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        config["issuer"],
        app.config.auth.issuer.trim_end_matches('/')
    );
    assert!(config["jwks_uri"]
        .as_str()
        .unwrap()
        .ends_with("/.well-known/jwks.json"));
}

#[tokio::test]
async fn login_refresh_and_logout_without_mfa() {
    let app = spawn_app().await;
    let t = app.create_tenant(&slug("acme")).await;
    let (tid, tslug) = (t["id"].as_str().unwrap(), t["slug"].as_str().unwrap());
    let uid = user_with_role(&app, tid, "alice", "viewer").await;

    // By slug and by id, any case of the username.
    let (access, refresh_token) = tokens(login(&app, tslug, "Alice", PASSWORD, None).await).await;
    tokens(login(&app, tid, "alice", PASSWORD, None).await).await;

    let me: Value = get_as(&app, &access, "/v1/auth/me")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["id"], uid);
    assert_eq!(me["tenant"]["id"], tid);
    assert_eq!(me["username"], "alice");
    assert!(me["permissions"]
        .as_array()
        .unwrap()
        .contains(&json!("iam.users.read")));
    assert!(!me["permissions"]
        .as_array()
        .unwrap()
        .contains(&json!("iam.users.write")));
    assert!(me["policy_version"].as_i64().unwrap() >= 1);

    // A viewer reads but does not write.
    assert_eq!(
        get_as(&app, &access, &format!("/v1/tenants/{tid}/users"))
            .await
            .status(),
        200
    );
    let r = post_as(
        &app,
        &access,
        &format!("/v1/tenants/{tid}/users"),
        json!({"username": "x", "email": "x@example.com"}),
    )
    .await;
    assert_problem(r, 403, "forbidden").await;

    // Rotation: the new pair works, the old refresh token is spent.
    let (access2, refresh2) = tokens(refresh(&app, &refresh_token).await).await;
    assert_ne!(refresh2, refresh_token);
    assert_eq!(get_as(&app, &access2, "/v1/auth/me").await.status(), 200);

    // Logout ends the session and revokes the presented token at once.
    let r = post_as(&app, &access2, "/v1/auth/logout", json!({})).await;
    assert_eq!(r.status(), 204);
    until_refused(&app, &access2).await;
    assert_problem(refresh(&app, &refresh2).await, 401, "invalid-grant").await;
    // Every access token of the ended session is refused, not only the presented one.
    let body = assert_problem(
        get_as(&app, &access, "/v1/auth/me").await,
        401,
        "invalid-token",
    )
    .await;
    assert!(
        body["detail"].as_str().unwrap().contains("session"),
        "{body}"
    );

    // The log has the story, and no secret.
    let client = app.pool.get().await.unwrap();
    let types: Vec<String> = client
        .query(
            "SELECT event_type FROM events WHERE stream_id = $1 ORDER BY stream_version",
            &[&format!("user-{uid}")],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        types
            .iter()
            .filter(|t| *t == "user.login_succeeded")
            .count(),
        2,
        "{types:?}"
    );
    let sessions: i64 = client
        .query_one("SELECT count(*) FROM events WHERE event_type = 'session.ended' AND data->>'user_id' = $1", &[&uid])
        .await
        .unwrap()
        .get(0);
    assert_eq!(sessions, 1);
    let outboxed: i64 = client
        .query_one("SELECT count(*) FROM outbox o JOIN events e ON e.position = o.position WHERE e.event_type IN ('session.started', 'session.refreshed', 'user.password_set')", &[])
        .await
        .map(|r| r.get(0))
        .unwrap_or(0);
    assert_eq!(outboxed, 0, "credential events never reach the outbox");
}

#[tokio::test]
async fn login_with_totp_and_recovery_codes() {
    let app = spawn_app().await;
    let t = app.create_tenant(&slug("mfa")).await;
    let tid = t["id"].as_str().unwrap();
    user_with_role(&app, tid, "bob", "viewer").await;
    let (access, _) = tokens(login(&app, tid, "bob", PASSWORD, None).await).await;

    let r = post_as(
        &app,
        &access,
        "/v1/auth/mfa/enroll",
        json!({"password": PASSWORD}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let enrollment: Value = r.json().await.unwrap();
    let secret = enrollment["secret"].as_str().unwrap().to_owned();
    assert!(enrollment["otpauth_uri"]
        .as_str()
        .unwrap()
        .starts_with("otpauth://totp/"));
    // Enrolled is not active: a password alone still works.
    tokens(login(&app, tid, "bob", PASSWORD, None).await).await;

    let r = post_as(
        &app,
        &access,
        "/v1/auth/mfa/activate",
        json!({"code": "000000"}),
    )
    .await;
    assert_problem(r, 422, "invalid-code").await;
    let r = post_as(
        &app,
        &access,
        "/v1/auth/mfa/activate",
        json!({"code": code(&secret, 0)}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let codes: Vec<String> =
        serde_json::from_value(r.json::<Value>().await.unwrap()["recovery_codes"].clone()).unwrap();
    assert_eq!(codes.len(), 10);

    // Now the password alone, or with a wrong code, is the same uniform 401.
    let missing = assert_problem(
        login(&app, tid, "bob", PASSWORD, None).await,
        401,
        "invalid-credentials",
    )
    .await;
    let wrong = assert_problem(
        login(&app, tid, "bob", PASSWORD, Some("123456")).await,
        401,
        "invalid-credentials",
    )
    .await;
    assert_eq!(missing, wrong);
    // The activation's step is spent; the next step (within the ±1 window) is accepted once.
    let next = code(&secret, 1);
    tokens(login(&app, tid, "bob", PASSWORD, Some(&next)).await).await;
    assert_problem(
        login(&app, tid, "bob", PASSWORD, Some(&next)).await,
        401,
        "invalid-credentials",
    )
    .await;
    // A recovery code stands in for a TOTP code, once.
    tokens(login(&app, tid, "bob", PASSWORD, Some(&codes[3].to_uppercase())).await).await;
    assert_problem(
        login(&app, tid, "bob", PASSWORD, Some(&codes[3])).await,
        401,
        "invalid-credentials",
    )
    .await;

    // Disabling needs the password.
    let (access, _) = tokens(login(&app, tid, "bob", PASSWORD, Some(&codes[4])).await).await;
    let r = post_as(
        &app,
        &access,
        "/v1/auth/mfa/disable",
        json!({"password": "wrong password!!"}),
    )
    .await;
    assert_problem(r, 422, "wrong-password").await;
    let r = post_as(
        &app,
        &access,
        "/v1/auth/mfa/disable",
        json!({"password": PASSWORD}),
    )
    .await;
    assert_eq!(r.status(), 204);
    tokens(login(&app, tid, "bob", PASSWORD, None).await).await;
}

#[tokio::test]
async fn lockout_after_five_failures_and_admin_unlock() {
    let app = spawn_app().await;
    let t = app.create_tenant(&slug("lock")).await;
    let tid = t["id"].as_str().unwrap();
    let uid = user_with_role(&app, tid, "carol", "viewer").await;
    let wrong = "not the right password";
    let mut bodies = Vec::new();
    for _ in 0..5 {
        bodies.push(
            assert_problem(
                login(&app, tid, "carol", wrong, None).await,
                401,
                "invalid-credentials",
            )
            .await,
        );
    }
    // Locked: even the right password fails, with the very same answer.
    bodies.push(
        assert_problem(
            login(&app, tid, "carol", PASSWORD, None).await,
            401,
            "invalid-credentials",
        )
        .await,
    );
    // An unknown user and a disabled one look the same too.
    bodies.push(
        assert_problem(
            login(&app, tid, "nobody", PASSWORD, None).await,
            401,
            "invalid-credentials",
        )
        .await,
    );
    bodies.push(
        assert_problem(
            login(&app, "no-such-tenant", "carol", PASSWORD, None).await,
            401,
            "invalid-credentials",
        )
        .await,
    );
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "{bodies:?}");

    let user: Value = app
        .get(&format!("/v1/tenants/{tid}/users/{uid}"))
        .await
        .json()
        .await
        .unwrap();
    assert!(user["locked_until"].is_string(), "{user}");
    let r = app
        .post(&format!("/v1/tenants/{tid}/users/{uid}/unlock"), json!({}))
        .await;
    assert_eq!(r.status(), 200);
    tokens(login(&app, tid, "carol", PASSWORD, None).await).await;

    let client = app.pool.get().await.unwrap();
    let types: Vec<String> = client
        .query(
            "SELECT event_type FROM events WHERE stream_id = $1 ORDER BY stream_version",
            &[&format!("user-{uid}")],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let count = |t: &str| types.iter().filter(|x| *x == t).count();
    // Five counted failures; the attempt during the lock appends nothing.
    assert_eq!(count("user.login_failed"), 5, "{types:?}");
    assert_eq!(count("user.account_locked"), 1);
    assert_eq!(count("user.account_unlocked"), 1);
    assert_eq!(count("user.login_succeeded"), 1);

    // Disabled users cannot log in either.
    app.post(&format!("/v1/tenants/{tid}/users/{uid}/disable"), json!({}))
        .await;
    let disabled = assert_problem(
        login(&app, tid, "carol", PASSWORD, None).await,
        401,
        "invalid-credentials",
    )
    .await;
    assert_eq!(disabled, bodies[0]);
}

#[tokio::test]
async fn refresh_reuse_revokes_the_whole_family() {
    let app = spawn_app().await;
    let t = app.create_tenant(&slug("reuse")).await;
    let tid = t["id"].as_str().unwrap();
    user_with_role(&app, tid, "frank", "viewer").await;
    // A thief copies rt1; the user refreshes first and gets access2 and rt2.
    let (_, rt1) = tokens(login(&app, tid, "frank", PASSWORD, None).await).await;
    let (access2, rt2) = tokens(refresh(&app, &rt1).await).await;
    assert_eq!(get_as(&app, &access2, "/v1/auth/me").await.status(), 200);
    // The thief replays the spent token: refused, and the family ends...
    assert_problem(refresh(&app, &rt1).await, 401, "invalid-grant").await;
    // ...with every access token it issued...
    until_refused(&app, &access2).await;
    // ...and the legitimate holder's current refresh token is dead too.
    assert_problem(refresh(&app, &rt2).await, 401, "invalid-grant").await;
    // Garbage never reaches a stream.
    assert_problem(refresh(&app, "rt_garbage").await, 401, "invalid-grant").await;
    let client = app.pool.get().await.unwrap();
    let reasons: Vec<String> = client
        .query(
            "SELECT data->>'reason' FROM events WHERE event_type = 'session.ended'",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(reasons, ["refresh_token_reused"]);
}

#[tokio::test]
async fn logout_all_and_password_change_end_every_session() {
    let app = spawn_app().await;
    let t = app.create_tenant(&slug("all")).await;
    let tid = t["id"].as_str().unwrap();
    user_with_role(&app, tid, "grace", "viewer").await;
    let (a, rt_a) = tokens(login(&app, tid, "grace", PASSWORD, None).await).await;
    let (b, _) = tokens(login(&app, tid, "grace", PASSWORD, None).await).await;
    assert_eq!(
        post_as(&app, &a, "/v1/auth/logout-all", json!({}))
            .await
            .status(),
        204
    );
    let lag_a = until_refused(&app, &a).await;
    let lag_b = until_refused(&app, &b).await;
    println!("logout-all took effect after {lag_a:?} / {lag_b:?}");
    assert_problem(refresh(&app, &rt_a).await, 401, "invalid-grant").await;

    let (c, _) = tokens(login(&app, tid, "grace", PASSWORD, None).await).await;
    let new_password = "an even longer passphrase";
    let r = post_as(
        &app,
        &c,
        "/v1/auth/password",
        json!({"old_password": "wrong", "new_password": new_password}),
    )
    .await;
    assert_problem(r, 422, "wrong-password").await;
    let r = post_as(
        &app,
        &c,
        "/v1/auth/password",
        json!({"old_password": PASSWORD, "new_password": "short"}),
    )
    .await;
    assert_problem(r, 422, "validation-failed").await;
    let r = post_as(
        &app,
        &c,
        "/v1/auth/password",
        json!({"old_password": PASSWORD, "new_password": new_password}),
    )
    .await;
    assert_eq!(r.status(), 204);
    until_refused(&app, &c).await;
    assert_problem(
        login(&app, tid, "grace", PASSWORD, None).await,
        401,
        "invalid-credentials",
    )
    .await;
    tokens(login(&app, tid, "grace", new_password, None).await).await;
}

#[tokio::test]
async fn login_can_scope_a_token_to_a_workspace() {
    let app = spawn_app().await;
    let t = app.create_tenant(&slug("ws")).await;
    let tid = t["id"].as_str().unwrap();
    let ws = app.create_workspace(tid, "prod").await;
    let wid = ws["id"].as_str().unwrap();
    user_with_role(&app, tid, "heidi", "tenant_admin").await;
    let r = app
        .anonymous
        .post(app.url("/v1/auth/login"))
        .json(
            &json!({"tenant": tid, "username": "heidi", "password": PASSWORD, "workspace_id": wid}),
        )
        .send()
        .await
        .unwrap();
    let (access, _) = tokens(r).await;
    let claims = crate::tokens::claims_of(&access);
    assert_eq!(claims["workspace_id"], wid);
    assert!(claims["permissions"]
        .as_array()
        .unwrap()
        .contains(&json!("iam.users.write")));
    // Workspace tokens are for data planes, not for the admin API.
    let r = get_as(&app, &access, &format!("/v1/tenants/{tid}/users")).await;
    assert_problem(r, 403, "forbidden").await;
    // A workspace of another tenant is just a failed login.
    let other = app.create_tenant(&slug("other")).await;
    let other_ws = app
        .create_workspace(other["id"].as_str().unwrap(), "x")
        .await;
    let r = app
        .anonymous
        .post(app.url("/v1/auth/login"))
        .json(&json!({"tenant": tid, "username": "heidi", "password": PASSWORD, "workspace_id": other_ws["id"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn bootstrap_is_idempotent_and_grants_only_to_who_proves_the_password() {
    use charter::auth::bootstrap::{bootstrap, Bootstrap, BootstrapError};
    use charter::command::Writer;
    let app = spawn_app().await;
    let writer = Writer {
        pool: app.pool.clone(),
        appended: charter_log::listener::Signal::local().0,
    };
    let iterations = app.config.auth.pbkdf2_iterations;
    let root = app.config.bootstrap.tenant.clone().unwrap();
    let all_events = || async {
        let client = app.pool.get().await.unwrap();
        client
            .query_one("SELECT count(*) FROM events", &[])
            .await
            .unwrap()
            .get::<_, i64>(0)
    };
    let before = all_events().await;
    let again = bootstrap(
        &writer,
        iterations,
        &Bootstrap {
            tenant_slug: root.clone(),
            username: crate::helpers::ADMIN.into(),
            email: "admin@example.com".into(),
            password: crate::helpers::ADMIN_PASSWORD.into(),
        },
    )
    .await
    .unwrap();
    assert_eq!(again.tenant_id, app.root_tenant_id);
    assert_eq!(
        all_events().await,
        before,
        "a second bootstrap appends nothing"
    );

    // Someone with iam.users.write in the root tenant creates "operator" with a password of
    // their own: a bootstrap naming "operator" must not hand them the platform grant.
    let root_id = app.root_tenant_id.to_string();
    user_with_role(&app, &root_id, "operator", "viewer").await;
    let claim = |password: &str| Bootstrap {
        tenant_slug: root.clone(),
        username: "operator".into(),
        email: "operator@example.com".into(),
        password: password.into(),
    };
    let refused = bootstrap(&writer, iterations, &claim("the configured password")).await;
    assert!(
        matches!(refused, Err(BootstrapError::Refused(_))),
        "{refused:?}"
    );
    bootstrap(&writer, iterations, &claim(PASSWORD))
        .await
        .unwrap();
    // A token carries what the read models hold when it is minted: let them see the grant.
    app.projected().await;
    let (token, _) = tokens(login(&app, &root, "operator", PASSWORD, None).await).await;
    let me: Value = get_as(&app, &token, "/v1/auth/me")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["platform_permissions"], json!(["iam.*"]));
}
