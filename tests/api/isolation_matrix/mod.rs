//! The tenant-isolation matrix: every operation of the OpenAPI document with `{tenant_id}` in
//! its path (plus the two that take a tenant in the body or query), called by three principals
//! of one tenant against four tenants, compared cell by cell with the table below.
//!
//! The tenants: P (a root) > M (the callers' own tenant) > C (M's child), and O, an unrelated
//! root. The callers, all of M:
//! - `A`: a user holding the system role `tenant_admin` (every `iam.*` permission);
//! - `V`: a user holding the system role `viewer` (every `*.read` but `iam.audit.read`);
//! - `S`: a service account (client credentials) holding a custom role `provisioner` with
//!   `iam.users.{read,write}` and `iam.groups.{read,write}`: what a SCIM-style provisioning job
//!   needs, and a third pattern besides "everything" and "reads".
//!
//! The designed rule (`src/http/routes.rs`, README "Who may call what"): a permission held in
//! the caller's tenant reaches that tenant and its descendants, never an ancestor or a stranger.
//! Outside that reach everything looks absent (`404`, whatever the caller holds); within it a
//! missing permission is `403`. A tenant's own lifecycle (rename, move, block, unblock, delete)
//! needs the permission in a strict ancestor, so it is `403` for the tenant itself. Setting a
//! service account's platform access needs a platform-wide grant, which no caller of M has:
//! `403` in every tenant alike (so it tells nothing about any tenant).
//!
//! Each cell gets resources of its own where the call would consume them (a fresh user to
//! delete, a fresh child tenant to block), so every cell is decided by authorization alone. An
//! outcome is `+` (authorized: 2xx, or 409/412/422 from the decision after it), `f` (403) or
//! `n` (404); anything else is a failure. A refused cell must append nothing to the log.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use reqwest::{Method, Response};
use serde_json::{json, Value};

mod escalation;

use crate::auth::{login, tokens, user_with_role, PASSWORD};
use crate::entitlements::id_of;
use crate::helpers::{slug, spawn_app_with, TestApp};

