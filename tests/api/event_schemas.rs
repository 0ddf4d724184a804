//! Every event the suite appends validates against its contract,
//! `schemas/events/<event_type>.v<schema_version>.json` (the `data` column).
//!
//! Each test's [`TestApp`] carries a [`CheckOnDrop`]: when the last app on a database goes (and
//! the test has not already failed), every row of that database's `events` table is validated,
//! and any violation, or an event whose schema file is missing, fails the test. So the whole
//! suite's traffic is checked, test by test, not a sample of it. (Tests that append synthetic
//! events straight into a bare database, without an app, are not Charter's traffic.)

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use serde_json::Value;
use tokio_postgres::{GenericClient, NoTls};

use crate::helpers::{slug, spawn_app, TestApp};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schemas/events")
}

/// A validator for every committed schema, by file name, compiled once per process.
fn validators() -> &'static HashMap<String, jsonschema::Validator> {
    static VALIDATORS: OnceLock<HashMap<String, jsonschema::Validator>> = OnceLock::new();
    VALIDATORS.get_or_init(|| {
        std::fs::read_dir(dir())
            .expect("schemas/events")
            .map(|entry| {
                let path = entry.unwrap().path();
                let schema: Value =
                    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
                let validator = jsonschema::options()
                    .should_validate_formats(true)
                    .build(&schema)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                (name, validator)
            })
            .collect()
    })
}

/// An event that breaks its contract.
#[derive(Debug)]
pub struct Violation {
    pub position: i64,
    pub event_type: String,
    pub schema_version: i32,
    pub problem: String,
}

/// Validates every event of the database `client` is connected to. Returns how many were
/// checked, and what is wrong with each that breaks its contract, in log position order.
pub async fn violations(
    client: &impl GenericClient,
) -> Result<(usize, Vec<Violation>), tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT position, event_type, schema_version, data FROM events ORDER BY position",
            &[],
        )
        .await?;
    let validators = validators();
    let mut found = Vec::new();
    for row in &rows {
        let (position, event_type, schema_version, data): (i64, String, i32, Value) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        let file = format!("{event_type}.v{schema_version}.json");
        let problem = match validators.get(&file) {
            None => Some(format!("there is no schemas/events/{file}")),
            Some(validator) => {
                let errors: Vec<String> = validator
                    .iter_errors(&data)
                    .map(|e| format!("{e} (at {})", e.instance_path()))
                    .collect();
                (!errors.is_empty()).then(|| format!("{}; data: {data}", errors.join("; ")))
            }
        };
        if let Some(problem) = problem {
            found.push(Violation {
                position,
                event_type,
                schema_version,
                problem,
            });
        }
    }
    Ok((rows.len(), found))
}

/// Validates every event of the database at `url`, on a thread and a runtime of its own (a
/// `Drop` cannot await). `Err` describes the violations.
pub fn check_database(url: &str) -> Result<usize, String> {
    let url = url.to_owned();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let (client, connection) = tokio_postgres::connect(&url, NoTls)
                .await
                .map_err(|e| format!("cannot connect to check the events: {e}"))?;
            tokio::spawn(connection);
            let (checked, found) = violations(&client)
                .await
                .map_err(|e| format!("cannot read the events: {e}"))?;
            if found.is_empty() {
                return Ok(checked);
            }
            let listed: Vec<String> = found
                .iter()
                .take(20)
                .map(|v| {
                    format!(
                        "  position {}: {} v{}: {}",
                        v.position, v.event_type, v.schema_version, v.problem
                    )
                })
                .collect();
            Err(format!(
                "{} of {checked} events break their schemas/events contract:\n{}",
                found.len(),
                listed.join("\n")
            ))
        })
    })
    .join()
    .expect("the event check does not panic")
}

/// Held by every [`TestApp`]: when the last app on its database is dropped, validates that
/// database's events (see the module documentation).
pub struct CheckOnDrop {
    url: String,
}

/// How many apps are alive on each database.
fn live() -> &'static Mutex<HashMap<String, usize>> {
    static LIVE: OnceLock<Mutex<HashMap<String, usize>>> = OnceLock::new();
    LIVE.get_or_init(Default::default)
}

