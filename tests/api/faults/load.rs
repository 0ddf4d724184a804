//! A steady write load of mixed commands from many clients, recording what was acknowledged.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};
use tokio::task::JoinHandle;
use uuid::Uuid;

/// Where the load writes: one tenant and the role its assignments grant.
#[derive(Clone)]
pub struct Target {
    pub address: String,
    pub token: String,
    pub tenant_id: String,
    pub role_id: String,
}

impl Target {
    /// Creates a tenant for the load and finds its `viewer` role.
    pub async fn create(address: &str, token: &str, slug: &str) -> Target {
        let http = super::client(token, Duration::from_secs(30));
        let r = http
            .post(format!("{address}/v1/tenants"))
            .json(&json!({"name": format!("Load {slug}"), "slug": slug}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "create the load's tenant");
        let tenant_id = r.json::<Value>().await.unwrap()["data"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let deadline = Instant::now() + Duration::from_secs(10);
        let role_id = loop {
            let roles: Value = http
                .get(format!("{address}/v1/tenants/{tenant_id}/roles"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let viewer = roles["items"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|r| r["name"] == "viewer");
            if let Some(role) = viewer {
                break role["id"].as_str().unwrap().to_owned();
            }
            assert!(Instant::now() < deadline, "no viewer role: {roles}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        Target {
            address: address.to_owned(),
            token: token.to_owned(),
            tenant_id,
            role_id,
        }
    }
}

/// What the clients saw.
#[derive(Default, Debug)]
pub struct Report {
    /// Ids of the events of every acknowledged (2xx) command.
    pub acknowledged: Vec<Uuid>,
    /// Acknowledged commands.
    pub ok: usize,
    /// Answers by status, and `unreachable` for requests that got no answer.
    pub outcomes: BTreeMap<String, usize>,
    /// Bodies of the 5xx answers other than 503 (which must not happen).
    pub errors: Vec<String>,
    /// Latency of the 503 answers, in ms (they must come fast).
    pub unavailable_ms: Vec<f64>,
}

impl Report {
    fn merge(&mut self, other: Report) {
        self.acknowledged.extend(other.acknowledged);
        self.ok += other.ok;
        for (k, v) in other.outcomes {
            *self.outcomes.entry(k).or_default() += v;
        }
        self.errors.extend(other.errors);
        self.unavailable_ms.extend(other.unavailable_ms);
    }
}

pub struct Load {
    stop: Arc<AtomicBool>,
    clients: Vec<JoinHandle<Report>>,
}

impl Load {
    /// Starts `clients` closed-loop clients on `target`.
    pub fn start(target: &Target, clients: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let clients = (0..clients)
            .map(|c| tokio::spawn(client(target.clone(), c, stop.clone())))
            .collect();
        Load { stop, clients }
    }

    pub async fn stop(self) -> Report {
        self.stop.store(true, Ordering::SeqCst);
        let mut report = Report::default();
        for client in self.clients {
            report.merge(client.await.expect("a load client panicked"));
        }
        report
    }
}

/// One client: creates workspaces, users and groups, adds members and assigns the role, in
/// turn, until told to stop. A request that gets no answer is not retried (a new name is
/// used next), so an unacknowledged command that did commit never collides with a later one.
async fn client(target: Target, c: usize, stop: Arc<AtomicBool>) -> Report {
    let http = super::client(&target.token, Duration::from_secs(15));
    let t = &target.tenant_id;
    let (mut workspaces, mut users, mut groups) = (Vec::new(), Vec::new(), Vec::new());
    let mut report = Report::default();
    let mut n = 0usize;
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        let last = |v: &Vec<String>| v.last().cloned();
        let (method, path, body) = match (n % 5, last(&users), last(&groups), last(&workspaces)) {
            (3, Some(u), Some(g), _) => (
                Method::PUT,
                format!("/v1/tenants/{t}/groups/{g}/members/{u}"),
                None,
            ),
            (4, Some(u), _, Some(w)) => (
                Method::POST,
                format!("/v1/tenants/{t}/assignments"),
                Some(json!({"role_id": target.role_id, "user_id": u, "workspace_id": w})),
            ),
            (1, ..) => (
                Method::POST,
                format!("/v1/tenants/{t}/users"),
                Some(
                    json!({"username": format!("u{c}-{n}"), "email": format!("u{c}-{n}@load.test")}),
                ),
            ),
            (2, ..) => (
                Method::POST,
                format!("/v1/tenants/{t}/groups"),
                Some(json!({"name": format!("g{c}-{n}")})),
            ),
            _ => (
                Method::POST,
                format!("/v1/tenants/{t}/workspaces"),
                Some(json!({"name": format!("w{c}-{n}")})),
            ),
        };
        let mut request = http.request(method, format!("{}{path}", target.address));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let sent = Instant::now();
        let response = match request.send().await {
            Ok(r) => r,
            Err(_) => {
                *report.outcomes.entry("unreachable".into()).or_default() += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let status = response.status().as_u16();
        let body: Value = match response.json().await {
            Ok(body) => body,
            Err(_) => {
                // The process died while answering.
                *report.outcomes.entry("unreachable".into()).or_default() += 1;
                continue;
            }
        };
        *report.outcomes.entry(status.to_string()).or_default() += 1;
        match status {
            200..=299 => {
                report.ok += 1;
                let ids = body["events"].as_array().expect("a command body");
                report.acknowledged.extend(
                    ids.iter()
                        .map(|id| id.as_str().unwrap().parse::<Uuid>().unwrap()),
                );
                // A creation's id, for the memberships and assignments that follow.
                let created = match path.rsplit('/').next() {
                    Some("users") => Some(&mut users),
                    Some("groups") => Some(&mut groups),
                    Some("workspaces") => Some(&mut workspaces),
                    _ => None,
                };
                if let (Some(list), Some(id)) = (created, body["data"]["id"].as_str()) {
                    list.push(id.to_owned());
                }
            }
            503 => {
                report
                    .unavailable_ms
                    .push(sent.elapsed().as_secs_f64() * 1000.0);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            500..=599 => report.errors.push(format!("{status} {body}")),
            _ => {}
        }
    }
    report
}

/// Prints a report's figures under `label`.
pub fn print(label: &str, report: &Report, elapsed: Duration) {
    eprintln!(
        "{label}: {} commands acknowledged in {:.1} s ({:.0}/s), {} events; outcomes {:?}",
        report.ok,
        elapsed.as_secs_f64(),
        report.ok as f64 / elapsed.as_secs_f64(),
        report.acknowledged.len(),
        report.outcomes
    );
}
