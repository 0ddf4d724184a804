//! The delegation cells of the isolation matrix: **a caller can only hand out what it holds.**
//!
//! Five helpdesk-style callers of tenant M each hold exactly one `iam.*` write permission,
//! through a role of their own. Every one of them tries every path by which a single delegated
//! permission could be turned into `tenant_admin`, in M and in M's child C, and each path also
//! has a control: the same command handing out only what the caller holds. A path refused by
//! the route's permission is `f` (`403 forbidden`), by the delegation rule `x` (`403
//! privilege-escalation`); `+` is a 2xx. A refused cell must append nothing to the log.
//!
//! The callers, their one permission, and what they try:
//! - `R`, `iam.roles.write`: grant every `iam.*` to a role it holds (its own in M), or create
//!   a role with every `iam.*`;
//! - `A`, `iam.assignments.write`: assign `tenant_admin` to itself (in C: to a user of C);
//! - `G`, `iam.groups.write`: join a group holding `tenant_admin` (in C: add a user of C);
//! - `S`, `iam.service_accounts.write`: rotate the secret of a service account holding
//!   `tenant_admin` (and log in as it);
//! - `U`, `iam.users.write`: reset the second factor of a user holding `tenant_admin`.

use std::fmt::Write as _;

use reqwest::Method;
use serde_json::{json, Value};

use super::{call, child_of, create, group, service_account, user, Answer, Caller};
use crate::auth::{role_id, user_with_role, PASSWORD};
use crate::helpers::TestApp;

/// Expected outcomes, `own (M) | child (C)`, each `R A G S U`.
const EXPECTED: &str = "
grant-all-iam-to-held-role    x f f f f | x f f f f
create-role-with-all-iam      x f f f f | x f f f f
grant-what-it-holds           + f f f f | + f f f f
assign-tenant-admin-to-self   f x f f f | f x f f f
assign-what-it-holds          f + f f f | f + f f f
join-admin-group              f f x f f | f f x f f
join-group-of-what-it-holds   f f + f f | f f + f f
rotate-admin-secret           f f f x f | f f f x f
rotate-empty-account-secret   f f f + f | f f f + f
reset-admin-mfa               f f f f x | f f f f x
reset-plain-user-mfa          f f f f + | f f f f + ";

const CALLERS: [(&str, &str); 5] = [
    ("R", "iam.roles.write"),
    ("A", "iam.assignments.write"),
    ("G", "iam.groups.write"),
    ("S", "iam.service_accounts.write"),
    ("U", "iam.users.write"),
];

/// What each tenant holds for the attempts, made by the platform administrator.
struct Targets {
    tenant: String,
    tenant_admin: String,
    /// Holds `tenant_admin`.
    admin_group: String,
    admin_account: String,
    admin_user: String,
    /// Holds nothing, or only the permission of the caller that uses it.
    empty_account: String,
    plain_user: String,
}

async fn assign(app: &TestApp, t: &str, role: &str, subject: (&str, &str)) {
    let r = app
        .post(
            &format!("/v1/tenants/{t}/assignments"),
            json!({"role_id": role, subject.0: subject.1}),
        )
        .await;
    assert_eq!(r.status(), 201, "assigning {role} to {subject:?}");
}

async fn role_with(app: &TestApp, t: &str, permissions: &[&str]) -> String {
    let name = crate::helpers::slug("r");
    let path = format!("/v1/tenants/{t}/roles");
    create(
        app,
        &path,
        json!({"name": name, "permissions": permissions}),
    )
    .await
}

async fn targets(app: &TestApp, t: &str, admin_name: &str) -> Targets {
    let tenant_admin = role_id(app, t, "tenant_admin").await;
    let admin_group = group(app, t).await;
    assign(app, t, &tenant_admin, ("group_id", &admin_group)).await;
    let admin_account = service_account(app, t).await;
    assign(
        app,
        t,
        &tenant_admin,
        ("service_account_id", &admin_account),
    )
    .await;
    Targets {
        tenant: t.to_owned(),
        admin_user: user_with_role(app, t, admin_name, "tenant_admin").await,
        tenant_admin,
        admin_group,
        admin_account,
        empty_account: service_account(app, t).await,
        plain_user: user(app, t).await,
    }
}

