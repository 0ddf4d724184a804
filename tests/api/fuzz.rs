//! Schemathesis (PyPI) against `GET /openapi.json`, authenticated as a tenant administrator:
//! every operation, over a thousand generated requests, no 5xx, and every answer conforms to
//! the document (status, content type, headers, body schema).
//!
//! The administrator holds `tenant_admin` in a tenant P and fuzzes P's child tenant T (and,
//! for the operations on a tenant itself, a sibling S it may delete or block): T's users,
//! roles and assignments are all fair game without the fuzzer deleting or disabling itself.
//! Schemathesis logs in itself (`[auth.dynamic]`) and logs in again on a `401`, since the
//! fuzzer's own writes can make its token stale (`policy_version`), and `logout` ends it.
//!
//! `ops/test` installs the pinned schemathesis into a venv cached outside the clone and
//! exports `SCHEMATHESIS_BIN`; without it this test fails. `CHARTER_BLESS=1` also records the
//! summary in `bench/results/fuzz-latest.txt`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde_json::{json, Value};
use uuid::Uuid;

use crate::auth::{user_with_role, PASSWORD};
use crate::entitlements::id_of;
use crate::helpers::{login_eventually, slug, spawn_app_with, TestApp};

/// The checks that fail the run: no server error, and the response conforms to the document.
/// (Not the negative/positive data checks: those judge how strict the document's schemas are
/// against the server's rules, which are stricter by design, e.g. a name that trims to
/// nothing is a documented `422`.)
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
                      response_headers_conformance,response_schema_conformance";
/// Fixed, so a run can be reproduced (`st` prints it, and `st replay` takes a case id).
const SEED: &str = "20261122";
/// Test cases per operation and phase; with 68 operations well over a thousand requests.
const MAX_EXAMPLES: &str = "25";
/// The wall-clock budget of the main pass, in seconds: it stops generating when it is spent.
const BUDGET_S: &str = "120";
/// The least number of requests the run must have made.
const MIN_REQUESTS: usize = 1_000;

fn schemathesis() -> PathBuf {
    let bin = std::env::var("SCHEMATHESIS_BIN").unwrap_or_else(|_| {
        panic!(
            "SCHEMATHESIS_BIN is not set: run the suite with ops/test, which installs \
             schemathesis (ensure_schemathesis in ops/lib.sh)"
        )
    });
    let bin = PathBuf::from(bin);
    assert!(
        bin.is_file(),
        "SCHEMATHESIS_BIN={} does not exist; run ops/test",
        bin.display()
    );
    bin
}

/// The sum of `charter_http_requests_total` over every route and status.
async fn requests_served(app: &TestApp) -> u64 {
    crate::helpers::metric_sum(app, "charter_http_requests_total", &[]).await as u64
}

/// What one `st run` did, from its NDJSON event stream.
#[derive(Default)]
struct Pass {
    /// Requests sent (one per recorded interaction).
    requests: usize,
    /// Requests per `METHOD path-template`.
    per_operation: BTreeMap<String, usize>,
    /// Responses per status.
    per_status: BTreeMap<u16, usize>,
    /// Each failed check: operation, check, status, and a `curl` to reproduce it.
    failures: Vec<String>,
    /// Errors of the run itself (schema loading, a crash of a phase).
    errors: Vec<String>,
    /// `st`'s own summary (from its warnings, or `SUMMARY`, to the end of its output).
    summary: String,
    exit: Option<i32>,
}

