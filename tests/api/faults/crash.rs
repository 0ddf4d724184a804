//! `kill -9` under a steady write load, again and again.

use std::time::{Duration, Instant};

use rand::Rng;

use super::load::{self, Load, Target};
use super::{knob, verify_nothing_lost, Service};
use crate::helpers::{fresh_database, slug, test_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_under_load_loses_nothing_that_was_acknowledged() {
    let kills = knob("KILLS", 5);
    let clients = knob("CRASH_CLIENTS", 32) as usize;
    let database = fresh_database().await;
    let config = test_config(&database);
    let mut service = Service::new(&config);
    service.start().await;
    let token = service
        .admin_token(config.bootstrap.tenant.as_ref().unwrap())
        .await;
    let target = Target::create(&service.address(), &token, &slug("crash")).await;

    let started = Instant::now();
    let load = Load::start(&target, clients);
    let mut restarts = Vec::new();
    let mut rng = rand::rng();
    for _ in 0..kills {
        // A random moment: mid-request, mid-projection, mid-relay batch.
        let pause = rng.random_range(300..2_500);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        service.kill9();
        restarts.push(service.start().await);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let report = load.stop().await;
    load::print("kill -9", &report, started.elapsed());
    eprintln!(
        "kill -9: {kills} kills; back up (serving /health) after {:?}",
        restarts
    );
    assert!(report.errors.is_empty(), "5xx answers: {:?}", report.errors);
    assert!(
        report.ok >= 50,
        "the load barely ran ({} acknowledged); {}",
        report.ok,
        service.tail()
    );

    let audit = verify_nothing_lost(&config, &report.acknowledged).await;
    eprintln!(
        "kill -9: all {} acknowledged events in the log; outbox drained {:?} after the load; \
         read models equal a replay; {} events on the broker ({} deliveries, {} duplicates), none missing",
        report.acknowledged.len(),
        audit.drain,
        audit.events,
        audit.delivered,
        audit.duplicates
    );
}
