//! PostgreSQL restarted under load: the service fails fast while it is gone and recovers by
//! itself when it returns.

use std::time::{Duration, Instant};

use secrecy::SecretString;
use serde_json::{json, Value};

use super::load::{self, Load, Target};
use super::postgres::PrivatePostgres;
use super::{knob, percentile, verify_nothing_lost, Service};
use crate::helpers::{slug, test_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_restart_fails_fast_and_recovers_without_a_restart() {
    let down_for = Duration::from_secs(knob("DB_DOWN_S", 4));
    let mut pg = PrivatePostgres::create().await;
    let mut config = test_config("charter");
    config.database.url = SecretString::from(pg.url("charter", "charter"));
    config.database.migration_url = Some(SecretString::from(pg.url("charter_owner", "charter")));
    let mut service = Service::new(&config);
    service.start().await;
    let token = service
        .admin_token(config.bootstrap.tenant.as_ref().unwrap())
        .await;
    let target = Target::create(&service.address(), &token, &slug("pgrestart")).await;
    let http = super::client(&token, Duration::from_secs(30));
    let address = service.address();
    let ops = service.ops_address();
    let command = |name: String| {
        http.post(format!(
            "{address}/v1/tenants/{}/workspaces",
            target.tenant_id
        ))
        .json(&json!({ "name": name }))
        .send()
    };

    let started = Instant::now();
    let load = Load::start(&target, knob("DB_CLIENTS", 16) as usize);
    tokio::time::sleep(Duration::from_secs(2)).await;
    pg.stop();
    let stopped = Instant::now();

    // While it is down: liveness holds, readiness does not, commands fail fast with a 503.
    let mut probes = 0;
    let mut command_ms = Vec::new();
    while stopped.elapsed() < down_for {
        let health = http.get(format!("{address}/health")).send().await.unwrap();
        assert_eq!(
            health.status(),
            200,
            "/health stays true without the database"
        );
        let ready = http.get(format!("{address}/ready")).send().await.unwrap();
        assert_eq!(ready.status(), 503, "/ready is false without the database");
        let ready: Value = ready.json().await.unwrap();
        assert_eq!(ready, serde_json::json!({"status": "unavailable"}));
        let ready = http.get(format!("{ops}/ready")).send().await.unwrap();
        assert_eq!(ready.status(), 503);
        let ready: Value = ready.json().await.unwrap();
        assert_eq!(ready["status"], "unavailable", "{ready}");
        assert_eq!(ready["database"]["ok"], false, "{ready}");
        let sent = Instant::now();
        let r = command(format!("down-{probes}")).await.unwrap();
        command_ms.push(sent.elapsed().as_secs_f64() * 1000.0);
        let problem = crate::helpers::assert_problem(r, 503, "database-unavailable").await;
        assert!(problem["detail"].is_string());
        probes += 1;
    }
    command_ms.sort_by(f64::total_cmp);
    let slowest = command_ms.last().copied().unwrap_or_default();
    assert!(
        slowest < 2_500.0,
        "commands must fail fast while the database is down; slowest took {slowest:.0} ms"
    );

    pg.start();
    let back = Instant::now();
    let mut n = 0;
    let recovered = loop {
        n += 1;
        if let Ok(r) = command(format!("back-{n}")).await {
            if r.status() == 201 {
                break back.elapsed();
            }
        }
        assert!(
            back.elapsed() < Duration::from_secs(5),
            "no command succeeded within 5 s of the database's return; {}",
            service.tail()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let ready_again = loop {
        let r = http.get(format!("{address}/ready")).send().await.unwrap();
        if r.status() == 200 {
            break back.elapsed();
        }
        assert!(
            back.elapsed() < Duration::from_secs(5),
            "/ready stayed false"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let report = load.stop().await;
    load::print("postgres restart", &report, started.elapsed());
    let mut unavailable = report.unavailable_ms.clone();
    unavailable.sort_by(f64::total_cmp);
    eprintln!(
        "postgres restart: down {down_for:?}; {probes} probe commands answered 503 in at most \
         {slowest:.0} ms (p50 {:.0} ms); the load's 503s p99 {:.0} ms; first command succeeded \
         {recovered:?} after the database returned, /ready {ready_again:?}",
        percentile(&command_ms, 50.0),
        percentile(&unavailable, 99.0),
    );
    assert!(report.errors.is_empty(), "5xx answers: {:?}", report.errors);

    let audit = verify_nothing_lost(&config, &report.acknowledged).await;
    eprintln!(
        "postgres restart: nothing acknowledged lost ({} events); read models equal a replay; \
         every event on the broker ({} duplicates)",
        audit.events, audit.duplicates
    );
    drop(service);
}
