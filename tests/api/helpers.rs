//! Spawning an isolated Charter per test: a fresh database, a private topic, port 0.

use std::time::Duration;

use charter::config::Config;
use charter::startup::Application;
use deadpool_postgres::Pool;
use reqwest::{Method, Response};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use tokio_postgres::NoTls;
use uuid::Uuid;

/// Events a tenant's creation appends: `tenant.created` and the three seeded system roles.
pub const TENANT_EVENTS: i64 = 4;

pub fn env(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} must be set; run the suite with ops/test"))
}

/// The bootstrap administrator of every test app.
pub const ADMIN: &str = "admin";
pub const ADMIN_PASSWORD: &str = "correct horse battery staple";
/// A fixed master key: tests need no secrecy, only the real sealing path.
pub const TEST_MASTER_KEY: &str =
    "6c0b3e7a9d21f4c8b5a6e3d2c1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2";

pub struct TestApp {
    pub address: String,
    /// The operations listener (`/ready` with its details, `/metrics`).
    pub ops_address: String,
    /// Sends the platform administrator's bearer token with every request.
    pub http: reqwest::Client,
    /// Sends no credentials.
    pub anonymous: reqwest::Client,
    pub pool: Pool,
    pub config: Config,
    /// The bootstrap tenant (slug `config.bootstrap.tenant`).
    pub root_tenant_id: Uuid,
    /// Validates every event of the database against `schemas/events/` once the last app on
    /// it is dropped.
    _events: crate::event_schemas::CheckOnDrop,
}

/// Creates an empty database, owned by the schema owner role, and returns its name.
pub async fn fresh_database() -> String {
    let owner_url = env("DATABASE_OWNER_URL");
    let (client, connection) = tokio_postgres::connect(&owner_url, NoTls)
        .await
        .expect("connect to DATABASE_OWNER_URL");
    tokio::spawn(connection);
    let name = format!("charter_test_{}", Uuid::now_v7().simple());
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create test database");
    name
}

/// `base` (a connection URL from the environment) pointed at database `name`.
pub fn url_for(base: &str, name: &str) -> String {
    let mut url = url::Url::parse(&env(base)).expect("a connection URL");
    url.set_path(name);
    url.to_string()
}

/// A configuration for database `name`: the service role connects, the owner migrates.
pub fn test_config(name: &str) -> Config {
    let mut config = Config::default();
    config.database.url = SecretString::from(url_for("DATABASE_URL", name));
    config.database.migration_url = Some(SecretString::from(url_for("DATABASE_OWNER_URL", name)));
    config.database.pool_size = 40;
    config.http.port = 0;
    config.http.workers = 2;
    config.ops.port = 0;
    config.kafka.brokers = env("KAFKA_BROKERS");
    let topic = format!("charter.test.{}", Uuid::now_v7().simple());
    config.kafka.events_topic = format!("{topic}.events");
    config.kafka.policy_topic = format!("{topic}.policy");
    config.kafka.topic_partitions = 1;
    config.relay.enabled = false;
    config.relay.poll_interval_ms = 50;
    config.projections.poll_interval_ms = 50;
    // Production strength is 600,000; tests only need the real code path.
    config.auth.pbkdf2_iterations = std::num::NonZeroU32::new(1_000).unwrap();
    // Long enough for the longest test; expiry is tested with tokens of its own.
    config.auth.access_token_ttl_s = 3_600;
    // Every test talks from 127.0.0.1 to an app (and limiters) of its own: the per-address
    // limit is raised out of the way, the per-user and per-client ones keep their defaults.
    // `rate_limit.rs` sets small limits of its own.
    config.rate_limit.per_ip = charter::config::LimitConfig::new(100_000, 10_000);
    config.keys.master_key = Some(SecretString::from(TEST_MASTER_KEY));
    config.bootstrap.tenant = Some(format!(
        "root-{}",
        &Uuid::now_v7().simple().to_string()[20..]
    ));
    config.bootstrap.username = Some(ADMIN.into());
    config.bootstrap.password = Some(SecretString::from(ADMIN_PASSWORD));
    config
}

fn client(token: Option<&str>) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(token) = token {
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
    }
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        // Below the server's keep-alive (actix: 5 s), so the pool never writes a request into
        // a connection the server is closing (hyper's IncompleteMessage race, hyper#2136).
        .pool_idle_timeout(Duration::from_secs(2))
        .default_headers(headers)
        .build()
        .unwrap()
}