/// Expected outcomes: `own | child | parent | other`, each `A V S`.
const EXPECTED: &str = "
GET    /v1/tenants/{tenant_id}                                                     + + f | + + f | n n n | n n n
PATCH  /v1/tenants/{tenant_id}                                                     f f f | + f f | n n n | n n n
DELETE /v1/tenants/{tenant_id}                                                     f f f | + f f | n n n | n n n
POST   /v1/tenants/{tenant_id}/block                                               f f f | + f f | n n n | n n n
POST   /v1/tenants/{tenant_id}/unblock                                             f f f | + f f | n n n | n n n
GET    /v1/tenants/{tenant_id}/workspaces                                          + + f | + + f | n n n | n n n
POST   /v1/tenants/{tenant_id}/workspaces                                          + f f | + f f | n n n | n n n
GET    /v1/tenants/{tenant_id}/workspaces/{workspace_id}                           + + f | + + f | n n n | n n n
PATCH  /v1/tenants/{tenant_id}/workspaces/{workspace_id}                           + f f | + f f | n n n | n n n
DELETE /v1/tenants/{tenant_id}/workspaces/{workspace_id}                           + f f | + f f | n n n | n n n
GET    /v1/tenants/{tenant_id}/users                                               + + + | + + + | n n n | n n n
POST   /v1/tenants/{tenant_id}/users                                               + f + | + f + | n n n | n n n
GET    /v1/tenants/{tenant_id}/users/{user_id}                                     + + + | + + + | n n n | n n n
PATCH  /v1/tenants/{tenant_id}/users/{user_id}                                     + f + | + f + | n n n | n n n
DELETE /v1/tenants/{tenant_id}/users/{user_id}                                     + f + | + f + | n n n | n n n
POST   /v1/tenants/{tenant_id}/users/{user_id}/disable                             + f + | + f + | n n n | n n n
POST   /v1/tenants/{tenant_id}/users/{user_id}/enable                              + f + | + f + | n n n | n n n
POST   /v1/tenants/{tenant_id}/users/{user_id}/unlock                              + f + | + f + | n n n | n n n
POST   /v1/tenants/{tenant_id}/users/{user_id}/mfa/reset                           + f + | + f + | n n n | n n n
GET    /v1/tenants/{tenant_id}/users/{user_id}/entitlements                        + + f | + + f | n n n | n n n
GET    /v1/tenants/{tenant_id}/groups                                              + + + | + + + | n n n | n n n
POST   /v1/tenants/{tenant_id}/groups                                              + f + | + f + | n n n | n n n
GET    /v1/tenants/{tenant_id}/groups/{group_id}                                   + + + | + + + | n n n | n n n
DELETE /v1/tenants/{tenant_id}/groups/{group_id}                                   + f + | + f + | n n n | n n n
PUT    /v1/tenants/{tenant_id}/groups/{group_id}/members/{user_id}                 + f + | + f + | n n n | n n n
DELETE /v1/tenants/{tenant_id}/groups/{group_id}/members/{user_id}                 + f + | + f + | n n n | n n n
GET    /v1/tenants/{tenant_id}/roles                                               + + f | + + f | n n n | n n n
POST   /v1/tenants/{tenant_id}/roles                                               + f f | + f f | n n n | n n n
GET    /v1/tenants/{tenant_id}/roles/{role_id}                                     + + f | + + f | n n n | n n n
PATCH  /v1/tenants/{tenant_id}/roles/{role_id}                                     + f f | + f f | n n n | n n n
DELETE /v1/tenants/{tenant_id}/roles/{role_id}                                     + f f | + f f | n n n | n n n
POST   /v1/tenants/{tenant_id}/roles/{role_id}/permissions                         + f f | + f f | n n n | n n n
DELETE /v1/tenants/{tenant_id}/roles/{role_id}/permissions/{name}                  + f f | + f f | n n n | n n n
GET    /v1/tenants/{tenant_id}/assignments                                         + + f | + + f | n n n | n n n
POST   /v1/tenants/{tenant_id}/assignments                                         + f f | + f f | n n n | n n n
DELETE /v1/tenants/{tenant_id}/assignments/{assignment_id}                         + f f | + f f | n n n | n n n
GET    /v1/tenants/{tenant_id}/service-accounts                                    + f f | + f f | n n n | n n n
POST   /v1/tenants/{tenant_id}/service-accounts                                    + f f | + f f | n n n | n n n
GET    /v1/tenants/{tenant_id}/service-accounts/{service_account_id}               + f f | + f f | n n n | n n n
DELETE /v1/tenants/{tenant_id}/service-accounts/{service_account_id}               + f f | + f f | n n n | n n n
POST   /v1/tenants/{tenant_id}/service-accounts/{service_account_id}/rotate-secret + f f | + f f | n n n | n n n
POST   /v1/tenants/{tenant_id}/service-accounts/{service_account_id}/disable       + f f | + f f | n n n | n n n
POST   /v1/tenants/{tenant_id}/service-accounts/{service_account_id}/enable        + f f | + f f | n n n | n n n
PUT    /v1/tenants/{tenant_id}/service-accounts/{service_account_id}/platform-access f f f | f f f | f f f | f f f
POST   /v1/tenants/{tenant_id}/check                                               + + f | + + f | n n n | n n n
GET    /v1/tenants/{tenant_id}/policy-version                                      + + f | + + f | n n n | n n n
POST   /v1/tenants?parent_id={tenant_id}                                           + f f | + f f | n n n | n n n
GET    /v1/audit/events?tenant_id={tenant_id}                                      + f f | + f f | n f f | n f f
";

/// Operations that name their tenant in the body or the query rather than the path.
const BEYOND_THE_PATH: [&str; 2] = [
    "POST /v1/tenants?parent_id={tenant_id}",
    "GET /v1/audit/events?tenant_id={tenant_id}",
];

const TARGETS: [&str; 4] = ["own", "child", "parent", "other"];
const CALLERS: [&str; 3] = ["A", "V", "S"];