fn read_ndjson(path: &Path, pass: &mut Pass) {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("the NDJSON report {}: {e}", path.display()));
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let event: Value = serde_json::from_str(line).expect("an NDJSON line");
        if let Some(error) = event.get("NonFatalError") {
            pass.errors
                .push(format!("{}: {}", error["label"], error["value"]));
        }
        if let Some(error) = event.get("FatalError") {
            pass.errors.push(format!("fatal: {}", error["exception"]));
        }
        let Some(finished) = event.get("ScenarioFinished") else {
            continue;
        };
        let recorder = &finished["recorder"];
        let label = recorder["label"].as_str().unwrap_or("?");
        let interactions = recorder["interactions"].as_object();
        for (case_id, interaction) in interactions.into_iter().flat_map(|m| m.iter()) {
            pass.requests += 1;
            if let Some(status) = interaction
                .pointer("/response/status_code")
                .and_then(Value::as_u64)
            {
                *pass.per_status.entry(status as u16).or_default() += 1;
            }
            // The operation: the case's method and path template (not the filled-in URI).
            let case = &recorder["cases"][case_id]["value"];
            let operation = format!(
                "{} {}",
                case["method"].as_str().unwrap_or("?"),
                case["path"].as_str().unwrap_or("?")
            );
            *pass.per_operation.entry(operation).or_default() += 1;
        }
        let checks = recorder["checks"].as_object();
        for (case_id, results) in checks.into_iter().flat_map(|m| m.iter()) {
            for result in results.as_array().into_iter().flatten() {
                if result["status"] != "success" {
                    let interaction = &recorder["interactions"][case_id];
                    let failure = &result["failure_info"]["failure"];
                    pass.failures.push(format!(
                        "{label}: {} {} ({}) on {} {} -> {}",
                        result["name"].as_str().unwrap_or("?"),
                        result["status"],
                        failure["title"].as_str().unwrap_or_default(),
                        interaction
                            .pointer("/request/method")
                            .unwrap_or(&Value::Null),
                        interaction.pointer("/request/uri").unwrap_or(&Value::Null),
                        interaction
                            .pointer("/response/status_code")
                            .unwrap_or(&Value::Null),
                    ));
                }
            }
        }
    }
}

/// Runs `st run` on the document of the app at `address`, in `dir` (its configuration, its
/// reports, and whatever else it writes).
fn run_schemathesis(address: &str, dir: &Path) -> Pass {
    let reports = dir.join("report");
    let ndjson = reports.join("events.ndjson");
    let mut command = Command::new(schemathesis());
    command
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .arg("--config-file")
        .arg(dir.join("schemathesis.toml"))
        .arg("run")
        .arg(format!("{address}/openapi.json"))
        .args(["--checks", CHECKS])
        .args(["--max-examples", MAX_EXAMPLES])
        .args(["--seed", SEED])
        // One worker: the run is reproducible, and CPython 3.11's parser is not thread-safe
        // (hypothesis describing a filter from several threads at once dies with
        // "AST constructor recursion depth mismatch").
        .args(["--workers", "1"])
        .args(["--max-time", BUDGET_S])
        .args(["--request-timeout", "30"])
        // No example database: every run generates from the seed alone.
        .args(["--generation-database", "none"])
        .args(["--report", "junit,ndjson"])
        .arg("--report-dir")
        .arg(&reports)
        .arg("--report-ndjson-path")
        .arg(&ndjson)
        .arg("--no-color");
    let started = Instant::now();
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("could not run {}: {e}", schemathesis().display()));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let mut pass = Pass {
        exit: output.status.code(),
        ..Pass::default()
    };
    if !ndjson.is_file() {
        panic!(
            "schemathesis wrote no report; exit {:?}\n{stdout}\n{stderr}",
            pass.exit
        );
    }
    read_ndjson(&ndjson, &mut pass);
    // From st's warnings (which operations only ever answered 401/403 or 404, and why) to
    // its summary.
    let from = stdout
        .find("=== WARNINGS ===")
        .or_else(|| stdout.find("=== SUMMARY ==="));
    pass.summary = match from {
        Some(at) => stdout[stdout[..at].rfind('\n').map_or(0, |n| n + 1)..].to_owned(),
        None => stdout.clone(),
    };
    println!(
        "schemathesis: {} requests in {:.0?}\n{}",
        pass.requests,
        started.elapsed(),
        pass.summary
    );
    if !pass.failures.is_empty() || !pass.errors.is_empty() {
        // The full output: the failures with a curl and an `st replay` id each.
        println!("{stdout}\n{stderr}");
    }
    pass
}

