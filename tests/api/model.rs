//! The authorization model against the history it was folded from.
//!
//! 1. A seeded random walk of commands over a small world, through the real HTTP API. A naive
//!    resolver, written here from the README's rules and independent of the projection code,
//!    folds the tenant's events in global order. Three things must equal what it derives,
//!    for every user and scope: the read model (the `ent_*` tables, resolved in SQL by
//!    `entitlements::fan_out`), the in-process index (through the lookup API, for every
//!    user and every scope), and the policy counters with their effective versions.
//! 2. 16 concurrent writers over 8 tenants; every tenant still matches the naive model, and
//!    every projection rebuilt from position 0 into a shadow schema is identical to the live
//!    read models, table by table.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use charter::config::DatabaseConfig;
use deadpool_postgres::Pool;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use reqwest::Method;
use secrecy::SecretString;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{
    fresh_database, slug, spawn_app, spawn_with_config, test_config, url_for, TestApp,
};

// ---------------------------------------------------------------------------------------------
// Driving commands
// ---------------------------------------------------------------------------------------------

/// A point in the global order, as a command's `consistency_token` carries it.
type Token = (i64, i64);

fn parse_token(s: &str) -> Token {
    let (tx, pos) = s.split_once('.').expect("a consistency token");
    (tx.parse().unwrap(), pos.parse().unwrap())
}

/// What a command answered.
struct Answer {
    status: u16,
    body: Value,
}

impl Answer {
    fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    fn id(&self) -> Option<String> {
        self.body["data"]["id"].as_str().map(str::to_owned)
    }

    fn token(&self) -> Option<Token> {
        self.body["consistency_token"].as_str().map(parse_token)
    }
}

async fn call(app: &TestApp, method: Method, path: &str, body: Option<Value>) -> Answer {
    let r = app.send(method, path, body).await;
    let status = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Answer { status, body }
}

/// Outcomes of a run of commands.
#[derive(Default, Debug, Clone)]
struct Tally {
    commands: usize,
    by_status: BTreeMap<u16, usize>,
    server_errors: Vec<String>,
    max_token: Option<Token>,
}

impl Tally {
    fn record(&mut self, what: &str, a: &Answer) {
        self.commands += 1;
        *self.by_status.entry(a.status).or_default() += 1;
        if a.status >= 500 {
            self.server_errors
                .push(format!("{what}: {} {}", a.status, a.body));
        }
        if a.ok() {
            self.max_token = self.max_token.max(a.token());
        }
    }

    fn merge(&mut self, other: Tally) {
        self.commands += other.commands;
        for (s, n) in other.by_status {
            *self.by_status.entry(s).or_default() += n;
        }
        self.server_errors.extend(other.server_errors);
        self.max_token = self.max_token.max(other.max_token);
    }

    fn count(&self, range: std::ops::Range<u16>) -> usize {
        self.by_status
            .iter()
            .filter(|(s, _)| range.contains(s))
            .map(|(_, n)| n)
            .sum()
    }
}

/// Sends a command that must succeed (world set-up) and returns its answer.
async fn must(app: &TestApp, tally: &mut Tally, method: Method, path: &str, body: Value) -> Answer {
    let a = call(app, method, path, Some(body)).await;
    tally.record(path, &a);
    assert!(a.ok(), "{path}: {} {}", a.status, a.body);
    a
}

/// Waits until every projection has passed `token` (a list query with `consistency=`).
async fn wait_for_token(app: &TestApp, token: Token) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let a = call(
            app,
            Method::GET,
            &format!("/v1/tenants?limit=1&consistency={}.{}", token.0, token.1),
            None,
        )
        .await;
        match a.status {
            200 => return,
            503 if Instant::now() < deadline => continue,
            s => panic!("waiting for {token:?}: {s} {}", a.body),
        }
    }
}

async fn register_docs(app: &TestApp) {
    let r = app
        .post(
            "/v1/permissions/register",
            json!({"service": "docs", "permissions": PERMISSIONS
                .iter()
                .map(|p| json!({"name": p, "label": p}))
                .collect::<Vec<_>>()}),
        )
        .await;
    assert_eq!(r.status(), 200, "register docs.*");
}

const PERMISSIONS: [&str; 4] = ["docs.read", "docs.edit", "docs.delete", "docs.share"];

fn some_permissions(rng: &mut StdRng, min: usize) -> Vec<&'static str> {
    let n = rng.random_range(min..=2);
    let mut picked: Vec<&'static str> = PERMISSIONS.choose_multiple(rng, n).copied().collect();
    picked.sort_unstable();
    picked
}

// ---------------------------------------------------------------------------------------------
// The naive model: a plain fold of one tenant's events, and the README's resolution rules
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UserStatus {
    Active,
    Disabled,
    Deleted,
}

#[derive(Debug, Clone)]
struct ModelRole {
    workspace: Option<Uuid>,
    permissions: BTreeSet<String>,
    live: bool,
}

#[derive(Debug, Clone)]
struct ModelAssignment {
    workspace: Option<Uuid>,
    role: Uuid,
    /// "user" or "group".
    subject_type: String,
    subject: Uuid,
}

/// One user x scope of the fan-out: user, scope (nil = tenant), sorted roles and
/// permissions.
type Row = (Uuid, Uuid, Vec<Uuid>, Vec<String>);

#[derive(Debug, Default)]
struct Model {
    tenant_active: bool,
    workspaces: BTreeMap<Uuid, bool>,
    users: BTreeMap<Uuid, UserStatus>,
    groups: HashMap<Uuid, bool>,
    members: HashMap<Uuid, HashSet<Uuid>>,
    roles: HashMap<Uuid, ModelRole>,
    assignments: HashMap<Uuid, ModelAssignment>,
    /// policy_version per scope (nil = tenant), counted from the relevant changes.
    counters: BTreeMap<Uuid, i64>,
    events: usize,
}