fn expected_table() -> BTreeMap<String, [[char; 3]; 4]> {
    let mut table = BTreeMap::new();
    for line in EXPECTED.lines().filter(|l| !l.trim().is_empty()) {
        let mut words = line.split_whitespace();
        let operation = format!("{} {}", words.next().unwrap(), words.next().unwrap());
        let cells: Vec<char> = words
            .filter(|w| *w != "|")
            .map(|w| w.chars().next().unwrap())
            .collect();
        assert_eq!(cells.len(), 12, "{operation}: 12 cells");
        let mut row = [[' '; 3]; 4];
        for (i, c) in cells.into_iter().enumerate() {
            assert!("+fn".contains(c), "{operation}: {c} is not + f or n");
            row[i / 3][i % 3] = c;
        }
        assert!(
            table.insert(operation.clone(), row).is_none(),
            "{operation} twice"
        );
    }
    table
}

/// `+` authorized, `f` forbidden, `n` not found; anything else is reported as its status.
fn classify(status: u16) -> char {
    match status {
        200..=299 | 409 | 412 | 422 => '+',
        403 => 'f',
        404 => 'n',
        _ => '!',
    }
}

/// A caller of M and how to get it a fresh token (a change to M's roles, assignments or
/// memberships makes every token of M stale).
struct Caller {
    token: String,
    refresh: Option<String>,
    client: Option<(String, String)>,
}

impl Caller {
    /// A user of `tenant` logged in with `PASSWORD`.
    async fn user(app: &TestApp, tenant: &str, username: &str) -> Caller {
        let (token, refresh) = tokens(login(app, tenant, username, PASSWORD, None).await).await;
        Caller {
            token,
            refresh: Some(refresh),
            client: None,
        }
    }

    async fn renew(&mut self, app: &TestApp) {
        let r = match (&self.refresh, &self.client) {
            (Some(refresh), _) => {
                app.anonymous
                    .post(app.url("/v1/auth/refresh"))
                    .json(&json!({"refresh_token": refresh}))
                    .send()
                    .await
            }
            (None, Some((id, secret))) => {
                app.anonymous
                    .post(app.url("/v1/oauth/token"))
                    .form(&[
                        ("grant_type", "client_credentials"),
                        ("client_id", id),
                        ("client_secret", secret),
                    ])
                    .send()
                    .await
            }
            (None, None) => unreachable!("a caller has a refresh token or client credentials"),
        }
        .unwrap();
        let status = r.status();
        let body: Value = r.json().await.unwrap();
        assert_eq!(status, 200, "renewing a caller's token: {body}");
        self.token = body["access_token"].as_str().unwrap().to_owned();
        if self.refresh.is_some() {
            self.refresh = Some(body["refresh_token"].as_str().unwrap().to_owned());
        }
    }
}

/// Resources of one tenant that reads address (created once, projected before the matrix).
struct Fixture {
    tenant: String,
    user: String,
    group: String,
    role: String,
    workspace: String,
    service_account: String,
    assignment: String,
}

/// The platform administrator creates things; returns the new resource's id.
async fn create(app: &TestApp, path: &str, body: Value) -> String {
    id_of(app.post(path, body).await).await
}

async fn user(app: &TestApp, t: &str) -> String {
    let name = slug("u");
    create(
        app,
        &format!("/v1/tenants/{t}/users"),
        json!({"username": name, "email": format!("{name}@example.com")}),
    )
    .await
}

async fn group(app: &TestApp, t: &str) -> String {
    let path = format!("/v1/tenants/{t}/groups");
    create(app, &path, json!({"name": slug("g")})).await
}

async fn role(app: &TestApp, t: &str) -> String {
    let path = format!("/v1/tenants/{t}/roles");
    let body = json!({"name": slug("r"), "permissions": ["iam.users.read"]});
    create(app, &path, body).await
}

async fn workspace(app: &TestApp, t: &str) -> String {
    let path = format!("/v1/tenants/{t}/workspaces");
    create(app, &path, json!({"name": slug("w")})).await
}

async fn service_account(app: &TestApp, t: &str) -> String {
    let path = format!("/v1/tenants/{t}/service-accounts");
    create(app, &path, json!({"name": slug("s")})).await
}

