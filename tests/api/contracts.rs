//! `schemas/events/` is the public contract of every event type: it must list exactly the
//! types `charter-events` can emit, with the schema the code generates.
//! Regenerate with `CHARTER_BLESS=1 ops/test -- contracts`.

use std::collections::BTreeSet;
use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schemas/events")
}

#[test]
fn event_schemas_match_the_code() {
    let bless = std::env::var("CHARTER_BLESS").is_ok();
    let mut expected = BTreeSet::new();
    for schema in charter_events::schemas::all_schemas() {
        let path = dir().join(schema.file_name());
        let mut value = serde_json::to_value(&schema.schema).unwrap();
        value["$id"] = format!(
            "{}{}",
            charter_events::cloudevent::DATASCHEMA_BASE,
            schema.file_name()
        )
        .into();
        let text = serde_json::to_string_pretty(&value).unwrap() + "\n";
        if bless {
            std::fs::write(&path, &text).unwrap();
        }
        let committed = std::fs::read_to_string(&path)
            .unwrap_or_else(|_| panic!("{} is missing; run with CHARTER_BLESS=1", path.display()));
        assert_eq!(committed, text, "{} is out of date", path.display());
        expected.insert(schema.file_name());
    }
    let present: BTreeSet<String> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        present, expected,
        "schemas/events has files for unknown event types"
    );
}

/// `schemas/jwt-claims.json` is the contract of the access token's claims.
pub fn jwt_claims_schema_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schemas/jwt-claims.json")
}

#[test]
fn jwt_claims_schema_matches_the_code() {
    let mut value = serde_json::to_value(schemars::schema_for!(charter::token::Claims)).unwrap();
    value["$id"] = "https://charter.dev/schemas/jwt-claims.json".into();
    let text = serde_json::to_string_pretty(&value).unwrap() + "\n";
    let path = jwt_claims_schema_path();
    if std::env::var("CHARTER_BLESS").is_ok() {
        std::fs::write(&path, &text).unwrap();
    }
    let committed = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("{} is missing; run with CHARTER_BLESS=1", path.display()));
    assert_eq!(committed, text, "{} is out of date", path.display());
}

/// `schemas/policy-topic.json` is the contract of the policy topic's message values.
#[test]
fn policy_topic_schema_matches_the_code() {
    let mut value =
        serde_json::to_value(schemars::schema_for!(charter_events::policy::PolicyMessage)).unwrap();
    value["$id"] = "https://charter.dev/schemas/policy-topic.json".into();
    let text = serde_json::to_string_pretty(&value).unwrap() + "\n";
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schemas/policy-topic.json");
    if std::env::var("CHARTER_BLESS").is_ok() {
        std::fs::write(&path, &text).unwrap();
    }
    let committed = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("{} is missing; run with CHARTER_BLESS=1", path.display()));
    assert_eq!(committed, text, "{} is out of date", path.display());
}