/// Who the fuzzer is, and where it aims.
struct Target {
    /// The administrator's tenant (slug), username and password, for `[auth.dynamic]`.
    login: (String, String, String),
    /// The tenant the fuzzer works in.
    tenant: String,
    /// The tenant the operations on a tenant itself (read, patch, delete, block) act on.
    sacrificial: String,
    /// A resource of each kind in `tenant`, by the name of its path parameter.
    ids: Vec<(&'static str, String)>,
}

/// The fuzzer's configuration (`schemathesis.toml`): how it logs in, and the path ids it
/// uses. `{tenant_id}` is mostly the target tenant, and each other path id often names a real
/// resource in it, so the handlers run on data rather than answering 404; the rest of the
/// time they are whatever the fuzzer generates.
fn write_config(dir: &Path, target: &Target) {
    let quoted = |s: &str| serde_json::to_string(s).unwrap();
    let (tenant, username, password) = &target.login;
    let mut toml = format!(
        "# Written by tests/api/fuzz.rs for one run.\n\
         [generation]\n\
         # U+0000 included: PostgreSQL cannot store it, so the API must refuse it.\n\
         allow-x00 = true\n\n\
         # Log in as the administrator, and again whenever a request answers 401.\n\
         [auth.dynamic.openapi.bearer]\n\
         path = \"/v1/auth/login\"\n\
         payload = {{ tenant = {}, username = {}, password = {} }}\n\
         extract_selector = \"/access_token\"\n\
         retry_on = [401]\n\n",
        quoted(tenant),
        quoted(username),
        quoted(password),
    );
    let mut parameters = String::from(
        "[parameters]\n\"path.tenant_id\" = { dictionary = \"tenant_id\", probability = 0.9 }\n",
    );
    toml.push_str(&format!(
        "[dictionaries.tenant_id]\nvalues = [{}]\n[dictionaries.sacrificial]\nvalues = [{}]\n",
        quoted(&target.tenant),
        quoted(&target.sacrificial)
    ));
    for (name, id) in &target.ids {
        toml.push_str(&format!(
            "[dictionaries.{name}]\nvalues = [{}]\n",
            quoted(id)
        ));
        parameters.push_str(&format!(
            "\"path.{name}\" = {{ dictionary = \"{name}\", probability = 0.6 }}\n"
        ));
    }
    toml.push('\n');
    toml.push_str(&parameters);
    toml.push_str(
        "\n# Deleting or blocking the target tenant would leave only 404s and 409s to test.\n\
         [[operations]]\n\
         include-operation-id = [\"getTenant\", \"updateTenant\", \"deleteTenant\", \"blockTenant\", \"unblockTenant\"]\n\
         parameters = { \"path.tenant_id\" = { dictionary = \"sacrificial\", probability = 0.9 } }\n",
    );
    std::fs::write(dir.join("schemathesis.toml"), toml).unwrap();
}

/// Creates a tenant under `parent` and returns its id.
async fn child_tenant(app: &TestApp, prefix: &str, parent: &str) -> String {
    id_of(
        app.post(
            "/v1/tenants",
            json!({"name": prefix, "slug": slug(prefix), "parent_id": parent}),
        )
        .await,
    )
    .await
}

#[tokio::test]
async fn schemathesis_finds_no_server_error_and_no_response_off_the_document() {
    let bin = schemathesis();
    // A wrong password in `mfa/disable` or `auth/password` counts toward the lockout, and the
    // fuzzer sends many: locked out, it could not log in again once its token went stale.
    let app = spawn_app_with(|c| {
        c.auth.lockout_threshold = u32::MAX;
        // The fuzzer logs in again as the same user after every 401 (its own changes make its
        // token stale), far more often than a person would; the limits have tests of their own.
        c.rate_limit.per_user = charter::config::LimitConfig::new(1_000_000, 100_000);
        c.rate_limit.per_client = charter::config::LimitConfig::new(1_000_000, 100_000);
    })
    .await;
    let admin_tenant = slug("fuzz");
    let parent = app.create_tenant(&admin_tenant).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    user_with_role(&app, &parent, "fuzz-admin", "tenant_admin").await;
    let tenant = child_tenant(&app, "fuzzed", &parent).await;
    let sacrificial = child_tenant(&app, "sacrificial", &parent).await;
    // One resource of each kind in the target tenant.
    let in_tenant = format!("/v1/tenants/{tenant}");
    let workspace = app.create_workspace(&tenant, "fuzzed").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let user = id_of(
        app.post(
            &format!("{in_tenant}/users"),
            json!({"username": "target", "email": "target@example.com"}),
        )
        .await,
    )
    .await;
    let group = id_of(
        app.post(&format!("{in_tenant}/groups"), json!({"name": "targets"}))
            .await,
    )
    .await;
    let role = id_of(
        app.post(
            &format!("{in_tenant}/roles"),
            json!({"name": "target", "permissions": ["iam.users.read"]}),
        )
        .await,
    )
    .await;
    let account = id_of(
        app.post(
            &format!("{in_tenant}/service-accounts"),
            json!({"name": "target"}),
        )
        .await,
    )
    .await;
    let assignment = id_of(
        app.post(
            &format!("{in_tenant}/assignments"),
            json!({"role_id": role, "group_id": group}),
        )
        .await,
    )
    .await;
    // The administrator can log in (the read models have caught up with its grant).
    login_eventually(&app.address, &admin_tenant, "fuzz-admin", PASSWORD).await;

    let dir = std::env::temp_dir().join(format!("charter-fuzz-{}", Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    write_config(
        &dir,
        &Target {
            login: (admin_tenant, "fuzz-admin".into(), PASSWORD.into()),
            tenant,
            sacrificial,
            ids: vec![
                ("workspace_id", workspace),
                ("user_id", user),
                ("group_id", group),
                ("role_id", role),
                ("service_account_id", account),
                ("assignment_id", assignment),
            ],
        },
    );

    let served_before = requests_served(&app).await;
    // st blocks; the app keeps serving on the runtime meanwhile.
    let (address, work) = (app.address.clone(), dir.clone());
    let pass = tokio::task::spawn_blocking(move || run_schemathesis(&address, &work))
        .await
        .unwrap();
    let served = requests_served(&app).await - served_before;

    // Every documented operation, and whether the fuzzer called it. (Its other calls are
    // undocumented methods on documented paths, which must answer 405.)
    let mut documented = BTreeMap::new();
    for (path, item) in crate::openapi::document()["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let operation = format!("{} {path}", method.to_uppercase());
            let calls = pass.per_operation.get(&operation).copied().unwrap_or(0);
            documented.insert(operation, calls);
        }
    }
    let called = documented.values().filter(|n| **n > 0).count();
    let version = Command::new(&bin)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let record = format!(
        "# tests/api/fuzz.rs — {version}, seed {SEED}, max-examples {MAX_EXAMPLES}, 1 worker, \
         budget {BUDGET_S}s\n\
         # checks: {CHECKS}\n\
         # as a tenant administrator (tenant_admin in the parent of the fuzzed tenant)\n\n\
         requests sent (NDJSON report): {}\n\
         requests served (charter_http_requests_total): {served}\n\
         documented operations called: {called} of {}\n\
         failures: {}\n\
         errors: {}\n\
         responses by status: {}\n\n\
         {}",
        pass.requests,
        documented.len(),
        pass.failures.len(),
        pass.errors.len(),
        pass.per_status
            .iter()
            .map(|(s, n)| format!("{s}={n}"))
            .collect::<Vec<_>>()
            .join(" "),
        pass.summary.trim_end(),
    );
    println!("{record}");
    let ok = pass.failures.is_empty() && pass.errors.is_empty() && pass.exit == Some(0);
    if ok && std::env::var("CHARTER_BLESS").is_ok() {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("bench/results/fuzz-latest.txt");
        std::fs::write(&path, format!("{record}\n")).unwrap();
    }
    if ok {
        std::fs::remove_dir_all(&dir).ok();
    } else {
        println!("schemathesis's reports are kept in {}", dir.display());
    }

    assert!(
        pass.failures.is_empty(),
        "schemathesis found {} failure(s):\n{}",
        pass.failures.len(),
        pass.failures.join("\n")
    );
    assert!(
        pass.errors.is_empty(),
        "schemathesis errors: {:?}",
        pass.errors
    );
    assert_eq!(pass.exit, Some(0), "st's exit status");
    assert!(
        !pass.per_status.keys().any(|s| *s >= 500),
        "server errors: {:?}",
        pass.per_status
    );
    // st never fuzzes the operation that serves the document it loads (it fetched it to
    // start; tests/api/openapi.rs checks what it serves).
    let uncalled: Vec<&String> = documented
        .iter()
        .filter(|(operation, calls)| **calls == 0 && *operation != "GET /openapi.json")
        .map(|(operation, _)| operation)
        .collect();
    assert!(uncalled.is_empty(), "operations never called: {uncalled:?}");
    assert!(
        pass.requests >= MIN_REQUESTS,
        "only {} requests were generated (at least {MIN_REQUESTS})",
        pass.requests
    );
    // The server's own count: what the report says was sent did arrive.
    assert!(
        served >= pass.requests as u64,
        "the service counted {served} requests, the report {}",
        pass.requests
    );
}