async fn assignment(app: &TestApp, t: &str, role: &str, user: &str) -> String {
    let path = format!("/v1/tenants/{t}/assignments");
    create(app, &path, json!({"role_id": role, "user_id": user})).await
}

async fn child_of(app: &TestApp, parent: Option<&str>) -> String {
    let body = json!({"name": "Matrix", "slug": slug("iso"), "parent_id": parent});
    create(app, "/v1/tenants", body).await
}

async fn fixture(app: &TestApp, tenant: &str) -> Fixture {
    let (user, role) = (user(app, tenant).await, role(app, tenant).await);
    Fixture {
        tenant: tenant.to_owned(),
        assignment: assignment(app, tenant, &role, &user).await,
        user,
        role,
        group: group(app, tenant).await,
        workspace: workspace(app, tenant).await,
        service_account: service_account(app, tenant).await,
    }
}

/// A tenant's own lifecycle: these consume their target, so a cell that may succeed gets a
/// fresh child of M; they run last, in case a refusal that should have happened did not.
fn lifecycle(method: &Method, template: &str) -> bool {
    *method != Method::GET
        && (template == "/v1/tenants/{tenant_id}"
            || template.ends_with("/block")
            || template.ends_with("/unblock"))
}

/// The request of one cell: the concrete path and the body. Reads (and `check`, which reads
/// the entitlements read model) use the fixture, projected in advance; every other call gets
/// fresh resources, so that what it consumes was never seen by another cell.
async fn request_of(
    app: &TestApp,
    method: &Method,
    template: &str,
    f: &Fixture,
    child_of_m: Option<&str>,
) -> (String, Option<Value>) {
    let t = f.tenant.as_str();
    if template.starts_with("/v1/tenants?") {
        let body = json!({"name": "Sub", "slug": slug("sub"), "parent_id": t});
        return ("/v1/tenants".into(), Some(body));
    }
    if template.starts_with("/v1/audit/events?") {
        return (format!("/v1/audit/events?tenant_id={t}&limit=1"), None);
    }
    let fresh = *method != Method::GET && !template.ends_with("/check");
    let (mut group_id, mut user_id) = (f.group.clone(), f.user.clone());
    if template.contains("/members/{user_id}") {
        (group_id, user_id) = (group(app, t).await, user(app, t).await);
        if *method == Method::DELETE {
            let path = format!("/v1/tenants/{t}/groups/{group_id}/members/{user_id}");
            let r = app.send(Method::PUT, &path, None).await;
            assert_eq!(r.status(), 200, "membership to remove");
        }
    }
    let mut path = Vec::new();
    for segment in template.split('/') {
        let value = match segment {
            "{tenant_id}" => child_of_m.unwrap_or(t).to_owned(),
            "{group_id}" if fresh && !template.contains("/members/") => group(app, t).await,
            "{group_id}" => group_id.clone(),
            "{user_id}" if fresh && !template.contains("/members/") => user(app, t).await,
            "{user_id}" => user_id.clone(),
            "{workspace_id}" if fresh => workspace(app, t).await,
            "{workspace_id}" => f.workspace.clone(),
            "{role_id}" if fresh => role(app, t).await,
            "{role_id}" => f.role.clone(),
            "{name}" => "iam.users.read".into(),
            "{assignment_id}" if fresh => {
                let fresh_user = user(app, t).await;
                assignment(app, t, &f.role, &fresh_user).await
            }
            "{assignment_id}" => f.assignment.clone(),
            "{service_account_id}" if fresh => service_account(app, t).await,
            "{service_account_id}" => f.service_account.clone(),
            s if s.starts_with('{') => panic!("{method} {template}: no resource for {s}"),
            s => s.to_owned(),
        };
        path.push(value);
    }
    let path = path.join("/");
    let name = || json!({"name": slug("n")});
    let body = match (
        method.as_str(),
        template.trim_start_matches("/v1/tenants/{tenant_id}"),
    ) {
        ("PATCH", "") => Some(name()),
        ("POST", "/workspaces" | "/groups" | "/service-accounts") => Some(name()),
        ("PATCH", "/workspaces/{workspace_id}" | "/roles/{role_id}") => Some(name()),
        ("POST", "/users") => {
            let name = slug("u");
            Some(json!({"username": name, "email": format!("{name}@example.com")}))
        }
        ("PATCH", "/users/{user_id}") => Some(json!({"display_name": "Renamed"})),
        ("POST", "/roles") => Some(json!({"name": slug("r"), "permissions": ["iam.users.read"]})),
        ("POST", "/roles/{role_id}/permissions") => {
            Some(json!({"permissions": ["iam.groups.read"]}))
        }
        ("POST", "/assignments") => Some(json!({"role_id": f.role, "user_id": user(app, t).await})),
        ("POST", "/check") => Some(json!({"user_id": f.user, "permission": "iam.users.read"})),
        ("PUT", "/service-accounts/{service_account_id}/platform-access") => {
            Some(json!({"permissions": ["iam.permissions.write"]}))
        }
        _ => None,
    };
    (path, body)
}