impl CheckOnDrop {
    /// `url` connects to the app's database (its service role may read `events`).
    pub fn new(url: &str) -> Self {
        *live().lock().unwrap().entry(url.to_owned()).or_default() += 1;
        CheckOnDrop {
            url: url.to_owned(),
        }
    }
}

impl Drop for CheckOnDrop {
    fn drop(&mut self) {
        let last = {
            let mut live = live().lock().unwrap();
            let count = live.get_mut(&self.url).expect("registered");
            *count -= 1;
            *count == 0 && live.remove(&self.url).is_some()
        };
        // A test that already failed has said enough; a second panic would abort.
        if !last || std::thread::panicking() {
            return;
        }
        let started = std::time::Instant::now();
        match check_database(&self.url) {
            Ok(checked) => eprintln!(
                "event schemas: all {checked} events validate ({} ms)",
                started.elapsed().as_millis()
            ),
            Err(report) => panic!("{report}"),
        }
    }
}

/// A connection to `app`'s database as the schema owner, who may append by hand.
async fn owner(app: &TestApp) -> tokio_postgres::Client {
    use secrecy::ExposeSecret;
    let url = url::Url::parse(app.config.database.url.expose_secret()).unwrap();
    let name = url.path().trim_start_matches('/').to_owned();
    let owner = crate::helpers::url_for("DATABASE_OWNER_URL", &name);
    let (client, connection) = tokio_postgres::connect(&owner, NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

/// Appends, as the owner, a copy of the first `tenant.created` with `data`, and an event of a
/// type that has no schema.
const FORGE: &str = "
    INSERT INTO events (event_id, stream_type, stream_id, stream_version, tenant_id,
                        event_type, schema_version, data, metadata)
    SELECT gen_random_uuid(), stream_type, stream_id, 1000 + n, tenant_id,
           CASE n WHEN 1 THEN event_type ELSE 'tenant.teleported' END, schema_version,
           $1::jsonb, metadata
    FROM (SELECT * FROM events WHERE event_type = 'tenant.created' ORDER BY position LIMIT 1) e,
         generate_series(1, 2) n";

/// The checker finds a row whose data breaks its schema, and a row with no schema at all,
/// among valid ones.
#[tokio::test]
async fn invalid_and_unknown_events_are_reported() {
    let app = spawn_app().await;
    app.create_tenant(&slug("valid")).await;
    let mut db = owner(&app).await;
    let (checked, found) = violations(&db).await.unwrap();
    assert!(checked > 0 && found.is_empty(), "{found:?}");
    let tx = db.transaction().await.unwrap();
    let broken: Value = serde_json::json!({"tenant_id": "not a uuid", "name": 7});
    tx.execute(FORGE, &[&broken]).await.unwrap();
    let (all, found) = violations(&tx).await.unwrap();
    assert_eq!(all, checked + 2);
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(
        (found[0].event_type.as_str(), found[0].schema_version),
        ("tenant.created", 1)
    );
    for expected in ["/tenant_id", "/name", "\"slug\" is a required property"] {
        assert!(
            found[0].problem.contains(expected),
            "{expected} in {}",
            found[0].problem
        );
    }
    assert_eq!(found[1].event_type, "tenant.teleported");
    assert!(found[1]
        .problem
        .contains("no schemas/events/tenant.teleported.v1.json"));
    assert!(found[0].position < found[1].position);
    tx.rollback().await.unwrap();
}

/// The same check runs when a test's app goes, and fails the test.
#[tokio::test]
async fn dropping_the_app_fails_on_an_invalid_event() {
    let app = spawn_app().await;
    let db = owner(&app).await;
    db.execute(FORGE, &[&serde_json::json!({})]).await.unwrap();
    let failure = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(app)))
        .expect_err("the drop check fails");
    let report = failure
        .downcast_ref::<String>()
        .expect("a formatted report");
    assert!(report.contains("2 of "), "{report}");
    assert!(report.contains("tenant.created v1: "), "{report}");
    assert!(
        report.contains("tenant.teleported v1: there is no"),
        "{report}"
    );
}