fn id(data: &Value, field: &str) -> Uuid {
    data[field]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{field} in {data}"))
}

fn opt_id(data: &Value, field: &str) -> Option<Uuid> {
    match &data[field] {
        Value::Null => None,
        _ => Some(id(data, field)),
    }
}

fn strings(data: &Value, field: &str) -> Vec<String> {
    data[field]
        .as_array()
        .unwrap_or_else(|| panic!("{field} in {data}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

/// Events of these aggregates that change nothing the model cares about. Any other event type
/// of these aggregates fails the test, so that a new event forces a decision here.
const IRRELEVANT: [&str; 8] = [
    "tenant.renamed",
    "tenant.moved",
    "workspace.renamed",
    "user.email_changed",
    "user.display_name_changed",
    "user.password_set",
    "role.renamed",
    "permission.registered",
];
const MODELLED_AGGREGATES: [&str; 6] =
    ["tenant", "workspace", "user", "group", "role", "assignment"];

impl Model {
    /// Folds the tenant's events, read straight from the store in global order.
    async fn load(pool: &Pool, tenant: Uuid) -> Model {
        let client = pool.get().await.unwrap();
        let rows = client
            .query(
                "SELECT event_type, data FROM events WHERE tenant_id = $1 ORDER BY tx_id, position",
                &[&tenant],
            )
            .await
            .unwrap();
        let mut model = Model::default();
        for row in rows {
            model.apply(row.get(0), &row.get(1));
        }
        model
    }

    /// A change in the tenant scope: the tenant's own counter (contract 2: every workspace's
    /// effective version is the tenant's counter plus its own).
    fn bump_tenant(&mut self) {
        *self.counters.entry(Uuid::nil()).or_default() += 1;
    }

    /// The effective version of a scope (nil = the tenant): what a token carries.
    fn effective(&self, scope: Uuid) -> i64 {
        let tenant = self.counters.get(&Uuid::nil()).copied().unwrap_or(0);
        if scope.is_nil() {
            tenant
        } else {
            tenant + self.counters.get(&scope).copied().unwrap_or(0)
        }
    }

    fn bump(&mut self, scope: Option<Uuid>) {
        match scope {
            None => self.bump_tenant(),
            Some(w) => *self.counters.entry(w).or_default() += 1,
        }
    }

    fn role_scope(&self, role: Uuid) -> Option<Uuid> {
        self.roles
            .get(&role)
            .unwrap_or_else(|| panic!("role {role} changed before it was created"))
            .workspace
    }

    fn apply(&mut self, event_type: &str, data: &Value) {
        self.events += 1;
        match event_type {
            "tenant.created" => self.tenant_active = true,
            "tenant.blocked" | "tenant.deleted" => {
                self.tenant_active = false;
                self.bump_tenant();
            }
            "tenant.unblocked" => {
                self.tenant_active = true;
                self.bump_tenant();
            }
            "workspace.created" => {
                self.workspaces.insert(id(data, "workspace_id"), true);
            }
            "workspace.deleted" => {
                let w = id(data, "workspace_id");
                self.workspaces.insert(w, false);
                self.bump(Some(w));
            }
            "user.created" => {
                self.users.insert(id(data, "user_id"), UserStatus::Active);
            }
            "user.disabled" | "user.enabled" | "user.deleted" => {
                let status = match event_type {
                    "user.disabled" => UserStatus::Disabled,
                    "user.enabled" => UserStatus::Active,
                    _ => UserStatus::Deleted,
                };
                self.users.insert(id(data, "user_id"), status);
                self.bump_tenant();
            }
            "group.created" => {
                self.groups.insert(id(data, "group_id"), true);
            }
            "group.member_added" => {
                let g = id(data, "group_id");
                self.members
                    .entry(g)
                    .or_default()
                    .insert(id(data, "user_id"));
                self.bump_tenant();
            }
            "group.member_removed" => {
                let g = id(data, "group_id");
                self.members
                    .entry(g)
                    .or_default()
                    .remove(&id(data, "user_id"));
                self.bump_tenant();
            }
            "group.deleted" => {
                self.groups.insert(id(data, "group_id"), false);
                self.bump_tenant();
            }
            "role.created" => {
                self.roles.insert(
                    id(data, "role_id"),
                    ModelRole {
                        workspace: opt_id(data, "workspace_id"),
                        permissions: strings(data, "permissions").into_iter().collect(),
                        live: true,
                    },
                );
            }
            "role.permissions_granted" | "role.permissions_revoked" | "role.deleted" => {
                let r = id(data, "role_id");
                let scope = self.role_scope(r);
                let role = self.roles.get_mut(&r).unwrap();
                match event_type {
                    "role.permissions_granted" => {
                        role.permissions.extend(strings(data, "permissions"))
                    }
                    "role.permissions_revoked" => {
                        for p in strings(data, "permissions") {
                            role.permissions.remove(&p);
                        }
                    }
                    _ => role.live = false,
                }
                self.bump(scope);
            }
            "assignment.created" => {
                let a = ModelAssignment {
                    workspace: opt_id(data, "workspace_id"),
                    role: id(data, "role_id"),
                    subject_type: data["subject_type"].as_str().unwrap().to_owned(),
                    subject: id(data, "subject_id"),
                };
                let scope = a.workspace;
                self.assignments.insert(id(data, "assignment_id"), a);
                self.bump(scope);
            }
            "assignment.deleted" => {
                let a = self
                    .assignments
                    .remove(&id(data, "assignment_id"))
                    .expect("a deleted assignment existed");
                self.bump(a.workspace);
            }
            other => {
                let aggregate = other.split('.').next().unwrap_or_default();
                assert!(
                    IRRELEVANT.contains(&other) || !MODELLED_AGGREGATES.contains(&aggregate),
                    "the model does not know event type {other}: decide whether it can change \
                     an entitlement"
                );
            }
        }
    }

    /// Every (user, scope) with at least one role, by the README's rules.
    fn resolve(&self) -> BTreeSet<Row> {
        let mut rows = BTreeSet::new();
        if !self.tenant_active {
            return rows;
        }
        let live_workspaces: Vec<Uuid> = self
            .workspaces
            .iter()
            .filter(|(_, live)| **live)
            .map(|(w, _)| *w)
            .collect();
        for (user, status) in &self.users {
            if *status != UserStatus::Active {
                continue;
            }
            let groups: HashSet<Uuid> = self
                .members
                .iter()
                .filter(|(g, members)| {
                    members.contains(user) && self.groups.get(g).copied().unwrap_or(false)
                })
                .map(|(g, _)| *g)
                .collect();
            let mut scopes: BTreeMap<Uuid, (BTreeSet<Uuid>, BTreeSet<String>)> = BTreeMap::new();
            for a in self.assignments.values() {
                let holds = match a.subject_type.as_str() {
                    "user" => a.subject == *user,
                    "group" => groups.contains(&a.subject),
                    other => panic!("subject type {other}"),
                };
                let role = &self.roles[&a.role];
                if !holds || !role.live {
                    continue;
                }
                let targets: Vec<Uuid> = match a.workspace {
                    None => std::iter::once(Uuid::nil())
                        .chain(live_workspaces.iter().copied())
                        .collect(),
                    Some(w) if self.workspaces.get(&w).copied().unwrap_or(false) => vec![w],
                    Some(_) => vec![],
                };
                for scope in targets {
                    let (roles, permissions) = scopes.entry(scope).or_default();
                    roles.insert(a.role);
                    permissions.extend(role.permissions.iter().cloned());
                }
            }
            for (scope, (roles, permissions)) in scopes {
                rows.insert((
                    *user,
                    scope,
                    roles.into_iter().collect(),
                    permissions.into_iter().collect(),
                ));
            }
        }
        rows
    }

    /// The counters that exist (a scope never bumped has no row).
    fn counters(&self) -> BTreeMap<Uuid, i64> {
        self.counters
            .iter()
            .filter(|(_, v)| **v > 0)
            .map(|(k, v)| (*k, *v))
            .collect()
    }
}

/// The read model's entitlements, resolved in SQL from the `ent_*` tables.
async fn projected_entitlements(pool: &Pool, tenant: Uuid) -> BTreeSet<Row> {
    let mut client = pool.get().await.unwrap();
    let tx = client.transaction().await.unwrap();
    tx.batch_execute("SET LOCAL search_path TO projections, public")
        .await
        .unwrap();
    let rows = charter_projections::entitlements::fan_out(&tx, tenant)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    rows.into_iter().collect()
}

/// The in-process index's entitlements, through the lookup API at `token`: every live
/// principal in every scope (the tenant, each live workspace), with each answer's effective
/// policy version checked against the model's. The lookup without a workspace must list
/// exactly the per-workspace answers of the workspaces it lists.
async fn indexed_entitlements(
    app: &TestApp,
    tenant: Uuid,
    model: &Model,
    token: Token,
    ctx: &str,
) -> BTreeSet<Row> {
    let mut rows = BTreeSet::new();
    let live: Vec<Uuid> = model
        .workspaces
        .iter()
        .filter(|(_, l)| **l)
        .map(|(w, _)| *w)
        .collect();
    let row_of = |user: Uuid, e: &Value| -> Row {
        let mut roles: Vec<Uuid> = serde_json::from_value(e["roles"].clone()).unwrap();
        let mut permissions: Vec<String> =
            serde_json::from_value(e["permissions"].clone()).unwrap();
        roles.sort();
        permissions.sort();
        (
            user,
            e["workspace_id"].as_str().unwrap().parse().unwrap(),
            roles,
            permissions,
        )
    };
    for (user, status) in &model.users {
        if *status == UserStatus::Deleted {
            continue;
        }
        let base = format!(
            "/v1/tenants/{tenant}/users/{user}/entitlements?consistency={}.{}",
            token.0, token.1
        );
        let all = call(app, Method::GET, &base, None).await;
        assert_eq!(all.status, 200, "{ctx}: lookup {}", all.body);
        assert_eq!(
            all.body["policy_version"],
            model.effective(Uuid::nil()),
            "{ctx}"
        );
        if let Some(t) = all.body["tenant"].as_object() {
            let t = Value::Object(t.clone());
            assert_eq!(t["policy_version"], model.effective(Uuid::nil()), "{ctx}");
            rows.insert(row_of(*user, &t));
        }
        let mut listed = BTreeMap::new();
        for w in all.body["workspaces"].as_array().unwrap() {
            listed.insert(row_of(*user, w).1, w.clone());
        }
        for w in &live {
            let one = call(app, Method::GET, &format!("{base}&workspace_id={w}"), None).await;
            assert_eq!(one.status, 200, "{ctx}: lookup {}", one.body);
            let entries = one.body["workspaces"].as_array().unwrap();
            assert!(entries.len() <= 1, "{ctx}: {}", one.body);
            if let Some(e) = entries.first() {
                assert_eq!(e["policy_version"], model.effective(*w), "{ctx}");
                rows.insert(row_of(*user, e));
                if let Some(l) = listed.remove(w) {
                    assert_eq!(
                        &l, e,
                        "{ctx}: the listing disagrees with the workspace's answer"
                    );
                }
            }
        }
        assert!(
            listed.is_empty(),
            "{ctx}: listed workspaces {listed:?} that answer nothing"
        );
    }
    rows
}

async fn projected_counters(pool: &Pool, tenant: Uuid) -> BTreeMap<Uuid, i64> {
    let client = pool.get().await.unwrap();
    client
        .query(
            "SELECT workspace_id, version FROM projections.policy_versions WHERE tenant_id = $1",
            &[&tenant],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// Short names for ids in failure messages.
#[derive(Default)]
struct Labels(HashMap<Uuid, String>);

impl Labels {
    fn add(&mut self, id: &str, label: impl Into<String>) {
        self.0.insert(id.parse().unwrap(), label.into());
    }

    fn of(&self, id: &Uuid) -> String {
        if id.is_nil() {
            return "tenant".into();
        }
        self.0.get(id).cloned().unwrap_or_else(|| id.to_string())
    }

    fn row(&self, (u, w, roles, permissions): &Row) -> String {
        let roles: Vec<String> = roles.iter().map(|r| self.of(r)).collect();
        format!(
            "{} @ {}: roles {roles:?} permissions {permissions:?}",
            self.of(u),
            self.of(w)
        )
    }
}

/// Compares the read models of `tenant` with the model folded from its events. Returns the
/// number of entitlement rows and counters compared.
async fn assert_matches_model(
    app: &TestApp,
    tenant: Uuid,
    labels: &Labels,
    token: Token,
    ctx: &str,
) -> (usize, usize) {
    let pool = &app.pool;
    let model = Model::load(pool, tenant).await;
    let expected = model.resolve();
    let indexed = indexed_entitlements(app, tenant, &model, token, ctx).await;
    if expected != indexed {
        let missing: Vec<String> = expected
            .difference(&indexed)
            .map(|r| labels.row(r))
            .collect();
        let extra: Vec<String> = indexed
            .difference(&expected)
            .map(|r| labels.row(r))
            .collect();
        panic!(
            "{ctx}: the in-process index differs from the model of {} events\n\
             expected but not indexed ({}):\n  {}\nindexed but not expected ({}):\n  {}",
            model.events,
            missing.len(),
            missing.join("\n  "),
            extra.len(),
            extra.join("\n  ")
        );
    }
    let actual = projected_entitlements(pool, tenant).await;
    let rows = actual.len();
    if expected != actual {
        let missing: Vec<String> = expected
            .difference(&actual)
            .map(|r| labels.row(r))
            .collect();
        let extra: Vec<String> = actual
            .difference(&expected)
            .map(|r| labels.row(r))
            .collect();
        panic!(
            "{ctx}: the read model (ent_*, resolved) differs from the model of {} events\n\
             expected but not projected ({}):\n  {}\nprojected but not expected ({}):\n  {}",
            model.events,
            missing.len(),
            missing.join("\n  "),
            extra.len(),
            extra.join("\n  ")
        );
    }
    let expected = model.counters();
    let actual = projected_counters(pool, tenant).await;
    if expected != actual {
        let show = |m: &BTreeMap<Uuid, i64>| -> Vec<String> {
            m.iter()
                .map(|(k, v)| format!("{}={v}", labels.of(k)))
                .collect()
        };
        panic!(
            "{ctx}: projections.policy_versions differs from the model\n  expected {:?}\n  \
             projected {:?}",
            show(&expected),
            show(&actual)
        );
    }
    (rows, actual.len())
}

async fn failed_events(pool: &Pool) -> Vec<String> {
    let client = pool.get().await.unwrap();
    client
        .query(
            "SELECT projection || ': ' || event_type || ': ' || error FROM projections.failed_events",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Test 1: a seeded random walk against the naive model
// ---------------------------------------------------------------------------------------------

/// Seeds of the random walk; override with `CHARTER_MODEL_SEEDS=7,8` to replay a failure.
fn seeds() -> Vec<u64> {
    match std::env::var("CHARTER_MODEL_SEEDS") {
        Ok(s) => s.split(',').map(|v| v.trim().parse().unwrap()).collect(),
        Err(_) => vec![0x5eed_0001, 0x5eed_0002, 0x5eed_0003],
    }
}

/// Random commands per seed, and how often the read models are compared with the model.
const WALK: usize = 150;
const COMPARE_EVERY: usize = 25;

/// One command of the walk.
struct Step {
    what: &'static str,
    method: Method,
    path: String,
    body: Option<Value>,
    /// What a delete removes: replaced by a new one, so that the world stays populated.
    deletes: Option<String>,
}

fn step(what: &'static str, method: Method, path: String, body: Option<Value>) -> Step {
    Step {
        what,
        method,
        path,
        body,
        deletes: None,
    }
}

fn delete(what: &'static str, path: String, id: &str) -> Step {
    Step {
        what,
        method: Method::DELETE,
        path,
        body: None,
        deletes: Some(id.to_owned()),
    }
}

struct World<'a> {
    app: &'a TestApp,
    base: String,
    workspaces: Vec<String>,
    users: Vec<String>,
    groups: Vec<String>,
    /// Role id and workspace scope; includes the system role `viewer`. A workspace role stays
    /// here after its workspace is deleted.
    roles: Vec<(String, Option<String>)>,
    /// Every assignment created so far, deleted ones included (deleting them again is a 404).
    assignments: Vec<String>,
    blocked: bool,
    labels: Labels,
    created: usize,
    tally: Tally,
}

impl World<'_> {
    /// Creates a resource that must be created, and labels it.
    async fn create(&mut self, kind: &str, body: Value) -> String {
        let path = format!("{}/{kind}", self.base);
        let id = must(self.app, &mut self.tally, Method::POST, &path, body)
            .await
            .id()
            .unwrap();
        self.created += 1;
        self.labels.add(
            &id,
            format!("{}{}", kind.trim_end_matches('s'), self.created),
        );
        id
    }

    async fn new_workspace(&mut self) -> String {
        let body = json!({"name": format!("ws{}", self.created + 1)});
        self.create("workspaces", body).await
    }

    async fn new_user(&mut self) -> String {
        let n = self.created + 1;
        let body = json!({"username": format!("user{n}"), "email": format!("user{n}@example.com")});
        self.create("users", body).await
    }

    async fn new_group(&mut self) -> String {
        let body = json!({"name": format!("group{}", self.created + 1)});
        self.create("groups", body).await
    }

    async fn new_role(&mut self, rng: &mut StdRng, workspace: Option<String>) -> String {
        let mut body = json!({
            "name": format!("role{}", self.created + 1),
            "permissions": some_permissions(rng, 0),
        });
        if let Some(w) = &workspace {
            body["workspace_id"] = json!(w);
        }
        let id = self.create("roles", body).await;
        if let Some(w) = &workspace {
            let label = format!(
                "{}@{}",
                self.labels.of(&id.parse().unwrap()),
                self.labels.of(&w.parse().unwrap())
            );
            self.labels.add(&id, label);
        }
        self.roles.push((id.clone(), workspace));
        id
    }

    /// The next command of the walk.
    fn next(&self, rng: &mut StdRng) -> Step {
        let base = &self.base;
        if self.blocked && rng.random_bool(0.4) {
            return step("unblock", Method::POST, format!("{base}/unblock"), None);
        }
        let user = self.users.choose(rng).unwrap().clone();
        let group = self.groups.choose(rng).unwrap().clone();
        let (role, role_ws) = self.roles.choose(rng).unwrap().clone();
        let ws = self.workspaces.choose(rng).unwrap().clone();
        let members = format!("{base}/groups/{group}/members/{user}");
        let roll = rng.random_range(0..1000);
        match roll {
            0..300 => {
                let mut body = json!({"role_id": role});
                if roll < 200 {
                    body["user_id"] = json!(user);
                } else {
                    body["group_id"] = json!(group);
                }
                let workspace = match role_ws {
                    // A workspace role: its own workspace, by default or named; rarely another.
                    Some(w) => match rng.random_range(0..20) {
                        0..10 => None,
                        10..19 => Some(w),
                        _ => Some(ws),
                    },
                    None if rng.random_bool(0.5) => None,
                    None => Some(ws),
                };
                if let Some(w) = workspace {
                    body["workspace_id"] = json!(w);
                }
                step(
                    "assign",
                    Method::POST,
                    format!("{base}/assignments"),
                    Some(body),
                )
            }
            300..420 => match self.assignments.choose(rng) {
                Some(a) => step(
                    "unassign",
                    Method::DELETE,
                    format!("{base}/assignments/{a}"),
                    None,
                ),
                None => step("member+", Method::PUT, members, None),
            },
            420..560 => step("member+", Method::PUT, members, None),
            560..640 => step("member-", Method::DELETE, members, None),
            640..740 => step(
                "grant",
                Method::POST,
                format!("{base}/roles/{role}/permissions"),
                Some(json!({"permissions": some_permissions(rng, 1)})),
            ),
            740..820 => {
                let p = PERMISSIONS.choose(rng).unwrap();
                step(
                    "revoke",
                    Method::DELETE,
                    format!("{base}/roles/{role}/permissions/{p}"),
                    None,
                )
            }
            820..880 => step(
                "disable",
                Method::POST,
                format!("{base}/users/{user}/disable"),
                None,
            ),
            880..940 => step(
                "enable",
                Method::POST,
                format!("{base}/users/{user}/enable"),
                None,
            ),
            940..955 => delete("delete-workspace", format!("{base}/workspaces/{ws}"), &ws),
            955..970 => delete("delete-group", format!("{base}/groups/{group}"), &group),
            970..985 => delete("delete-role", format!("{base}/roles/{role}"), &role),
            985..992 => delete("delete-user", format!("{base}/users/{user}"), &user),
            _ => step(
                "block",
                Method::POST,
                format!("{base}/block"),
                Some(json!({"reason": "model"})),
            ),
        }
    }

    /// Replaces what a successful delete removed.
    async fn replace(&mut self, rng: &mut StdRng, what: &str, id: &str) {
        match what {
            "delete-workspace" => {
                self.workspaces.retain(|w| w != id);
                let w = self.new_workspace().await;
                self.workspaces.push(w.clone());
                // A role in the new workspace too; the old workspace's roles stay around.
                self.new_role(rng, Some(w)).await;
            }
            "delete-group" => {
                self.groups.retain(|g| g != id);
                let g = self.new_group().await;
                self.groups.push(g);
            }
            "delete-role" => {
                let scope = self.roles.iter().find(|(r, _)| r == id).unwrap().1.clone();
                self.roles.retain(|(r, _)| r != id);
                let scope = scope.filter(|w| self.workspaces.contains(w));
                self.new_role(rng, scope).await;
            }
            "delete-user" => {
                self.users.retain(|u| u != id);
                let u = self.new_user().await;
                self.users.push(u);
            }
            other => unreachable!("{other}"),
        }
    }

    /// Waits for the projections, then compares them with the model of the history so far.
    async fn compare(&self, ctx: &str) -> (usize, usize) {
        wait_for_token(self.app, self.tally.max_token.unwrap()).await;
        let failed = failed_events(&self.app.pool).await;
        assert!(failed.is_empty(), "{ctx}: poison events {failed:?}");
        let tenant = self.base.rsplit('/').next().unwrap().parse().unwrap();
        assert_matches_model(
            self.app,
            tenant,
            &self.labels,
            self.tally.max_token.unwrap(),
            ctx,
        )
        .await
    }
}

async fn walk(app: &TestApp, seed: u64) {
    let ctx = format!("seed {seed} (replay: CHARTER_MODEL_SEEDS={seed})");
    println!("model: {ctx}");
    let started = Instant::now();
    let mut rng = StdRng::seed_from_u64(seed);
    let t = app.create_tenant(&slug("model")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut world = World {
        app,
        base: format!("/v1/tenants/{t}"),
        workspaces: Vec::new(),
        users: Vec::new(),
        groups: Vec::new(),
        roles: Vec::new(),
        assignments: Vec::new(),
        blocked: false,
        labels: Labels::default(),
        created: 0,
        tally: Tally::default(),
    };
    for _ in 0..3 {
        let w = world.new_workspace().await;
        world.workspaces.push(w);
    }
    for _ in 0..5 {
        let u = world.new_user().await;
        world.users.push(u);
    }
    for _ in 0..2 {
        let g = world.new_group().await;
        world.groups.push(g);
    }
    // Two tenant roles, and one role in each of the first two workspaces.
    for scope in [None, None, Some(0), Some(1)] {
        let w = scope.map(|s: usize| world.workspaces[s].clone());
        world.new_role(&mut rng, w).await;
    }
    // The seeded system role `viewer`: assignable, read-only (a grant is a 409).
    let token = world.tally.max_token.unwrap();
    let list = call(
        app,
        Method::GET,
        &format!(
            "{}/roles?limit=100&consistency={}.{}",
            world.base, token.0, token.1
        ),
        None,
    )
    .await;
    assert_eq!(list.status, 200, "{}", list.body);
    let viewer = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "viewer")
        .expect("the seeded viewer role")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    world.labels.add(&viewer, "viewer");
    world.roles.push((viewer, None));

    let setup = world.tally.commands;
    let mut walk = Tally::default();
    let (mut compared, mut rows, mut nonempty) = (0, 0, 0);
    for i in 1..=WALK {
        let s = world.next(&mut rng);
        let a = call(app, s.method, &s.path, s.body.clone()).await;
        walk.record(s.what, &a);
        world.tally.record(s.what, &a);
        assert!(
            a.status < 500,
            "{ctx}: step {i} {} {} {:?}: {} {}",
            s.what,
            s.path,
            s.body,
            a.status,
            a.body
        );
        if a.ok() {
            match s.what {
                "assign" => world.assignments.push(a.id().expect("an assignment id")),
                "block" => world.blocked = true,
                "unblock" => world.blocked = false,
                _ => {}
            }
            // Replacements need an active tenant; a delete succeeded, so it is.
            if let Some(id) = &s.deletes {
                world.replace(&mut rng, s.what, id).await;
            }
        }
        if i % COMPARE_EVERY == 0 {
            let (r, _) = world.compare(&format!("{ctx}, after step {i}")).await;
            compared += 1;
            rows += r;
            nonempty += usize::from(r > 0);
        }
    }
    let (r, counters) = world.compare(&format!("{ctx}, at the end")).await;
    println!(
        "model: {ctx}: {setup} set-up commands, {WALK} random ones ({} more to replace deleted \
         things); statuses of the random ones {:?} ({} refused with 4xx); the read models \
         matched the model {} times ({rows} entitlement rows in all, {r} and {counters} \
         counters at the end); {:.1?}",
        world.tally.commands - setup - WALK,
        walk.by_status,
        walk.count(400..500),
        compared + 1,
        started.elapsed()
    );
    assert!(
        nonempty >= compared / 2,
        "{ctx}: the walk left nobody entitled most of the time; it proves little"
    );
}

#[tokio::test]
async fn entitlements_and_counters_match_a_naive_model_of_the_history() {
    let app = spawn_app().await;
    register_docs(&app).await;
    for seed in seeds() {
        walk(&app, seed).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Test 2: concurrent writers, then a rebuild from position 0 equals the live read models
// ---------------------------------------------------------------------------------------------

const WRITERS: usize = 16;
const TENANTS: usize = 8;
/// As the issue asks. Measured in a debug build on the shared 2-core machine: 260-350
/// commands/s, so 10,000 take 30-40 s, under the ~90 s above which 4,000 would have had to do.
/// The rate is printed; `CHARTER_MODEL_COMMANDS` overrides the count.
const COMMANDS: usize = 10_000;

fn command_count() -> usize {
    std::env::var("CHARTER_MODEL_COMMANDS")
        .ok()
        .map(|v| v.parse().expect("CHARTER_MODEL_COMMANDS is a number"))
        .unwrap_or(COMMANDS)
}

#[derive(Default)]
struct Pools {
    workspaces: Vec<String>,
    users: Vec<String>,
    groups: Vec<String>,
    roles: Vec<(String, Option<String>)>,
    assignments: Vec<String>,
}

struct SharedTenant {
    id: String,
    pools: Mutex<Pools>,
}

/// What to remember from a successful command.
enum Created {
    Nothing,
    User,
    Group,
    Role(Option<String>),
    Assignment,
    Workspace,
    Blocked,
}

/// Plans one command against `tenant` from what exists so far.
fn plan(
    rng: &mut StdRng,
    tenant: &SharedTenant,
    writer: usize,
    n: usize,
) -> (&'static str, Method, String, Option<Value>, Created) {
    let base = format!("/v1/tenants/{}", tenant.id);
    let p = tenant.pools.lock().unwrap();
    let user = p.users.choose(rng).cloned();
    let group = p.groups.choose(rng).cloned();
    let role = p.roles.choose(rng).cloned();
    let ws = p.workspaces.choose(rng).cloned();
    let assignment = p.assignments.choose(rng).cloned();
    drop(p);
    let roll = rng.random_range(0..1000);
    let new_user = || {
        (
            "create-user",
            Method::POST,
            format!("{base}/users"),
            Some(
                json!({"username": format!("w{writer}n{n}"), "email": format!("w{writer}n{n}@example.com")}),
            ),
            Created::User,
        )
    };
    let (Some(user), Some(group), Some((role, role_ws)), Some(ws)) = (user, group, role, ws) else {
        // Not enough to pick from yet: create what is missing first.
        return match roll % 3 {
            0 => new_user(),
            1 => (
                "create-group",
                Method::POST,
                format!("{base}/groups"),
                Some(json!({"name": format!("g-w{writer}n{n}")})),
                Created::Group,
            ),
            _ => (
                "create-role",
                Method::POST,
                format!("{base}/roles"),
                Some(
                    json!({"name": format!("r-w{writer}n{n}"), "permissions": some_permissions(rng, 0)}),
                ),
                Created::Role(None),
            ),
        };
    };
    match roll {
        0..130 => new_user(),
        130..180 => (
            "create-group",
            Method::POST,
            format!("{base}/groups"),
            Some(json!({"name": format!("g-w{writer}n{n}")})),
            Created::Group,
        ),
        180..240 => {
            let scoped = rng.random_bool(0.3).then_some(ws);
            let mut body = json!({"name": format!("r-w{writer}n{n}"), "permissions": some_permissions(rng, 0)});
            if let Some(w) = &scoped {
                body["workspace_id"] = json!(w);
            }
            (
                "create-role",
                Method::POST,
                format!("{base}/roles"),
                Some(body),
                Created::Role(scoped),
            )
        }
        240..490 => {
            let mut body = json!({"role_id": role});
            if rng.random_bool(0.7) {
                body["user_id"] = json!(user);
            } else {
                body["group_id"] = json!(group);
            }
            match role_ws {
                Some(w) if rng.random_bool(0.5) => body["workspace_id"] = json!(w),
                Some(_) => {}
                None if rng.random_bool(0.4) => body["workspace_id"] = json!(ws),
                None => {}
            }
            (
                "assign",
                Method::POST,
                format!("{base}/assignments"),
                Some(body),
                Created::Assignment,
            )
        }
        490..640 => (
            "member+",
            Method::PUT,
            format!("{base}/groups/{group}/members/{user}"),
            None,
            Created::Nothing,
        ),
        640..690 => (
            "member-",
            Method::DELETE,
            format!("{base}/groups/{group}/members/{user}"),
            None,
            Created::Nothing,
        ),
        690..770 => (
            "grant",
            Method::POST,
            format!("{base}/roles/{role}/permissions"),
            Some(json!({"permissions": some_permissions(rng, 1)})),
            Created::Nothing,
        ),
        770..820 => (
            "revoke",
            Method::DELETE,
            format!(
                "{base}/roles/{role}/permissions/{}",
                PERMISSIONS.choose(rng).unwrap()
            ),
            None,
            Created::Nothing,
        ),
        820..860 => (
            "disable",
            Method::POST,
            format!("{base}/users/{user}/disable"),
            None,
            Created::Nothing,
        ),
        860..900 => (
            "enable",
            Method::POST,
            format!("{base}/users/{user}/enable"),
            None,
            Created::Nothing,
        ),
        900..950 => match assignment {
            Some(a) => (
                "unassign",
                Method::DELETE,
                format!("{base}/assignments/{a}"),
                None,
                Created::Nothing,
            ),
            None => new_user(),
        },
        950..960 => (
            "rename-role",
            Method::PATCH,
            format!("{base}/roles/{role}"),
            Some(json!({"name": format!("renamed-w{writer}n{n}")})),
            Created::Nothing,
        ),
        960..968 => (
            "delete-role",
            Method::DELETE,
            format!("{base}/roles/{role}"),
            None,
            Created::Nothing,
        ),
        968..976 => (
            "delete-group",
            Method::DELETE,
            format!("{base}/groups/{group}"),
            None,
            Created::Nothing,
        ),
        976..984 => (
            "delete-user",
            Method::DELETE,
            format!("{base}/users/{user}"),
            None,
            Created::Nothing,
        ),
        984..992 => (
            "create-workspace",
            Method::POST,
            format!("{base}/workspaces"),
            Some(json!({"name": format!("ws-w{writer}n{n}")})),
            Created::Workspace,
        ),
        992..997 => (
            "delete-workspace",
            Method::DELETE,
            format!("{base}/workspaces/{ws}"),
            None,
            Created::Nothing,
        ),
        _ => (
            "block",
            Method::POST,
            format!("{base}/block"),
            None,
            Created::Blocked,
        ),
    }
}

async fn writer(
    app: Arc<TestApp>,
    tenants: Arc<Vec<SharedTenant>>,
    next: Arc<AtomicUsize>,
    total: usize,
    index: usize,
) -> Tally {
    let mut rng = StdRng::seed_from_u64(0xc0ffee + index as u64);
    let mut tally = Tally::default();
    loop {
        let n = next.fetch_add(1, Ordering::Relaxed);
        if n >= total {
            return tally;
        }
        // Two writers share a home tenant; one command in five goes anywhere.
        let t = if rng.random_bool(0.8) {
            index % tenants.len()
        } else {
            rng.random_range(0..tenants.len())
        };
        let tenant = &tenants[t];
        let (what, method, path, body, created) = plan(&mut rng, tenant, index, n);
        let a = call(&app, method, &path, body).await;
        tally.record(what, &a);
        if !a.ok() {
            continue;
        }
        let mut pools = tenant.pools.lock().unwrap();
        match created {
            Created::Nothing => {}
            Created::User => pools.users.push(a.id().unwrap()),
            Created::Group => pools.groups.push(a.id().unwrap()),
            Created::Role(ws) => pools.roles.push((a.id().unwrap(), ws)),
            Created::Assignment => pools.assignments.push(a.id().unwrap()),
            Created::Workspace => pools.workspaces.push(a.id().unwrap()),
            Created::Blocked => {
                drop(pools);
                // Blocked only for a moment: the other writers meet 409 tenant-blocked.
                let a = call(
                    &app,
                    Method::POST,
                    &format!("/v1/tenants/{}/unblock", tenant.id),
                    None,
                )
                .await;
                tally.record("unblock", &a);
                assert!(a.ok(), "unblock: {} {}", a.status, a.body);
            }
        }
    }
}

async fn head(pool: &Pool) -> Token {
    let client = pool.get().await.unwrap();
    let row = client
        .query_one(
            "SELECT tx_id::text::bigint, position FROM events ORDER BY tx_id DESC, position DESC LIMIT 1",
            &[],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

/// How many of `names` in `schema.checkpoints` are still behind `token`.
async fn behind(pool: &Pool, schema: &str, names: &[String], token: Token) -> i64 {
    let client = pool.get().await.unwrap();
    client
        .query_one(
            &format!(
                "SELECT count(*) FROM {schema}.checkpoints WHERE name = ANY($1) \
                 AND (tx_id, position) < ($2::text::xid8, $3)"
            ),
            &[&names, &token.0.to_string(), &token.1],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_then_a_rebuild_from_zero_equals_live() {
    let database = fresh_database().await;
    let config = test_config(&database);
    let app = Arc::new(spawn_with_config(config).await);
    register_docs(&app).await;

    let mut setup = Tally::default();
    let mut tenants = Vec::new();
    for i in 0..TENANTS {
        let t = app.create_tenant(&slug(&format!("rebuild{i}"))).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let mut pools = Pools::default();
        for w in 0..2 {
            let body = json!({"name": format!("ws{w}")});
            let a = must(
                &app,
                &mut setup,
                Method::POST,
                &format!("/v1/tenants/{t}/workspaces"),
                body,
            )
            .await;
            pools.workspaces.push(a.id().unwrap());
        }
        tenants.push(SharedTenant {
            id: t,
            pools: Mutex::new(pools),
        });
    }
    let tenants = Arc::new(tenants);

    let total = command_count();
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let writers = (0..WRITERS)
        .map(|i| tokio::spawn(writer(app.clone(), tenants.clone(), next.clone(), total, i)));
    let mut tally = Tally::default();
    for w in futures::future::join_all(writers).await {
        tally.merge(w.unwrap());
    }
    let elapsed = started.elapsed();
    let rate = tally.commands as f64 / elapsed.as_secs_f64();
    println!(
        "rebuild: {WRITERS} writers sent {} commands ({total} planned{}) to {TENANTS} tenants in \
         {elapsed:.1?}: {rate:.0} commands/s; statuses {:?}",
        tally.commands,
        if total < 10_000 {
            format!(
                "; fewer than the issue's 10,000 because CHARTER_MODEL_COMMANDS says so; 10,000 \
                 would take ~{:.0} s at this rate",
                10_000.0 / rate
            )
        } else {
            String::new()
        },
        tally.by_status
    );
    assert!(
        tally.server_errors.is_empty(),
        "{} 5xx answers, e.g. {:?}",
        tally.server_errors.len(),
        &tally.server_errors[..tally.server_errors.len().min(5)]
    );
    assert!(
        tally.count(200..300) > total / 2,
        "most commands should succeed"
    );

    // The live read models catch up with the head of the log.
    let names: Vec<String> = charter_projections::all()
        .iter()
        .map(|p| p.name().to_owned())
        .collect();
    let target = head(&app.pool).await;
    assert!(Some(target) >= tally.max_token);
    let deadline = Instant::now() + Duration::from_secs(120);
    while behind(&app.pool, "projections", &names, target).await > 0 {
        assert!(
            Instant::now() < deadline,
            "live projections did not reach {target:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let caught_up = started.elapsed();
    let failed = failed_events(&app.pool).await;
    assert!(failed.is_empty(), "poison events live: {failed:?}");

    // Every tenant's entitlements and counters still match the naive model.
    for t in tenants.iter() {
        assert_matches_model(
            &app,
            t.id.parse().unwrap(),
            &Labels::default(),
            target,
            &format!("tenant {}", t.id),
        )
        .await;
    }

    // Rebuild every projection from position 0 into a shadow schema, as the schema owner,
    // while the service keeps running, and compare it with live table by table.
    let mut owner_db: DatabaseConfig = app.config.database.clone();
    owner_db.url = SecretString::from(url_for("DATABASE_OWNER_URL", &database));
    owner_db.migration_url = None;
    let projections = charter_projections::all();
    let owner = charter::db::owner_pool(&owner_db, projections.len() + 3).unwrap();
    let replay = charter_projections::replay::Replay::new(owner, projections, 1000);
    let report = replay
        .run(false, false, Duration::from_secs(120), |_| {})
        .await
        .expect("replay");
    let logged: i64 = app
        .pool
        .get()
        .await
        .unwrap()
        .query_one("SELECT count(*) FROM events", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        report.events, logged as u64,
        "the replay read the whole log"
    );
    println!(
        "rebuild: live caught up {:.1?} after the last command; {} events replayed into {} in \
         {:.1} s; rows per table: {}",
        caught_up.saturating_sub(elapsed),
        report.events,
        report.schema,
        report.rebuild_seconds,
        report
            .tables
            .iter()
            .map(|t| format!("{}={}", t.table, t.live_rows))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let differences: Vec<String> = report
        .tables
        .iter()
        .filter(|t| !t.identical())
        .map(|t| format!("{t:?}"))
        .collect();
    assert!(
        differences.is_empty(),
        "the rebuild differs from the live read models:\n  {}",
        differences.join("\n  ")
    );
}