/// The request of one cell: `me` is the caller's own user id (in M).
async fn request(
    app: &TestApp,
    attempt: &str,
    t: &Targets,
    me: &str,
    own: bool,
    holds: &str,
) -> (Method, String, Option<Value>) {
    let tid = &t.tenant;
    let all_iam: Vec<String> = charter::domain::permission_registry::CHARTER_PERMISSIONS
        .iter()
        .map(|(name, _)| name.to_string())
        .collect();
    // Who gets the grant: the caller itself in M; a user of C (which the caller could have
    // created as a puppet) in the child.
    let subject = || async {
        if own {
            me.to_owned()
        } else {
            user(app, tid).await
        }
    };
    match attempt {
        "grant-all-iam-to-held-role" => {
            let role = if own {
                own_role(app, tid, me).await
            } else {
                role_with(app, tid, &["iam.roles.write"]).await
            };
            let path = format!("/v1/tenants/{tid}/roles/{role}/permissions");
            (Method::POST, path, Some(json!({"permissions": all_iam})))
        }
        "create-role-with-all-iam" => {
            let body = json!({"name": crate::helpers::slug("r"), "permissions": all_iam});
            (Method::POST, format!("/v1/tenants/{tid}/roles"), Some(body))
        }
        "grant-what-it-holds" => {
            let role = role_with(app, tid, &["iam.users.read"]).await;
            let path = format!("/v1/tenants/{tid}/roles/{role}/permissions");
            (Method::POST, path, Some(json!({"permissions": [holds]})))
        }
        "assign-tenant-admin-to-self" => {
            let body = json!({"role_id": t.tenant_admin, "user_id": subject().await});
            (
                Method::POST,
                format!("/v1/tenants/{tid}/assignments"),
                Some(body),
            )
        }
        "assign-what-it-holds" => {
            let role = role_with(app, tid, &[holds]).await;
            let body = json!({"role_id": role, "user_id": subject().await});
            (
                Method::POST,
                format!("/v1/tenants/{tid}/assignments"),
                Some(body),
            )
        }
        "join-admin-group" => {
            let subject = subject().await;
            let path = format!(
                "/v1/tenants/{tid}/groups/{}/members/{subject}",
                t.admin_group
            );
            (Method::PUT, path, None)
        }
        "join-group-of-what-it-holds" => {
            let g = group(app, tid).await;
            let role = role_with(app, tid, &[holds]).await;
            assign(app, tid, &role, ("group_id", &g)).await;
            let subject = subject().await;
            (
                Method::PUT,
                format!("/v1/tenants/{tid}/groups/{g}/members/{subject}"),
                None,
            )
        }
        "rotate-admin-secret" | "rotate-empty-account-secret" => {
            let account = if attempt == "rotate-admin-secret" {
                &t.admin_account
            } else {
                &t.empty_account
            };
            let path = format!("/v1/tenants/{tid}/service-accounts/{account}/rotate-secret");
            (Method::POST, path, None)
        }
        "reset-admin-mfa" | "reset-plain-user-mfa" => {
            let target = if attempt == "reset-admin-mfa" {
                &t.admin_user
            } else {
                &t.plain_user
            };
            let path = format!("/v1/tenants/{tid}/users/{target}/mfa/reset");
            (Method::POST, path, None)
        }
        other => panic!("no request for {other}"),
    }
}

/// The caller's own helpdesk role in M (the one it holds).
async fn own_role(app: &TestApp, t: &str, me: &str) -> String {
    let page: Value = app
        .get(&format!(
            "/v1/tenants/{t}/assignments?user_id={me}&limit=10"
        ))
        .await
        .json()
        .await
        .unwrap();
    page["items"][0]["role_id"].as_str().unwrap().to_owned()
}

fn classify(answer: &Answer) -> char {
    match (answer.status, answer.problem.as_deref()) {
        (200..=299, _) => '+',
        (403, Some("privilege-escalation")) => 'x',
        (403, Some("forbidden")) => 'f',
        _ => '!',
    }
}

#[tokio::test]
async fn delegated_callers_cannot_hand_out_more_than_they_hold() {
    let app = crate::helpers::spawn_app().await;
    let m = child_of(&app, None).await;
    let c = child_of(&app, Some(&m)).await;
    // The callers: users of M, each with a role holding one write permission.
    let mut callers = Vec::new();
    for (name, permission) in CALLERS {
        let role = role_with(&app, &m, &[permission]).await;
        let username = format!("helpdesk-{}", name.to_lowercase());
        let r = app
            .post(
                &format!("/v1/tenants/{m}/users"),
                json!({"username": username, "email": format!("{username}@example.com"),
                       "password": PASSWORD}),
            )
            .await;
        assert_eq!(r.status(), 201);
        let id = r.json::<Value>().await.unwrap()["data"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        assign(&app, &m, &role, ("user_id", &id)).await;
        callers.push((id, username, permission));
    }
    let tenants = [
        targets(&app, &m, "m-root").await,
        targets(&app, &c, "c-root").await,
    ];
    app.projected().await;
    let mut sessions = Vec::new();
    for (_, username, _) in &callers {
        sessions.push(Caller::user(&app, &m, username).await);
    }

    let mut mismatches = Vec::new();
    let mut printed = String::new();
    let (mut refused, mut allowed) = (0, 0);
    for line in EXPECTED.lines().filter(|l| !l.trim().is_empty()) {
        let mut words = line.split_whitespace();
        let attempt = words.next().unwrap();
        let want: Vec<char> = words
            .filter(|w| *w != "|")
            .map(|w| w.chars().next().unwrap())
            .collect();
        assert_eq!(want.len(), 10, "{attempt}: 10 cells");
        let _ = write!(printed, "{attempt:<30}");
        for (target, t) in tenants.iter().enumerate() {
            let _ = write!(printed, "{}", if target == 0 { "" } else { " |" });
            for (who, session) in sessions.iter_mut().enumerate() {
                let (me, _, holds) = &callers[who];
                let (method, path, body) = request(&app, attempt, t, me, target == 0, holds).await;
                let answer = call(&app, session, &method, &path, &body).await;
                let got = classify(&answer);
                let expected = want[target * 5 + who];
                let cell = format!(
                    "{attempt} [{} {}]",
                    ["own", "child"][target],
                    CALLERS[who].0
                );
                if got != expected {
                    mismatches.push(format!(
                        "{cell}: expected {expected}, got {} {:?} ({method} {path})",
                        answer.status, answer.problem
                    ));
                }
                if got == '+' {
                    allowed += 1;
                } else {
                    refused += 1;
                    if answer.appended {
                        mismatches.push(format!("{cell}: refused, yet the log grew"));
                    }
                }
                let _ = write!(printed, " {got}");
            }
        }
        printed.push('\n');
    }
    println!(
        "{:<30} {:^9} | {:^9}\n{:<30} R A G S U | R A G S U\n{printed}",
        "attempt  (x privilege-escalation, f forbidden, + allowed)", "own (M)", "child (C)", ""
    );
    println!(
        "delegation matrix: {} cells, {allowed} allowed, {refused} refused, {} mismatches",
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
