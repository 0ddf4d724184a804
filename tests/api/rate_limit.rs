//! The credential endpoints are throttled per client address, per user (login) and per client
//! (token endpoint): `429 rate-limited` with `Retry-After`, admitted again after that long, and
//! a refused attempt costs no hash and does not count toward the lockout.

use std::time::{Duration, Instant};

use charter::config::LimitConfig;
use reqwest::{Method, Response};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::auth::{login, user_with_role, PASSWORD};
use crate::helpers::{assert_problem, slug, spawn_app_with, TestApp};
use crate::openapi::conform;

const WRONG: &str = "not the password at all";

/// Checks a refusal (status, problem type, documented in the OpenAPI document, a
/// `Retry-After` of whole seconds >= 1) and returns `(Retry-After, detail)`.
async fn refused(template: &str, response: Response) -> (u64, String) {
    assert_eq!(response.status(), 429, "{template}: expected a refusal");
    let retry_after: u64 = response
        .headers()
        .get("retry-after")
        .expect("a Retry-After header")
        .to_str()
        .unwrap()
        .parse()
        .expect("Retry-After in whole seconds");
    assert!(retry_after >= 1);
    let body = conform(&Method::POST, template, response).await;
    assert_eq!(body["type"], "https://charter.dev/problems/rate-limited");
    assert_eq!(body["status"], 429);
    (retry_after, body["detail"].as_str().unwrap().to_owned())
}

async fn count_events(app: &TestApp, user_id: &str, event_type: &str) -> i64 {
    app.pool
        .get()
        .await
        .unwrap()
        .query_one(
            "SELECT count(*) FROM events WHERE stream_id = $1 AND event_type = $2",
            &[&format!("user-{user_id}"), &event_type],
        )
        .await
        .unwrap()
        .get(0)
}

/// Refusals counted by `charter_rate_limited_total` for the labels given.
async fn refusals_counted(app: &TestApp, endpoint: &str, scope: &str) -> f64 {
    let endpoint = format!("endpoint=\"{endpoint}\"");
    let scope = format!("scope=\"{scope}\"");
    crate::helpers::metric_sum(app, "charter_rate_limited_total", &[&endpoint, &scope]).await
}

async fn grant(app: &TestApp, client_id: &str, secret: &str) -> Response {
    app.anonymous
        .post(app.url("/v1/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_secret", secret),
        ])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_user_is_limited_while_another_user_from_the_same_address_is_not() {
    let app = spawn_app_with(|c| {
        // Hashing that costs something, to see that a refusal does not pay it.
        c.auth.pbkdf2_iterations = std::num::NonZeroU32::new(200_000).unwrap();
        // A cell every 2 s, enough for the burst and the refusals to happen within one.
        c.rate_limit.per_user = LimitConfig::new(30, 3);
        c.rate_limit.per_ip = LimitConfig::new(6_000, 1_000);
    })
    .await;
    let t = app.create_tenant(&slug("rl-user")).await;
    let (tid, tslug) = (t["id"].as_str().unwrap(), t["slug"].as_str().unwrap());
    let alice = user_with_role(&app, tid, "alice", "viewer").await;
    user_with_role(&app, tid, "bob", "viewer").await;
    let counted_before = refusals_counted(&app, "login", "user").await;

    // A burst of 3: two wrong passwords (below the lockout threshold of 5) and a good one.
    let mut hashed = Vec::new();
    for password in [WRONG, WRONG] {
        let started = Instant::now();
        assert_eq!(
            login(&app, tid, "alice", password, None).await.status(),
            401
        );
        hashed.push(started.elapsed());
    }
    assert_eq!(
        login(&app, tid, "alice", PASSWORD, None).await.status(),
        200
    );
    assert_eq!(count_events(&app, &alice, "user.login_failed").await, 2);

    // Then every attempt is refused, the right password too, by id or by slug, whatever the
    // case of the username: ten wrong passwords that would have locked the account twice.
    let mut refusals = Vec::new();
    for (tenant, username, password) in [
        (tid, "alice", WRONG),
        (tslug, "alice", WRONG),
        (tid, "ALICE", WRONG),
        (tid, "alice", PASSWORD),
    ]
    .into_iter()
    .cycle()
    .take(10)
    {
        let started = Instant::now();
        let r = login(&app, tenant, username, password, None).await;
        refusals.push(started.elapsed());
        let (retry_after, detail) = refused("/v1/auth/login", r).await;
        assert!(retry_after <= 2, "one cell every 2 s: {retry_after}");
        assert!(detail.contains("for this user"), "{detail}");
    }
    // Another user from the same address is not affected.
    assert_eq!(login(&app, tid, "bob", PASSWORD, None).await.status(), 200);

    // Nothing was recorded for the refusals, so nothing counted toward the lockout...
    assert_eq!(count_events(&app, &alice, "user.login_failed").await, 2);
    assert_eq!(count_events(&app, &alice, "user.account_locked").await, 0);
    // ...and they paid no hash: a refusal is far cheaper than a checked password.
    hashed.sort();
    refusals.sort();
    let (hash, refusal) = (hashed[0], refusals[refusals.len() / 2]);
    println!("login: wrong password (hashed) {hash:?}, refusal (median) {refusal:?}");
    assert!(
        refusal * 3 < hash,
        "a refusal took {refusal:?}, a hashed attempt {hash:?}"
    );
    assert!(refusals_counted(&app, "login", "user").await - counted_before >= 10.0);

    // After Retry-After, admitted again, and the account is not locked.
    let r = login(&app, tid, "alice", PASSWORD, None).await;
    let (retry_after, _) = refused("/v1/auth/login", r).await;
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    let r = login(&app, tid, "alice", PASSWORD, None).await;
    assert_eq!(r.status(), 200, "admitted after Retry-After");
}

