//! A broker outage: commands keep succeeding into the outbox, `/ready` and `/metrics` show
//! the backlog, and after the broker returns every event arrives, in order.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{env, fresh_database, slug, spawn_with_config, test_config};
use crate::kafka::{consume, dedup, wait_for_empty_outbox};

/// A private tansu on its own port and sqlite file, so this test can stop it freely.
struct Broker {
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl Broker {
    fn start(dir: PathBuf, port: u16) -> Broker {
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("tcp://127.0.0.1:{port}");
        let log = std::fs::File::create(dir.join("broker.log")).unwrap();
        let child = Command::new(env("TANSU_BIN"))
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
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
            child: Some(child),
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn restart(&mut self) {
        self.stop();
        *self = Broker::start(self.dir.clone(), self.port);
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_succeed_while_the_broker_is_down_and_the_backlog_drains_in_order() {
    let dir =
        std::env::temp_dir().join(format!("charter-outage-{}", uuid::Uuid::now_v7().simple()));
    let mut broker = Broker::start(dir.clone(), free_port());
    let database = fresh_database().await;
    let mut config = test_config(&database);
    config.kafka.brokers = format!("127.0.0.1:{}", broker.port);
    config.kafka.message_timeout_ms = 3_000;
    config.relay.enabled = true;
    let app = spawn_with_config(config).await;

    let t = app.create_tenant(&slug("outage")).await;
    let t = t["id"].as_str().unwrap().to_owned();
    wait_for_empty_outbox(&app, Duration::from_secs(30)).await;

    broker.stop();
    for i in 0..20 {
        let r = app
            .post(
                &format!("/v1/tenants/{t}/workspaces"),
                json!({"name": format!("ws-{i}")}),
            )
            .await;
        assert_eq!(r.status(), 201, "commands succeed while the broker is down");
    }
    // The relay notices: /ready stays 200 but reports degraded, /metrics shows the backlog.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = app.get("/ready").await;
        assert_eq!(
            r.status(),
            200,
            "a broker outage does not unready the service"
        );
        let ready: Value = r.json().await.unwrap();
        if ready["status"] == "degraded" {
            assert!(ready["relay"]["backlog"].as_i64().unwrap() >= 20, "{ready}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "relay never reported degraded: {ready}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let metrics = app.get("/metrics").await.text().await.unwrap();
    let backlog = metrics
        .lines()
        .find_map(|l| l.strip_prefix("charter_outbox_backlog "))
        .expect("backlog gauge");
    assert!(backlog.trim().parse::<f64>().unwrap() >= 20.0, "{backlog}");

    let stopped_at = Instant::now();
    broker.restart();
    wait_for_empty_outbox(&app, Duration::from_secs(60)).await;
    eprintln!(
        "backlog drained {:?} after the broker restarted",
        stopped_at.elapsed()
    );

    let committed: Vec<String> = app
        .event_ids()
        .await
        .iter()
        .map(|id| id.to_string())
        .collect();
    let received = consume(
        &app.config.kafka.brokers,
        &app.config.kafka.events_topic,
        committed.len(),
        Duration::from_secs(30),
    )
    .await;
    let order = dedup(
        received
            .iter()
            .map(|(_, e)| cloudevents::AttributesReader::id(e).to_owned())
            .collect(),
    );
    assert_eq!(order, committed, "every event arrived, in commit order");
    let _ = std::fs::remove_dir_all(dir);
}
