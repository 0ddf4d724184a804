//! The consumer SDK (`clients/rust`) against the real Charter, PostgreSQL and tansu: the
//! example "connections" service runs as its own process (`CHARTER_EXAMPLE_CONNECTIONS`,
//! built by `ops/test`), registers its permissions with a service account, and enforces
//! tokens locally.
//!
//! The example knows Charter only through its issuer URL, which points at a [`Tap`]: a TCP
//! relay to Charter that counts every byte the example sends. "Without calling Charter" is
//! then a number that does not move.

use std::collections::HashSet;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use charter::config::Config;
use futures::StreamExt;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use uuid::Uuid;

use crate::auth::PASSWORD;
use crate::entitlements::id_of;
use crate::faults::{free_port, Broker};
use crate::helpers::{
    assert_problem, env, login_eventually, slug, spawn_app_with, TestApp, ADMIN, ADMIN_PASSWORD,
};
use crate::tokens::claims_of;

/// A TCP relay in front of Charter that counts what its clients send.
struct Tap {
    addr: std::net::SocketAddr,
    sent: Arc<AtomicU64>,
}

impl Tap {
    async fn start(upstream: std::net::SocketAddr) -> Tap {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let sent = Arc::new(AtomicU64::new(0));
        let counter = sent.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(upstream).await else {
                    continue;
                };
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let counter = counter.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 16 * 1024];
                    while let Ok(n @ 1..) = cr.read(&mut buf).await {
                        counter.fetch_add(n as u64, Ordering::SeqCst);
                        if sw.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                });
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut sr, &mut cw).await;
                });
            }
        });
        Tap { addr, sent }
    }

    fn sent(&self) -> u64 {
        self.sent.load(Ordering::SeqCst)
    }
}

/// Charter behind a tap, with its relay on, and a service account allowed to register
/// permissions.
struct World {
    app: TestApp,
    tap: Tap,
    client_id: String,
    client_secret: String,
}

async fn world(customize: impl FnOnce(&mut Config)) -> World {
    let port = free_port();
    let tap = Tap::start(([127, 0, 0, 1], port).into()).await;
    let issuer = format!("http://{}", tap.addr);
    let app = spawn_app_with(|c| {
        c.http.port = port;
        c.auth.issuer = issuer;
        c.relay.enabled = true;
        customize(c);
    })
    .await;
    let root = format!("/v1/tenants/{}", app.root_tenant_id);
    let r = app
        .post(
            &format!("{root}/service-accounts"),
            json!({"name": "connections"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let sa: Value = r.json().await.unwrap();
    let r = app
        .send(
            Method::PUT,
            &format!(
                "{root}/service-accounts/{}/platform-access",
                sa["data"]["id"].as_str().unwrap()
            ),
            Some(json!({"permissions": ["iam.permissions.write"]})),
        )
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    World {
        app,
        tap,
        client_id: sa["data"]["client_id"].as_str().unwrap().to_owned(),
        client_secret: sa["data"]["client_secret"].as_str().unwrap().to_owned(),
    }
}

/// The example service, as a separate process.
struct Example {
    /// Killed when dropped.
    _child: tokio::process::Child,
    url: String,
    http: reqwest::Client,
}

impl World {
    async fn example(&self, vars: &[(&str, &str)]) -> Example {
        let mut command = tokio::process::Command::new(env("CHARTER_EXAMPLE_CONNECTIONS"));
        command
            .env("CHARTER_ISSUER", format!("http://{}", self.tap.addr))
            .env("KAFKA_BROKERS", &self.app.config.kafka.brokers)
            .env("CHARTER_POLICY_TOPIC", &self.app.config.kafka.policy_topic)
            .env("CONNECTIONS_CLIENT_ID", &self.client_id)
            .env("CONNECTIONS_CLIENT_SECRET", &self.client_secret)
            .env("CONNECTIONS_LISTEN", "127.0.0.1:0")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        for (k, v) in vars {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("start the example");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let url = tokio::time::timeout(Duration::from_secs(90), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                eprintln!("example: {line}");
                if let Some(url) = line.strip_prefix("listening on ") {
                    return url.to_owned();
                }
            }
            panic!("the example exited before it served");
        })
        .await
        .expect("the example serves within 90 s");
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                eprintln!("example: {line}");
            }
        });
        Example {
            _child: child,
            url,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
        }
    }
}