/// Sends logins as distinct users (so no per-user limit applies) until the address is refused;
/// returns how many were admitted (each a 401) and the refusal's Retry-After.
async fn until_the_address_is_refused(app: &TestApp, tenant: &str, most: usize) -> (usize, u64) {
    for admitted in 0..=most {
        let username = format!("nobody-{}", Uuid::now_v7().simple());
        let r = login(app, tenant, &username, WRONG, None).await;
        if r.status() == 429 {
            let (retry_after, detail) = refused("/v1/auth/login", r).await;
            assert!(detail.contains("from this address"), "{detail}");
            return (admitted, retry_after);
        }
        assert_problem(r, 401, "invalid-credentials").await;
    }
    panic!("{most} logins from one address were all admitted");
}

#[tokio::test]
async fn an_address_is_limited_across_usernames_and_per_endpoint() {
    const BURST: usize = 5;
    let app = spawn_app_with(|c| {
        // A cell every 3 s; the suite's setup (the administrator's login) may have used one.
        c.rate_limit.per_ip = LimitConfig::new(20, BURST as u32);
        c.rate_limit.per_user = LimitConfig::new(6_000, 1_000);
        c.rate_limit.per_client = LimitConfig::new(6_000, 1_000);
    })
    .await;
    let tenant = app.create_tenant(&slug("rl-ip")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (admitted, retry_after) = until_the_address_is_refused(&app, &tenant, BURST + 2).await;
    assert!(
        (BURST - 1..=BURST + 1).contains(&admitted),
        "{admitted} admitted before the refusal, with a burst of {BURST}"
    );
    assert!((1..=3).contains(&retry_after), "{retry_after}");
    // Not believed without a trusted proxy: a forwarded address changes nothing.
    let r = app
        .anonymous
        .post(app.url("/v1/auth/login"))
        .header("x-forwarded-for", "198.51.100.7")
        .json(&json!({"tenant": tenant, "username": "someone", "password": WRONG}))
        .send()
        .await
        .unwrap();
    refused("/v1/auth/login", r).await;

    // The token endpoint has buckets of its own: admitted (and wrong) until its turn comes.
    let mut token_admitted = 0;
    let retry_token = loop {
        let r = grant(&app, &Uuid::now_v7().to_string(), "cs_wrong").await;
        if r.status() == 429 {
            let (retry_after, detail) = refused("/v1/oauth/token", r).await;
            assert!(detail.contains("from this address"), "{detail}");
            break retry_after;
        }
        assert_problem(r, 401, "invalid-client").await;
        token_admitted += 1;
        assert!(
            token_admitted <= BURST + 1,
            "the token endpoint is not limited"
        );
    };
    assert!(
        token_admitted >= BURST,
        "a fresh bucket admits a burst: {token_admitted}"
    );

    // After Retry-After, admitted again.
    tokio::time::sleep(Duration::from_secs(retry_after.max(retry_token))).await;
    let r = login(&app, &tenant, "someone-else", WRONG, None).await;
    assert_problem(r, 401, "invalid-credentials").await;
    let r = grant(&app, &Uuid::now_v7().to_string(), "cs_wrong").await;
    assert_problem(r, 401, "invalid-client").await;
}

#[tokio::test]
async fn forwarded_addresses_count_only_behind_a_trusted_proxy() {
    let app = spawn_app_with(|c| {
        c.rate_limit.per_ip = LimitConfig::new(1, 2);
        c.rate_limit.per_user = LimitConfig::new(6_000, 1_000);
        c.rate_limit.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    let tenant = app.create_tenant(&slug("rl-xff")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let from = |client: &'static str| {
        let tenant = tenant.clone();
        let app = &app;
        async move {
            app.anonymous
                .post(app.url("/v1/auth/login"))
                // What the client sent itself, then what the trusted proxy appended.
                .header("x-forwarded-for", format!("203.0.113.250, {client}"))
                .json(&json!({"tenant": tenant, "username": "x", "password": WRONG}))
                .send()
                .await
                .unwrap()
        }
    };
    for _ in 0..2 {
        assert_eq!(from("198.51.100.1").await.status(), 401);
    }
    refused("/v1/auth/login", from("198.51.100.1").await).await;
    // Another client behind the same proxy has a bucket of its own.
    assert_eq!(from("198.51.100.2").await.status(), 401);
    // The address the events record is the same one.
    let r = app
        .http
        .post(app.url(&format!("/v1/tenants/{tenant}/groups")))
        .header("x-forwarded-for", "203.0.113.250, 198.51.100.9")
        .json(&json!({"name": "forwarded"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let recorded: Option<String> = app
        .pool
        .get()
        .await
        .unwrap()
        .query_one(
            "SELECT metadata->>'client_ip' FROM events WHERE tenant_id = $1 \
             AND event_type = 'group.created'",
            &[&Uuid::parse_str(&tenant).unwrap()],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(recorded.as_deref(), Some("198.51.100.9"));
}

#[tokio::test]
async fn the_token_endpoint_is_limited_per_client() {
    let app = spawn_app_with(|c| {
        c.rate_limit.per_client = LimitConfig::new(30, 3);
        c.rate_limit.per_ip = LimitConfig::new(6_000, 1_000);
    })
    .await;
    let tid = app.create_tenant(&slug("rl-client")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let create = |name: &'static str| {
        let path = format!("/v1/tenants/{tid}/service-accounts");
        let app = &app;
        async move {
            let r = app.post(&path, json!({"name": name})).await;
            assert_eq!(r.status(), 201);
            let body: Value = r.json().await.unwrap();
            (
                body["data"]["client_id"].as_str().unwrap().to_owned(),
                body["data"]["client_secret"].as_str().unwrap().to_owned(),
            )
        }
    };
    let (a, a_secret) = create("a").await;
    let (b, b_secret) = create("b").await;
    let counted_before = refusals_counted(&app, "token", "client").await;
    for _ in 0..3 {
        assert_eq!(grant(&app, &a, &a_secret).await.status(), 200);
    }
    let (retry_after, detail) = refused("/v1/oauth/token", grant(&app, &a, &a_secret).await).await;
    assert!(detail.contains("for this client"), "{detail}");
    assert!(retry_after <= 2, "{retry_after}");
    // Refused before the secret is looked at.
    refused("/v1/oauth/token", grant(&app, &a, "cs_wrong").await).await;
    // HTTP Basic is the same client.
    let r = app
        .anonymous
        .post(app.url("/v1/oauth/token"))
        .basic_auth(&a, Some(&a_secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    refused("/v1/oauth/token", r).await;
    // Another client is not affected.
    assert_eq!(grant(&app, &b, &b_secret).await.status(), 200);
    assert!(refusals_counted(&app, "token", "client").await - counted_before >= 3.0);

    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    assert_eq!(
        grant(&app, &a, &a_secret).await.status(),
        200,
        "admitted after Retry-After"
    );
}
