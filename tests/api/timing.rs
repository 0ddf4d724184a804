//! Timing side channels. These tests measure, so they run alone: `ops/test` runs the suite
//! with `--skip timing::` and then this module on one thread, on a machine the other tests no
//! longer load (on 2 cores, a parallel suite measures its own load, not the code).

use std::time::Instant;

use serde_json::json;

use crate::auth::{login, user_with_role};
use crate::helpers::{slug, spawn_app_with, TestApp};

/// Failed logins of a known user and an unknown one, measured in adjacent pairs over `rounds`
/// (which goes first alternates): `(median known, median unknown, median of the pairs'
/// unknown/known ratios)`. A pair shares the machine's load of its moment, so the median of the
/// pair ratios does not move when other tests load the machine unevenly over the run.
/// The known user's wrong passwords are kept below the lockout threshold by an unlock.
async fn failure_medians(app: &TestApp, tid: &str, uid: &str, rounds: usize) -> (f64, f64, f64) {
    async fn timed(app: &TestApp, tid: &str, username: &str) -> f64 {
        let started = Instant::now();
        let r = login(app, tid, username, "wrong password here", None).await;
        assert_eq!(r.status(), 401);
        started.elapsed().as_secs_f64()
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (mut known, mut unknown, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..rounds {
        if i % 4 == 3 {
            let r = app
                .post(&format!("/v1/tenants/{tid}/users/{uid}/unlock"), json!({}))
                .await;
            assert_eq!(r.status(), 200);
        }
        let (k, u) = if i % 2 == 0 {
            let k = timed(app, tid, "dave").await;
            (k, timed(app, tid, "eve-does-not-exist").await)
        } else {
            let u = timed(app, tid, "eve-does-not-exist").await;
            (timed(app, tid, "dave").await, u)
        };
        known.push(k);
        unknown.push(u);
        ratios.push(u / k);
    }
    (median(known), median(unknown), median(ratios))
}

/// An unknown user's failed login costs what a known user's does: one password hash, and the
/// database work of recording a failure (a known user's failure is a durable write). Measured
/// twice: with production-like hashing, where the hash dominates, and with cheap hashing, where
/// the database work does.
#[tokio::test]
async fn unknown_users_cost_as_much_as_wrong_passwords() {
    for (iterations, what) in [(100_000, "hash"), (1_000, "database")] {
        let app = spawn_app_with(|c| {
            c.auth.pbkdf2_iterations = std::num::NonZeroU32::new(iterations).unwrap();
            c.rate_limit.per_user = charter::config::LimitConfig::new(6_000, 1_000);
        })
        .await;
        let t = app.create_tenant(&slug("timing")).await;
        let tid = t["id"].as_str().unwrap();
        let uid = user_with_role(&app, tid, "dave", "viewer").await;
        let rounds = if iterations > 10_000 { 15 } else { 41 };
        let (k, u, ratio) = failure_medians(&app, tid, &uid, rounds).await;
        println!(
            "median login failure ({what} dominates, {iterations} iterations): known user \
             {:.2} ms, unknown user {:.2} ms, median pair ratio {ratio:.2}",
            k * 1e3,
            u * 1e3
        );
        // Symmetric on a log scale; the decoy without its append measured 0.66-0.70 here.
        assert!(
            (0.75..=1.0 / 0.75).contains(&ratio),
            "{what}: unknown/known = {ratio:.2}: the paths are distinguishable"
        );
        // The decoys' appends were rolled back: the log holds nothing for nobody, and the
        // outbox holds only what the known user's failures and set-up published.
        let client = app.pool.get().await.unwrap();
        let nobody: i64 = client
            .query_one(
                "SELECT count(*) FROM events WHERE stream_id = $1 OR data->>'user_id' = $2",
                &[
                    &format!("user-{}", uuid::Uuid::nil()),
                    &uuid::Uuid::nil().to_string(),
                ],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(nobody, 0, "a decoy's append became visible");
        let unpaired: i64 = client
            .query_one(
                "SELECT count(*) FROM outbox o LEFT JOIN events e USING (position) \
                 WHERE e.position IS NULL",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(unpaired, 0, "an outbox row without its event");
    }
}