impl Example {
    async fn call(
        &self,
        method: Method,
        tenant: &str,
        ws: &str,
        token: Option<&str>,
    ) -> reqwest::Response {
        let mut req = self.http.request(
            method.clone(),
            format!("{}/tenants/{tenant}/workspaces/{ws}/connections", self.url),
        );
        if method == Method::POST {
            req = req.json(&json!({"name": "warehouse"}));
        }
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        req.send().await.expect("the example answers")
    }

    /// `GET` the member's own connections with `token`.
    async fn get_as(&self, m: &Member, token: &str) -> reqwest::Response {
        self.call(Method::GET, &m.tenant, &m.workspace, Some(token))
            .await
    }

    async fn health(&self) -> Value {
        self.http
            .get(format!("{}/health", self.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn jwks_fetches(&self) -> u64 {
        self.health().await["jwks_fetches"].as_u64().unwrap()
    }
}

/// A tenant with a workspace and a user holding `permissions` there through a role.
struct Member {
    tenant: String,
    tenant_slug: String,
    workspace: String,
    role: String,
    token: String,
}

async fn member(app: &TestApp, username: &str, permissions: &[&str]) -> Member {
    let tenant_slug = slug("sdk");
    let tenant = app.create_tenant(&tenant_slug).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let workspace = app.create_workspace(&tenant, "main").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let base = format!("/v1/tenants/{tenant}");
    let role = id_of(
        app.post(
            &format!("{base}/roles"),
            json!({"name": format!("{username}-role"), "permissions": permissions}),
        )
        .await,
    )
    .await;
    let user = id_of(
        app.post(
            &format!("{base}/users"),
            json!({"username": username, "email": format!("{username}@example.com"), "password": PASSWORD}),
        )
        .await,
    )
    .await;
    let r = app
        .post(
            &format!("{base}/assignments"),
            json!({"role_id": role, "user_id": user, "workspace_id": workspace}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let token = login(app, &tenant_slug, username, &workspace, permissions).await;
    Member {
        tenant,
        tenant_slug,
        workspace,
        role,
        token,
    }
}

/// A workspace-scoped access token holding every one of `permissions` (the read models may
/// lag the commands that granted them by a moment).
async fn login(
    app: &TestApp,
    tenant: &str,
    username: &str,
    workspace: &str,
    permissions: &[&str],
) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = app
            .anonymous
            .post(app.url("/v1/auth/login"))
            .json(&json!({"tenant": tenant, "username": username, "password": PASSWORD, "workspace_id": workspace}))
            .send()
            .await
            .unwrap();
        if r.status() == 200 {
            let token = r.json::<Value>().await.unwrap()["access_token"]
                .as_str()
                .unwrap()
                .to_owned();
            let held: HashSet<String> = claims_of(&token)["permissions"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|p| p.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            if permissions.iter().all(|p| held.contains(*p)) {
                return token;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{username} never got {permissions:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An ES256 token signed with a key Charter never had, under `kid`.
fn forged(claims: &Value, kid: &str) -> String {
    use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_ec_der(pkcs8.as_ref())).unwrap()
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

/// Waits until the example answers `token` with `status`; returns how long that took.
async fn until_status(
    example: &Example,
    m: &Member,
    token: &str,
    status: u16,
    within: Duration,
) -> Duration {
    let started = Instant::now();
    loop {
        let r = example.get_as(m, token).await;
        if r.status() == status {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "the example kept answering {} instead of {status}: {}",
            r.status(),
            r.text().await.unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_registers_its_permissions_and_enforces_tokens_locally() {
    let w = world(|_| {}).await;
    let example = w.example(&[]).await;
    let app = &w.app;

    // Registered at start-up, with the service account's client credentials.
    let registry: Value = app
        .get("/v1/permissions?service=connections")
        .await
        .json()
        .await
        .unwrap();
    let names: HashSet<&str> = registry["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        HashSet::from(["connections.read", "connections.create"])
    );

    let alice = member(app, "alice", &["connections.read"]).await;
    let bob = member(app, "bob", &["connections.read", "connections.create"]).await;
    let (t, ws) = (alice.tenant.as_str(), alice.workspace.as_str());

    // A token holding the permission is accepted; one without it is 403.
    let r = example.call(Method::GET, t, ws, Some(&alice.token)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"items": []}));
    assert_problem(
        example.call(Method::POST, t, ws, Some(&alice.token)).await,
        403,
        "forbidden",
    )
    .await;
    let r = example
        .call(Method::POST, &bob.tenant, &bob.workspace, Some(&bob.token))
        .await;
    assert_eq!(r.status(), 201);

    // No token, an altered one, a forged one (a key Charter never had, under Charter's kid).
    let r = example.call(Method::GET, t, ws, None).await;
    assert!(r.headers().contains_key("www-authenticate"));
    assert_problem(r, 401, "unauthorized").await;
    let mut claims = claims_of(&alice.token);
    let mut parts: Vec<String> = alice.token.split('.').map(str::to_owned).collect();
    claims["permissions"] = json!(["connections.read", "connections.create"]);
    parts[1] = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        serde_json::to_vec(&claims).unwrap(),
    );
    let altered = parts.join(".");
    assert_problem(
        example.call(Method::POST, t, ws, Some(&altered)).await,
        401,
        "invalid-token",
    )
    .await;
    let forgery = forged(&claims, &kid_of(&alice.token));
    assert_problem(
        example.call(Method::POST, t, ws, Some(&forgery)).await,
        401,
        "invalid-token",
    )
    .await;
    // Another tenant's token, holding the permission in its own workspace, is refused in
    // alice's; so is alice's in another workspace of her own tenant.
    assert_problem(
        example.call(Method::GET, t, ws, Some(&bob.token)).await,
        403,
        "forbidden",
    )
    .await;
    let other_ws = app.create_workspace(t, "second").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_problem(
        example
            .call(Method::GET, t, &other_ws, Some(&alice.token))
            .await,
        403,
        "forbidden",
    )
    .await;
    // Charter's platform administrator, whose token is of the root tenant, is refused in
    // alice's (that platform grants are not honoured at all is guard.rs's unit test).
    let root = app.config.bootstrap.tenant.clone().unwrap();
    let admin = login_eventually(&app.address, &root, ADMIN, ADMIN_PASSWORD).await;
    let admin = admin["access_token"].as_str().unwrap();
    assert_problem(
        example.call(Method::GET, t, ws, Some(admin)).await,
        403,
        "forbidden",
    )
    .await;

    // A role change in Charter: the old token is stale at the example, which learns it from
    // the policy topic, not from Charter.
    let sent = w.tap.sent();
    let r = app
        .post(
            &format!("/v1/tenants/{t}/roles/{}/permissions", alice.role),
            json!({"permissions": ["connections.create"]}),
        )
        .await;
    assert!(r.status().is_success(), "{}", r.status());
    let committed = Instant::now();
    let delay = until_status(&example, &alice, &alice.token, 401, Duration::from_secs(10)).await;
    let r = example.call(Method::GET, t, ws, Some(&alice.token)).await;
    let problem = assert_problem(r, 401, "invalid-token").await;
    assert!(
        problem["detail"].as_str().unwrap().contains("stale"),
        "{problem}"
    );
    eprintln!(
        "sdk: role change committed -> first stale rejection by the example after {delay:?} \
         ({:?} since the command's response)",
        committed.elapsed()
    );
    assert_eq!(
        w.tap.sent(),
        sent,
        "the example called Charter to judge a token"
    );
    // A token minted now holds the new permission and is accepted.
    let fresh = login(
        app,
        &alice.tenant_slug,
        "alice",
        ws,
        &["connections.create"],
    )
    .await;
    let r = example.call(Method::POST, t, ws, Some(&fresh)).await;
    assert_eq!(r.status(), 201);
    // Bob's scope did not move: his token stays good.
    let r = example
        .call(Method::GET, &bob.tenant, &bob.workspace, Some(&bob.token))
        .await;
    assert_eq!(r.status(), 200);
    drop(example);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_policy_cache_rides_out_a_broker_outage_within_its_budget() {
    let dir = std::env::temp_dir().join(format!("charter-sdk-broker-{}", Uuid::now_v7()));
    let mut broker = Broker::start(dir.clone(), free_port());
    let brokers = format!("127.0.0.1:{}", broker.port);
    let w = world(|c| c.kafka.brokers = brokers).await;
    let budget = "4000";
    let closed = w
        .example(&[
            ("CONNECTIONS_STALENESS_BUDGET_MS", budget),
            ("CONNECTIONS_ON_STALE", "fail-closed"),
        ])
        .await;
    let open = w
        .example(&[
            ("CONNECTIONS_STALENESS_BUDGET_MS", budget),
            ("CONNECTIONS_ON_STALE", "serve-stale"),
        ])
        .await;
    let alice = member(&w.app, "alice", &["connections.read"]).await;
    for e in [&closed, &open] {
        until_status(e, &alice, &alice.token, 200, Duration::from_secs(10)).await;
    }

    broker.stop();
    let stopped = Instant::now();
    // Within the budget both keep serving what they have.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for e in [&closed, &open] {
        let r = e.get_as(&alice, &alice.token).await;
        assert_eq!(r.status(), 200, "within the budget");
    }
    // Past it, the fail-closed one refuses, the other goes on.
    let refused_after = stopped.elapsed()
        + until_status(&closed, &alice, &alice.token, 503, Duration::from_secs(15)).await;
    let r = closed.get_as(&alice, &alice.token).await;
    assert_problem(r, 503, "policy-unavailable").await;
    let health = closed.health().await;
    assert_eq!(health["policy"]["serving"], false, "{health}");
    assert!(
        health["policy"]["staleness_ms"].as_u64().unwrap() >= 4000,
        "{health}"
    );
    let r = open.get_as(&alice, &alice.token).await;
    assert_eq!(r.status(), 200, "serve-stale goes on past the budget");
    assert!(
        refused_after >= Duration::from_millis(3500),
        "refused after {refused_after:?}, before its 4 s budget"
    );

    // A role change while the broker is away reaches the caches once it is back.
    let r = w
        .app
        .post(
            &format!(
                "/v1/tenants/{}/roles/{}/permissions",
                alice.tenant, alice.role
            ),
            json!({"permissions": ["connections.create"]}),
        )
        .await;
    assert!(r.status().is_success());
    let r = open.get_as(&alice, &alice.token).await;
    assert_eq!(r.status(), 200, "the stale cache cannot know yet");
    broker.restart();
    let restarted = Instant::now();
    for e in [&closed, &open] {
        until_status(e, &alice, &alice.token, 401, Duration::from_secs(60)).await;
    }
    let health = closed.health().await;
    assert_eq!(health["policy"]["serving"], true, "{health}");
    eprintln!(
        "sdk: broker down {:?}; fail-closed refused after {refused_after:?} (budget {budget} ms); \
         after the restart both caches saw the change within {:?}",
        restarted.duration_since(stopped),
        restarted.elapsed()
    );
    drop((closed, open));
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_kid_floods_are_rate_limited_and_a_rotation_is_still_picked_up() {
    let w = world(|_| {}).await;
    let example = w.example(&[]).await;
    let alice = member(&w.app, "alice", &["connections.read"]).await;
    until_status(&example, &alice, &alice.token, 200, Duration::from_secs(10)).await;
    let before = example.jwks_fetches().await;

    // 300 tokens with kids Charter never published, 32 at a time.
    let claims = claims_of(&alice.token);
    let forgeries: Vec<String> = (0..300)
        .map(|_| forged(&claims, &Uuid::new_v4().to_string()))
        .collect();
    let started = Instant::now();
    let statuses: Vec<StatusCode> = futures::stream::iter(forgeries.iter())
        .map(|t| example.call(Method::GET, &alice.tenant, &alice.workspace, Some(t)))
        .buffer_unordered(32)
        .map(|r| r.status())
        .collect()
        .await;
    assert!(statuses.iter().all(|s| *s == 401), "{statuses:?}");
    let fetched = example.jwks_fetches().await - before;
    eprintln!(
        "sdk: 300 unknown kids in {:?} made the example fetch the JWKS {fetched} time(s)",
        started.elapsed()
    );
    assert!(fetched <= 1, "{fetched} JWKS fetches for one flood");

    // A real rotation: the new kid is fetched once the rate limit allows.
    let r = w.app.post("/v1/keys/rotate", json!({})).await;
    assert!(r.status().is_success(), "{}", r.status());
    let deadline = Instant::now() + Duration::from_secs(15);
    let rotated = loop {
        let t = login(
            &w.app,
            &alice.tenant_slug,
            "alice",
            &alice.workspace,
            &["connections.read"],
        )
        .await;
        if kid_of(&t) != kid_of(&alice.token) {
            break t;
        }
        assert!(Instant::now() < deadline, "the key never rotated");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let took = until_status(&example, &alice, &rotated, 200, Duration::from_secs(15)).await;
    let fetches = example.jwks_fetches().await - before;
    eprintln!("sdk: a token under a rotated key was accepted after {took:?} ({fetches} JWKS fetches since the flood began)");
    assert!(
        (fetched + 1..=fetched + 2).contains(&fetches),
        "the rotation took {fetches} fetches"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_consumer_decodes_dedupes_and_redelivers_what_failed() {
    use charter_client::events::{ConsumerError, Delivery, EventConsumer, EventConsumerConfig};
    use charter_events::tenant::TenantEvent;
    use charter_events::IamEvent;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::producer::{FutureProducer, FutureRecord};
    use rdkafka::{ClientConfig, Message};

    let app = spawn_app_with(|c| c.relay.enabled = true).await;
    let brokers = app.config.kafka.brokers.clone();
    let topic = app.config.kafka.events_topic.clone();
    let tenant_slug = slug("consumer");
    let tenant = app.create_tenant(&tenant_slug).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let tenant_id: Uuid = tenant.parse().unwrap();

    let config = |group: &str| {
        let mut c = EventConsumerConfig::new(brokers.clone(), group);
        c.topic = topic.clone();
        c
    };
    // Reads until the tenant's creation has been handled; returns the ids handled.
    async fn read_until_created(
        consumer: &mut EventConsumer,
        tenant_id: Uuid,
        seen: &mut Vec<Delivery>,
    ) {
        let run = consumer.run(|d: Delivery| {
            let done = matches!(&d.event, IamEvent::Tenant(TenantEvent::Created(c)) if c.tenant_id == tenant_id);
            seen.push(d);
            async move {
                if done {
                    Err::<(), _>("enough")
                } else {
                    Ok(())
                }
            }
        });
        match tokio::time::timeout(Duration::from_secs(60), run).await {
            Ok(Err(ConsumerError::Handler { .. })) => {}
            other => panic!(
                "the consumer stopped otherwise: {:?}",
                other.map(|r| r.err().map(|e| e.to_string()))
            ),
        }
    }

    // A group reads the events decoded, with their envelope.
    let group = format!("sdk-consumer-{}", Uuid::now_v7());
    let mut first = EventConsumer::new(config(&group)).unwrap();
    let mut seen = Vec::new();
    read_until_created(&mut first, tenant_id, &mut seen).await;
    let created = seen.last().unwrap().clone();
    assert_eq!(created.tenant_id, tenant_id);
    assert_eq!(created.stream_id, format!("tenant-{tenant_id}"));
    assert_eq!(created.stream_version, 1);
    let ids: HashSet<Uuid> = seen.iter().map(|d| d.id).collect();
    assert_eq!(ids.len(), seen.len(), "no event handled twice");
    // Running the same consumer again retries the event that failed, first.
    let mut retried = Vec::new();
    read_until_created(&mut first, tenant_id, &mut retried).await;
    assert_eq!(
        retried.iter().map(|d| d.id).collect::<Vec<_>>(),
        vec![created.id],
        "the retry starts at the failed event"
    );
    drop(first);

    // The handler refused the creation: it was not committed, so the group gets it again.
    let mut again = EventConsumer::new(config(&group)).unwrap();
    let mut redelivered = Vec::new();
    read_until_created(&mut again, tenant_id, &mut redelivered).await;
    assert_eq!(
        redelivered.first().map(|d| d.id),
        Some(created.id),
        "resumes at the refused event"
    );

    // A duplicate on the topic (a relay that published twice) is skipped within the window.
    let raw: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", format!("sdk-raw-{}", Uuid::now_v7()))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    raw.subscribe(&[topic.as_str()]).unwrap();
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < deadline, "the creation never came by");
        let Some(Ok(m)) = raw.poll(Duration::from_millis(200)) else {
            continue;
        };
        let is_created = m.headers().is_some_and(|h| {
            use rdkafka::message::Headers;
            h.iter()
                .any(|h| h.key == "ce_id" && h.value == Some(created.id.to_string().as_bytes()))
        });
        if is_created {
            let mut record = FutureRecord::to(&topic)
                .payload(m.payload().unwrap())
                .key(m.key().unwrap());
            if let Some(h) = m.headers() {
                record = record.headers(h.detach());
            }
            producer
                .send(record, Duration::from_secs(10))
                .await
                .unwrap();
            break;
        }
    }
    // A marker after the duplicate: a second tenant.
    let marker = app.create_tenant(&slug("marker")).await["id"]
        .as_str()
        .unwrap()
        .parse::<Uuid>()
        .unwrap();
    let mut last = EventConsumer::new(config(&format!("sdk-dedupe-{}", Uuid::now_v7()))).unwrap();
    let mut all = Vec::new();
    read_until_created(&mut last, marker, &mut all).await;
    let times = all.iter().filter(|d| d.id == created.id).count();
    assert_eq!(times, 1, "the duplicate reached the handler");
}
