//! Faults injected into a real deployment: Charter runs as a separate process (the `charter`
//! binary, configured through `CHARTER_*` variables like any operator would) and gets killed,
//! stopped, starved of its database or hammered on one aggregate.
//!
//! Each test prints its figures. The suite runs a short form; `ops/soak` runs the same tests
//! longer through the `CHARTER_SOAK_*` knobs read by [`knob`].

mod broker;
mod crash;
mod db_restart;
mod hot;
mod load;
mod postgres;
mod shutdown;

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use charter::config::Config;
use secrecy::ExposeSecret;
use serde_json::Value;

use crate::helpers::{ADMIN, ADMIN_PASSWORD, TEST_MASTER_KEY};

/// A soak knob: `CHARTER_SOAK_<NAME>`, or the short form's `default`.
pub fn knob(name: &str, default: u64) -> u64 {
    let var = format!("CHARTER_SOAK_{name}");
    match std::env::var(&var) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{var} must be a whole number, not {v:?}")),
        Err(_) => default,
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The `charter serve` process under test. Its port stays the same across restarts, so
/// clients keep their address, as behind a load balancer.
pub struct Service {
    pub port: u16,
    /// The operations listener's (`/ready` with its details, `/metrics`).
    pub ops_port: u16,
    vars: Vec<(String, String)>,
    child: Option<Child>,
    pub log: PathBuf,
    pub starts: u32,
}

impl Service {
    /// A service for `config` (database, topics, bootstrap and keys as the in-process tests
    /// use them), with the relay and the projections on.
    pub fn new(config: &Config) -> Service {
        let port = free_port();
        let ops_port = free_port();
        let secret = |s: &secrecy::SecretString| s.expose_secret().to_owned();
        let mut vars = vec![
            ("CHARTER_DATABASE__URL", secret(&config.database.url)),
            ("CHARTER_DATABASE__POOL_SIZE", "40".into()),
            ("CHARTER_HTTP__HOST", "127.0.0.1".into()),
            ("CHARTER_HTTP__PORT", port.to_string()),
            ("CHARTER_HTTP__WORKERS", "2".into()),
            ("CHARTER_OPS__PORT", ops_port.to_string()),
            ("CHARTER_KAFKA__BROKERS", config.kafka.brokers.clone()),
            (
                "CHARTER_KAFKA__EVENTS_TOPIC",
                config.kafka.events_topic.clone(),
            ),
            (
                "CHARTER_KAFKA__POLICY_TOPIC",
                config.kafka.policy_topic.clone(),
            ),
            ("CHARTER_KAFKA__TOPIC_PARTITIONS", "1".into()),
            (
                "CHARTER_KAFKA__MESSAGE_TIMEOUT_MS",
                config.kafka.message_timeout_ms.to_string(),
            ),
            ("CHARTER_RELAY__ENABLED", "true".into()),
            ("CHARTER_RELAY__POLL_INTERVAL_MS", "50".into()),
            ("CHARTER_PROJECTIONS__POLL_INTERVAL_MS", "50".into()),
            (
                "CHARTER_AUTH__PBKDF2_ITERATIONS",
                config.auth.pbkdf2_iterations.to_string(),
            ),
            ("CHARTER_AUTH__ACCESS_TOKEN_TTL_S", "3600".into()),
            ("CHARTER_KEYS__MASTER_KEY", TEST_MASTER_KEY.into()),
            (
                "CHARTER_BOOTSTRAP__TENANT",
                config.bootstrap.tenant.clone().expect("a bootstrap tenant"),
            ),
            ("CHARTER_BOOTSTRAP__USERNAME", ADMIN.into()),
            ("CHARTER_BOOTSTRAP__PASSWORD", ADMIN_PASSWORD.into()),
            ("CHARTER_LOG__LEVEL", "warn,charter=info".into()),
        ];
        if let Some(url) = &config.database.migration_url {
            vars.push(("CHARTER_DATABASE__MIGRATION_URL", secret(url)));
        }
        let log = std::env::temp_dir().join(format!("charter-fault-{port}.log"));
        Service {
            port,
            ops_port,
            vars: vars.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            child: None,
            log,
            starts: 0,
        }
    }

    pub fn ops_address(&self) -> String {
        format!("http://127.0.0.1:{}", self.ops_port)
    }

    pub fn address(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the service is running").id()
    }

    /// Starts the process and returns once `/health` answers (how long that took).
    pub async fn start(&mut self) -> Duration {
        assert!(self.child.is_none(), "already running");
        let started = Instant::now();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_charter"))
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(self.vars.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn charter serve");
        self.child = Some(child);
        self.starts += 1;
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Ok(r) = http.get(format!("{}/health", self.address())).send().await {
                if r.status() == 200 {
                    return started.elapsed();
                }
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("charter exited at start-up ({status}); {}", self.tail());
            }
            assert!(
                Instant::now() < deadline,
                "charter did not serve within 90 s; {}",
                self.tail()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `kill -9`: no shutdown hook runs, open transactions die with their connections.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL");
            child.wait().unwrap();
        }
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Waits up to `within` for the process to exit on its own.
    pub async fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            let child = self.child.as_mut().expect("the service is running");
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The end of the service's log, for failure messages.
    pub fn tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let from = lines.len().saturating_sub(30);
        format!(
            "last lines of {}:\n{}",
            self.log.display(),
            lines[from..].join("\n")
        )
    }

    /// The bootstrap administrator's access token (retrying while the service settles).
    pub async fn admin_token(&self, tenant: &str) -> String {
        let tokens: Value =
            crate::helpers::login_eventually(&self.address(), tenant, ADMIN, ADMIN_PASSWORD).await;
        tokens["access_token"].as_str().unwrap().to_owned()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A client that sends `token` and keeps no idle connections, so a restarted service is
/// reached on a fresh connection.
pub fn client(token: &str, timeout: Duration) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    reqwest::Client::builder()
        .timeout(timeout)
        .default_headers(headers)
        .build()
        .unwrap()
}

/// Percentile (0..=100) of a sample, in its unit.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// What [`verify_nothing_lost`] found.
pub struct Audit {
    pub events: usize,
    pub delivered: usize,
    pub duplicates: usize,
    pub drain: Duration,
}

/// The promises after a fault, checked against the database and the broker:
/// - every acknowledged event is in the log;
/// - the relay empties both outboxes;
/// - the live read models equal a replay of the log (`charter replay`, the auditors' tool);
/// - a fresh consumer group finds every published event id on the events topic (duplicates
///   allowed, none missing).
pub async fn verify_nothing_lost(config: &Config, acknowledged: &[uuid::Uuid]) -> Audit {
    let pool = charter::db::pool(&config.database).unwrap();
    let client = pool.get().await.unwrap();
    let found: i64 = client
        .query_one(
            "SELECT count(*) FROM events WHERE event_id = ANY($1)",
            &[&acknowledged],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        found as usize,
        acknowledged.len(),
        "every acknowledged event is in the log"
    );

    let started = Instant::now();
    let deadline = started + Duration::from_secs(90);
    loop {
        let left: i64 = client
            .query_one(
                "SELECT (SELECT count(*) FROM outbox) + (SELECT count(*) FROM projections.policy_outbox)",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if left == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{left} outbox rows left behind after 90 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let drain = started.elapsed();
    crate::helpers::projected(&pool, Duration::from_secs(60)).await;

    let output = crate::helpers::run_charter_with(config, &["replay", "--json"]).await;
    assert!(
        output.status.success(),
        "the read models differ from a replay of the log:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    let (published, delivered, distinct) = assert_all_on_the_broker(config, &pool).await;
    Audit {
        events: published,
        delivered,
        duplicates: delivered - distinct,
        drain,
    }
}

/// Reads the events topic with a fresh consumer group, as an outside service would, and
/// asserts that every published event of the log is there. Returns how many events the log
/// published, how many messages arrived and how many distinct ids they carried.
pub async fn assert_all_on_the_broker(
    config: &Config,
    pool: &deadpool_postgres::Pool,
) -> (usize, usize, usize) {
    let published = crate::helpers::published_event_ids(pool).await;
    let received = crate::kafka::consume(
        &config.kafka.brokers,
        &config.kafka.events_topic,
        published.len(),
        Duration::from_secs(90),
    )
    .await;
    let ids: std::collections::HashSet<String> = received
        .iter()
        .map(|(_, e)| cloudevents::AttributesReader::id(e).to_owned())
        .collect();
    let missing: Vec<_> = published
        .iter()
        .filter(|id| !ids.contains(&id.to_string()))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} events never reached the broker, e.g. {:?}",
        missing.len(),
        published.len(),
        &missing[..missing.len().min(5)]
    );
    (published.len(), received.len(), ids.len())
}

/// A private tansu on its own port and sqlite file, so this test can stop it freely.
pub struct Broker {
    dir: PathBuf,
    pub port: u16,
    advertised: String,
    child: Option<Child>,
}

impl Broker {
    pub fn start(dir: PathBuf, port: u16) -> Broker {
        Broker::advertising(dir, port, &format!("tcp://127.0.0.1:{port}"))
    }

    /// A broker on `port` that tells clients to connect to `advertised` (a proxy in front).
    pub fn advertising(dir: PathBuf, port: u16, advertised: &str) -> Broker {
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("tcp://127.0.0.1:{port}");
        let log = std::fs::File::create(dir.join("broker.log")).unwrap();
        let child = Command::new(crate::helpers::env("TANSU_BIN"))
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                advertised,
            ])
            .args(["--storage-engine", "sqlite://tansu.db"])
            .current_dir(&dir)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start tansu");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "tansu did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Broker {
            dir,
            port,
            advertised: advertised.to_owned(),
            child: Some(child),
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        *self = Broker::advertising(self.dir.clone(), self.port, &self.advertised.clone());
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}