/// Logs in, retrying for up to 10 s while the read models catch up with a new user or grant.
pub async fn login_eventually(
    address: &str,
    tenant: &str,
    username: &str,
    password: &str,
) -> Value {
    let http = client(None);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let r = http
            .post(format!("{address}/v1/auth/login"))
            .json(&json!({"tenant": tenant, "username": username, "password": password}))
            .send()
            .await
            .expect("login request");
        let status = r.status();
        let retry_after = r
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        let body: Value = r.json().await.unwrap();
        if status == 200 {
            return body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "login of {username} kept failing: {status} {body}"
        );
        // Retrying is what throttles this user: come back when the limit says.
        let wait = match (status.as_u16(), retry_after) {
            (429, Some(seconds)) => Duration::from_secs(seconds),
            _ => Duration::from_millis(50),
        };
        tokio::time::sleep(wait).await;
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(customize: impl FnOnce(&mut Config)) -> TestApp {
    let database = fresh_database().await;
    let mut config = test_config(&database);
    customize(&mut config);
    spawn_with_config(config).await
}

pub async fn spawn_with_config(config: Config) -> TestApp {
    use secrecy::ExposeSecret;
    let events = crate::event_schemas::CheckOnDrop::new(config.database.url.expose_secret());
    if std::env::var("TEST_LOG").is_ok() {
        charter::telemetry::init_tracing(&charter::config::LogConfig {
            format: "pretty".into(),
            level: "info,charter=debug".into(),
        });
    }
    let app = Application::build(config.clone()).await.expect("build app");
    let address = format!("http://127.0.0.1:{}", app.port());
    let ops_address = format!("http://127.0.0.1:{}", app.ops_port().unwrap_or(0));
    let pool = app.pool();
    tokio::spawn(app.run_until_stopped());
    let root = config.bootstrap.tenant.clone().expect("a bootstrap tenant");
    // Tokens rest on the read models: without projections nobody can log in.
    // (Application::build waits until the bootstrap is projected before it serves.)
    let admin_token = if config.projections.enabled {
        let tokens = login_eventually(&address, &root, ADMIN, ADMIN_PASSWORD).await;
        tokens["access_token"].as_str().unwrap().to_owned()
    } else {
        String::new()
    };
    let root_tenant_id: Uuid = {
        let client = pool.get().await.unwrap();
        let stream: String = client
            .query_one(
                "SELECT stream_id FROM unique_claims WHERE claim_scope = 'tenant.slug' AND claim_value = $1",
                &[&root],
            )
            .await
            .unwrap()
            .get(0);
        stream.trim_start_matches("tenant-").parse().unwrap()
    };
    TestApp {
        address,
        ops_address,
        http: client(Some(admin_token.as_str()).filter(|t| !t.is_empty())),
        anonymous: client(None),
        pool,
        config,
        root_tenant_id,
        _events: events,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// `GET path` on the operations listener.
    pub async fn ops(&self, path: &str) -> Response {
        self.anonymous
            .get(format!("{}{path}", self.ops_address))
            .send()
            .await
            .unwrap()
    }

    pub async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Response {
        let mut req = self.http.request(method, self.url(path));
        if let Some(body) = body {
            req = req.json(&body);
        }
        req.send().await.expect("request")
    }

    pub async fn post(&self, path: &str, body: Value) -> Response {
        self.send(Method::POST, path, Some(body)).await
    }

    pub async fn get(&self, path: &str) -> Response {
        self.send(Method::GET, path, None).await
    }

    /// Creates a tenant and returns its JSON (`data`).
    pub async fn create_tenant(&self, slug: &str) -> Value {
        let r = self
            .post(
                "/v1/tenants",
                json!({"name": format!("Tenant {slug}"), "slug": slug}),
            )
            .await;
        assert_eq!(r.status(), 201, "create tenant {slug}");
        r.json::<Value>().await.unwrap()["data"].clone()
    }

    pub async fn create_workspace(&self, tenant_id: &str, name: &str) -> Value {
        let r = self
            .post(
                &format!("/v1/tenants/{tenant_id}/workspaces"),
                json!({"name": name}),
            )
            .await;
        assert_eq!(r.status(), 201, "create workspace {name}");
        r.json::<Value>().await.unwrap()["data"].clone()
    }

    /// Events of the tenants a test created (the platform's own, such as Charter registering
    /// its permissions, and the bootstrap tenant's, such as the administrator's logins, are
    /// not counted).
    pub async fn count_events(&self) -> i64 {
        let client = self.pool.get().await.unwrap();
        client
            .query_one(
                "SELECT count(*) FROM events WHERE tenant_id <> $1 AND tenant_id <> $2",
                &[&Uuid::nil(), &self.root_tenant_id],
            )
            .await
            .unwrap()
            .get(0)
    }

    /// The id of every published event (internal ones, such as password hashes, never reach
    /// Kafka), in global order.
    pub async fn event_ids(&self) -> Vec<Uuid> {
        published_event_ids(&self.pool).await
    }
}

/// A unique slug for a test.
pub fn slug(prefix: &str) -> String {
    format!("{prefix}-{}", &Uuid::now_v7().simple().to_string()[20..])
}

/// Asserts a problem+json response and returns its body.
pub async fn assert_problem(response: Response, status: u16, slug: &str) -> Value {
    assert_eq!(response.status(), status, "status for {slug}");
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    assert_eq!(content_type, "application/problem+json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["type"],
        format!("https://charter.dev/problems/{slug}"),
        "problem {body}"
    );
    assert_eq!(body["status"], status);
    assert!(body["title"].is_string() && body["detail"].is_string());
    body
}

/// A superuser connection to the app's own database (what a tamperer would use).
pub async fn superuser(app: &TestApp) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(
        &url_for("DATABASE_ADMIN_URL", &app.database_name()),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    client
}

/// Runs the `charter` binary against the app's database, as the service role with the
/// schema owner for the tools that need it. The app keeps running meanwhile (the binary may
/// wait for its projection runners).
pub async fn run_charter(app: &TestApp, args: &[&str]) -> std::process::Output {
    run_charter_with(&app.config, args).await
}

/// Runs the `charter` binary with `config`'s database connections (the migration URL, or
/// the service's when there is none, as the schema owner's), on a blocking thread.
pub async fn run_charter_with(config: &Config, args: &[&str]) -> std::process::Output {
    let database = &config.database;
    let owner = database.migration_url.as_ref().unwrap_or(&database.url);
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_charter"));
    command
        .args(args)
        .env("CHARTER_DATABASE__URL", database.url.expose_secret())
        .env("CHARTER_DATABASE__MIGRATION_URL", owner.expose_secret())
        .env("CHARTER_LOG__LEVEL", "warn");
    tokio::task::spawn_blocking(move || command.output().expect("run charter"))
        .await
        .unwrap()
}

impl TestApp {
    /// The name of this app's own database.
    pub fn database_name(&self) -> String {
        let url = url::Url::parse(self.config.database.url.expose_secret()).unwrap();
        url.path().trim_start_matches('/').to_owned()
    }

    /// Waits until every live projection has applied the whole log, up to its newest event
    /// (not the horizon's head, which another test's open transaction can hold back).
    pub async fn projected(&self) {
        projected(&self.pool, Duration::from_secs(30)).await;
    }
}

/// Waits up to `within` until every live projection of `pool`'s database has applied its
/// newest event.
pub async fn projected(pool: &Pool, within: Duration) {
    let client = pool.get().await.unwrap();
    let newest = client
        .query_one(
            "SELECT COALESCE(max(tx_id::text::bigint), 0), COALESCE(max(position), 0) FROM events \
             WHERE tx_id = (SELECT max(tx_id) FROM events)",
            &[],
        )
        .await
        .unwrap();
    let head = charter_log::LogPosition {
        tx_id: newest.get(0),
        position: newest.get(1),
    };
    let reached = charter_log::checkpoint::wait_for(pool, head, within)
        .await
        .unwrap();
    assert!(
        reached,
        "the live projections did not reach {head} within {within:?}"
    );
}

/// The id of every published event of `pool`'s database (internal ones, such as password
/// hashes, never reach Kafka), in global order.
pub async fn published_event_ids(pool: &Pool) -> Vec<Uuid> {
    let internal: Vec<&str> = charter_events::schemas::all_schemas()
        .into_iter()
        .filter(|s| !s.published)
        .map(|s| s.event_type)
        .collect();
    let client = pool.get().await.unwrap();
    client
        .query(
            "SELECT event_id FROM events WHERE event_type <> ALL($1) ORDER BY tx_id, position",
            &[&internal],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// The sum of the samples of counter `name` on `/metrics` whose labels contain every one of
/// `labels` (`key="value"`). The recorder is shared by every app of the test process, so
/// callers compare differences.
pub async fn metric_sum(app: &TestApp, name: &str, labels: &[&str]) -> f64 {
    let text = app.ops("/metrics").await.text().await.unwrap();
    let prefix = format!("{name}{{");
    text.lines()
        .filter(|l| l.starts_with(&prefix))
        .filter(|l| labels.iter().all(|label| l.contains(label)))
        .map(|l| {
            l.rsplit_once(' ')
                .and_then(|(_, n)| n.parse::<f64>().ok())
                .unwrap_or_else(|| panic!("a counter line: {l}"))
        })
        .sum()
}