/// Every event in the log (a refused cell must append nothing, anywhere).
async fn events(app: &TestApp) -> i64 {
    let client = app.pool.get().await.unwrap();
    client
        .query_one("SELECT count(*) FROM events", &[])
        .await
        .unwrap()
        .get(0)
}

/// Sends one cell's request as `caller`, renewing its token while it is refused as stale.
/// Returns the status and whether the log grew during the attempt that decided it.
async fn call(
    app: &TestApp,
    caller: &mut Caller,
    method: &Method,
    path: &str,
    body: &Option<Value>,
) -> Answer {
    for _ in 0..6 {
        let before = events(app).await;
        let mut request = app
            .anonymous
            .request(method.clone(), app.url(path))
            .bearer_auth(&caller.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let r: Response = request.send().await.unwrap();
        let status = r.status().as_u16();
        if status == 401 {
            caller.renew(app).await;
            continue;
        }
        let body: Value = r.json().await.unwrap_or(Value::Null);
        let problem = body["type"]
            .as_str()
            .and_then(|t| t.rsplit('/').next())
            .map(str::to_owned);
        return Answer {
            status,
            problem,
            appended: events(app).await != before,
        };
    }
    Answer {
        status: 401,
        problem: None,
        appended: false,
    }
}

/// What a cell's call got: the status, the problem's slug if any, and whether the log grew
/// during the attempt that decided it.
struct Answer {
    status: u16,
    problem: Option<String>,
    appended: bool,
}

#[tokio::test]
async fn every_tenant_route_by_every_caller_against_every_relative() {
    let app = spawn_app_with(|c| {
        // The service account asks for a new token whenever M's policy version moves.
        c.rate_limit.per_client = charter::config::LimitConfig::new(6_000, 1_000);
    })
    .await;
    let p = child_of(&app, None).await;
    let m = child_of(&app, Some(&p)).await;
    let c = child_of(&app, Some(&m)).await;
    let o = child_of(&app, None).await;

    // The callers.
    user_with_role(&app, &m, "m-admin", "tenant_admin").await;
    user_with_role(&app, &m, "m-viewer", "viewer").await;
    let provisioner = create(
        &app,
        &format!("/v1/tenants/{m}/roles"),
        json!({"name": "provisioner", "permissions":
            ["iam.users.read", "iam.users.write", "iam.groups.read", "iam.groups.write"]}),
    )
    .await;
    let r = app
        .post(
            &format!("/v1/tenants/{m}/service-accounts"),
            json!({"name": "m-provisioner"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let sa: Value = r.json().await.unwrap();
    let (client_id, secret) = (
        sa["data"]["client_id"].as_str().unwrap().to_owned(),
        sa["data"]["client_secret"].as_str().unwrap().to_owned(),
    );
    let r = app
        .post(
            &format!("/v1/tenants/{m}/assignments"),
            json!({"role_id": provisioner, "service_account_id": client_id}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let fixtures = [
        fixture(&app, &m).await,
        fixture(&app, &c).await,
        fixture(&app, &p).await,
        fixture(&app, &o).await,
    ];
    app.projected().await;
    let mut callers = Vec::new();
    for username in ["m-admin", "m-viewer"] {
        callers.push(Caller::user(&app, &m, username).await);
    }
    let mut service = Caller {
        token: String::new(),
        refresh: None,
        client: Some((client_id, secret)),
    };
    service.renew(&app).await;
    callers.push(service);

    // Every operation of the document with a tenant in its path, and those beyond the path;
    // each must have a row, and each row an operation.
    let mut expected = expected_table();
    let doc = crate::openapi::document();
    let mut operations: Vec<(Method, String)> = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_some() && path.contains("{tenant_id}") {
                operations.push((method.to_uppercase().parse().unwrap(), path.clone()));
            }
        }
    }
    for extra in BEYOND_THE_PATH {
        let (method, template) = extra.split_once(' ').unwrap();
        operations.push((method.parse().unwrap(), template.to_owned()));
    }
    let missing: Vec<String> = operations
        .iter()
        .map(|(m, t)| format!("{m} {t}"))
        .filter(|o| !expected.contains_key(o))
        .collect();
    assert!(
        missing.is_empty(),
        "operations without an expected row: {missing:#?}"
    );
    assert_eq!(
        operations.len(),
        expected.len(),
        "rows without an operation"
    );
    operations.sort_by_key(|(m, t)| (lifecycle(m, t), t.clone(), m.to_string()));

    let mut printed = String::new();
    let mut mismatches = Vec::new();
    let (mut allowed, mut refused) = (0, 0);
    for (method, template) in &operations {
        let operation = format!("{method} {template}");
        let row = expected.remove(&operation).unwrap();
        let mut line = format!("{operation:<84}");
        // Own last among lifecycle calls: a wrong success there would end the callers' tenant.
        let order: [usize; 4] = if lifecycle(method, template) {
            [1, 3, 2, 0]
        } else {
            [0, 1, 2, 3]
        };
        let mut cells: Vec<Vec<String>> = vec![vec![String::new(); 3]; 4];
        for target in order {
            let f = &fixtures[target];
            for (who, caller) in callers.iter_mut().enumerate() {
                let disposable = if target == 1 && lifecycle(method, template) {
                    Some(child_of(&app, Some(&m)).await)
                } else {
                    None
                };
                let (path, body) =
                    request_of(&app, method, template, f, disposable.as_deref()).await;
                let Answer {
                    status, appended, ..
                } = call(&app, caller, method, &path, &body).await;
                let got = classify(status);
                let want = row[target][who];
                let cell = format!("{} {}", TARGETS[target], CALLERS[who]);
                if got != want {
                    mismatches.push(format!(
                        "{operation} [{cell}]: expected {want}, got {status} ({path})"
                    ));
                }
                if got == '+' {
                    allowed += 1;
                } else {
                    refused += 1;
                    if appended {
                        mismatches.push(format!(
                            "{operation} [{cell}]: refused with {status}, yet the log grew"
                        ));
                    }
                }
                cells[target][who] = if got == want {
                    got.to_string()
                } else {
                    format!("{status}!")
                };
            }
        }
        for (target, triple) in cells.iter().enumerate() {
            let sep = if target == 0 { "" } else { " |" };
            let _ = write!(
                line,
                "{sep} {:>4} {:>4} {:>4}",
                triple[0], triple[1], triple[2]
            );
        }
        let _ = writeln!(printed, "{line}");
    }
    let header = format!(
        "{:<84} {:^14} | {:^14} | {:^14} | {:^14}\n{:<84} {:>4} {:>4} {:>4} | {:>4} {:>4} {:>4} | {:>4} {:>4} {:>4} | {:>4} {:>4} {:>4}\n",
        "operation  (+ authorized, f 403, n 404; STATUS! = not as expected)",
        "own (M)", "child (C)", "parent (P)", "other (O)",
        "", "A", "V", "S", "A", "V", "S", "A", "V", "S", "A", "V", "S",
    );
    println!("{header}{printed}");
    println!(
        "isolation matrix: {} operations x 4 tenants x 3 callers = {} cells: {allowed} authorized, \
         {refused} refused, {} mismatches",
        operations.len(),
        allowed + refused,
        mismatches.len()
    );
    assert!(
        mismatches.is_empty(),
        "{} cells differ from the designed table:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}
