//! 64 writers on one aggregate: optimistic concurrency loses no update.

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use futures::future::join_all;
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

use super::knob;
use crate::helpers::{assert_problem, slug, spawn_app, TestApp};

/// The members of a group, folded from its stream in the log.
async fn fold_members(app: &TestApp, group: Uuid) -> (BTreeSet<Uuid>, i64) {
    let client = app.pool.get().await.unwrap();
    let rows = client
        .query(
            "SELECT event_type, data, stream_version FROM events WHERE stream_id = $1 \
             ORDER BY stream_version",
            &[&format!("group-{group}")],
        )
        .await
        .unwrap();
    let mut members = BTreeSet::new();
    let mut version = 0;
    for row in rows {
        let data: Value = row.get(1);
        let user = || data["user_id"].as_str().unwrap().parse::<Uuid>().unwrap();
        match row.get::<_, &str>(0) {
            "group.member_added" => assert!(members.insert(user()), "added twice: {data}"),
            "group.member_removed" => assert!(members.remove(&user()), "not a member: {data}"),
            _ => {}
        }
        version = row.get(2);
    }
    (members, version)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_writers_on_one_aggregate_lose_no_update() {
    let writers = 64;
    let rounds = knob("HOT_ROUNDS", 2) as usize;
    let app = spawn_app().await;
    let t = app.create_tenant(&slug("hot")).await;
    let t = t["id"].as_str().unwrap().to_owned();
    let mut users = Vec::new();
    for i in 0..writers * 2 {
        let r = app
            .post(
                &format!("/v1/tenants/{t}/users"),
                json!({"username": format!("w{i}"), "email": format!("w{i}@hot.test")}),
            )
            .await;
        assert_eq!(r.status(), 201);
        let body: Value = r.json().await.unwrap();
        users.push(
            body["data"]["id"]
                .as_str()
                .unwrap()
                .parse::<Uuid>()
                .unwrap(),
        );
    }
    let r = app
        .post(&format!("/v1/tenants/{t}/groups"), json!({"name": "hot"}))
        .await;
    let group: Uuid = r.json::<Value>().await.unwrap()["data"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let group_path = format!("/v1/tenants/{t}/groups/{group}");

    // Phase 1, with If-Match: each writer toggles its own user's membership `rounds` times,
    // re-reading after every 412. A lost update would leave some writer's last toggle undone.
    let started = Instant::now();
    let writer = |w: usize| {
        let app = &app;
        let group_path = group_path.clone();
        let me = users[w];
        async move {
            let (mut lost, mut attempts) = (0usize, 0usize);
            for _ in 0..rounds {
                loop {
                    attempts += 1;
                    let r = app.get(&group_path).await;
                    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
                    let g: Value = r.json().await.unwrap();
                    let member = g["members"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|m| m == &json!(me));
                    let method = if member { Method::DELETE } else { Method::PUT };
                    let r = app
                        .http
                        .request(method, app.url(&format!("{group_path}/members/{me}")))
                        .header("If-Match", etag)
                        .send()
                        .await
                        .unwrap();
                    match r.status().as_u16() {
                        200 => break,
                        412 => {
                            assert_problem(r, 412, "precondition-failed").await;
                            lost += 1;
                        }
                        409 => {
                            assert_problem(r, 409, "concurrent-modification").await;
                            lost += 1;
                        }
                        other => panic!(
                            "writer {w}: unexpected {other}: {}",
                            r.text().await.unwrap()
                        ),
                    }
                }
            }
            (lost, attempts)
        }
    };
    let outcomes = join_all((0..writers).map(writer)).await;
    let lost: usize = outcomes.iter().map(|(l, _)| l).sum();
    let attempts: usize = outcomes.iter().map(|(_, a)| a).sum();
    let with_if_match = started.elapsed();

    // Phase 2, without If-Match: every writer adds a second user at once. The server retries
    // a lost race itself; each writer gets 200 or, after too many losses, a 409.
    let adds = join_all((0..writers).map(|w| {
        let path = format!("{group_path}/members/{}", users[writers + w]);
        let app = &app;
        async move {
            (
                w,
                app.send(Method::PUT, &path, None).await.status().as_u16(),
            )
        }
    }))
    .await;
    let statuses: HashMap<u16, usize> = adds.iter().fold(HashMap::new(), |mut m, (_, s)| {
        *m.entry(*s).or_default() += 1;
        m
    });
    assert!(
        adds.iter().all(|(_, s)| *s == 200 || *s == 409),
        "without If-Match: {statuses:?}"
    );

    let mut expected: BTreeSet<Uuid> = if rounds % 2 == 1 {
        users[..writers].iter().copied().collect()
    } else {
        BTreeSet::new()
    };
    expected.extend(
        adds.iter()
            .filter(|(_, s)| *s == 200)
            .map(|(w, _)| users[writers + w]),
    );
    let (folded, version) = fold_members(&app, group).await;
    assert_eq!(
        folded, expected,
        "the log holds every winner's change and nothing else"
    );
    let added = adds.iter().filter(|(_, s)| *s == 200).count();
    assert_eq!(
        version as usize,
        1 + writers * rounds + added,
        "one event per acknowledged change"
    );

    // The write side and the read model agree with the fold.
    let r = app.get(&group_path).await;
    assert_eq!(
        r.headers()["etag"].to_str().unwrap(),
        format!("\"{version}\"")
    );
    let g: Value = r.json().await.unwrap();
    let served: BTreeSet<Uuid> = g["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(served, folded);
    app.projected().await;
    let projected: BTreeSet<Uuid> = app
        .pool
        .get()
        .await
        .unwrap()
        .query(
            "SELECT user_id FROM projections.group_members WHERE group_id = $1",
            &[&group],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(projected, folded);
    eprintln!(
        "hot aggregate: {writers} writers x {rounds} If-Match toggles in {with_if_match:?}: \
         {attempts} attempts, {lost} lost a race (412/409) and re-read; then {writers} adds \
         without If-Match: {statuses:?}; final version {version}, {} members, equal to the fold",
        folded.len()
    );
}
