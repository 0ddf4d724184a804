//! The verification cache must not fail open when its LISTEN connection dies silently: a
//! heartbeat finds the dead connection (and nothing is remembered meanwhile), and no entry
//! outlives its age cap whatever the connection looks like.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use charter::crypto::MasterKey;
use charter::token::{KeyStore, TokenError, Verifier};
use charter_log::listener::Heartbeat;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::proxy::Proxy;
use crate::auth::{login, post_as, tokens, user_with_role, PASSWORD};
use crate::helpers::{env, slug, spawn_app, url_for, TestApp, TEST_MASTER_KEY};

/// A verifier of the app's tokens, in this process, whose invalidation channel goes through
/// `proxy` while its checks use the app's pool.
async fn verifier(
    app: &TestApp,
    proxy: &Proxy,
    max_age: Duration,
    heartbeat: Duration,
    shutdown: &CancellationToken,
) -> Verifier {
    let keys = KeyStore::load(
        &app.pool.get().await.unwrap(),
        MasterKey::parse(TEST_MASTER_KEY).unwrap(),
    )
    .await
    .unwrap();
    let mut auth = app.config.auth.clone();
    auth.verify_cache_max_age_ms = max_age.as_millis() as u64;
    let verifier = Verifier::new(keys, app.pool.clone(), &auth);
    let mut url = url::Url::parse(&url_for("DATABASE_URL", &app.database_name())).unwrap();
    url.set_port(Some(proxy.addr.port())).unwrap();
    verifier.spawn_invalidation(
        charter_log::pg::PgConnect::plain(url.as_str().parse().unwrap()),
        Heartbeat { every: heartbeat },
        shutdown.clone(),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !verifier.listening() {
        assert!(Instant::now() < deadline, "the verifier never listened");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    verifier
}

/// How long until `verifier` refuses `token` as revoked (at most 10 s).
async fn until_revoked(verifier: &Verifier, token: &str) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        match verifier.verify(token).await {
            Err(TokenError::Revoked) => return Some(started.elapsed()),
            Ok(_) => tokio::time::sleep(Duration::from_millis(25)).await,
            Err(other) => panic!("refused for another reason: {other}"),
        }
    }
    None
}

#[tokio::test]
async fn a_silently_dead_invalidation_channel_does_not_keep_revoked_tokens_alive() {
    let app = spawn_app().await;
    let t = app.create_tenant(&slug("halfopen")).await;
    let tid = t["id"].as_str().unwrap();
    user_with_role(&app, tid, "nina", "viewer").await;
    let pg: SocketAddr = {
        let url = url::Url::parse(&env("DATABASE_URL")).unwrap();
        format!("{}:{}", url.host_str().unwrap(), url.port().unwrap())
            .parse()
            .unwrap()
    };
    let proxy = Proxy::start(pg).await;
    let shutdown = CancellationToken::new();
    let _stop = shutdown.clone().drop_guard();
    // One verifier relies on its heartbeat (entries may live a minute), the other on the age
    // cap (its heartbeat would take an hour to notice).
    let by_heartbeat = verifier(
        &app,
        &proxy,
        Duration::from_secs(60),
        Duration::from_millis(300),
        &shutdown,
    )
    .await;
    let by_age = verifier(
        &app,
        &proxy,
        Duration::from_millis(1_000),
        Duration::from_secs(3_600),
        &shutdown,
    )
    .await;
    let mut access = Vec::new();
    for _ in 0..2 {
        access.push(
            tokens(login(&app, tid, "nina", PASSWORD, None).await)
                .await
                .0,
        );
    }
    for (verifier, token) in [&by_heartbeat, &by_age].into_iter().zip(&access) {
        verifier
            .verify(token)
            .await
            .expect("valid, and now remembered");
    }

    // The channel goes silent, then both tokens are revoked: neither verifier hears of it.
    proxy.freeze();
    for token in &access {
        let r = post_as(&app, token, "/v1/tokens/revoke", json!({"token": token})).await;
        assert_eq!(r.status(), 200);
    }
    let heartbeat = until_revoked(&by_heartbeat, &access[0]).await;
    let age = until_revoked(&by_age, &access[1]).await;
    println!(
        "revoked behind a silent LISTEN: refused after {heartbeat:?} (heartbeat 300 ms) and \
         {age:?} (age cap 1 s)"
    );
    assert!(
        heartbeat.is_some_and(|d| d < Duration::from_secs(3)),
        "the heartbeat never noticed the dead connection: {heartbeat:?}"
    );
    assert!(!by_heartbeat.listening(), "a dead channel is not listening");
    assert!(
        age.is_some_and(|d| d < Duration::from_secs(3)),
        "a remembered token outlived the age cap: {age:?}"
    );
}
