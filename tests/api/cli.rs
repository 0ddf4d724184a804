//! The `charter` binary the way the README runs it after `ops/up`: in a shell that sourced
//! the `stack.env` that `ops/lib.sh`'s `write_stack_env` writes (here pointed at the test's
//! own database), with no other `CHARTER_*` variable.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::helpers::{env, spawn_app, url_for, TestApp, TEST_MASTER_KEY};

/// A `stack.env` for `app`'s database, written by `write_stack_env` itself.
fn write_stack_env(app: &TestApp) -> PathBuf {
    let database = app.database_name();
    let path = std::env::temp_dir().join(format!("charter-stack-{database}.env"));
    let repo = env!("CARGO_MANIFEST_DIR");
    let status = without_charter_variables(Command::new("bash"))
        .arg("-c")
        .arg(
            r#"set -e; source "$1/ops/lib.sh"
               STACK_ENV="$2" SECRETS_FILE=/nonexistent SERVICE_PID_FILE=/nonexistent
               write_stack_env"#,
        )
        .arg("write_stack_env")
        .arg(repo)
        .arg(&path)
        .env("DATABASE_URL", url_for("DATABASE_URL", &database))
        .env(
            "DATABASE_OWNER_URL",
            url_for("DATABASE_OWNER_URL", &database),
        )
        .env(
            "DATABASE_ADMIN_URL",
            url_for("DATABASE_ADMIN_URL", &database),
        )
        .env("KAFKA_BROKERS", env("KAFKA_BROKERS"))
        .env("CHARTER_MASTER_KEY", TEST_MASTER_KEY)
        .status()
        .expect("run bash");
    assert!(status.success(), "write_stack_env failed: {status}");
    path
}

/// `command` without the `CHARTER_*` variables of the test process.
fn without_charter_variables(mut command: Command) -> Command {
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("CHARTER_") {
            command.env_remove(name);
        }
    }
    command
}

/// `set -a; . STACK_ENV; set +a` then `charter ARGS`, from the repository, on a blocking
/// thread.
async fn charter_after_sourcing(stack_env: &Path, args: &[&str]) -> Output {
    let mut command = without_charter_variables(Command::new("bash"));
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("-c")
        .arg(r#"set -a; . "$1"; set +a; shift; exec "$@""#)
        .arg("charter-after-sourcing")
        .arg(stack_env)
        .arg(env!("CARGO_BIN_EXE_charter"))
        .args(args);
    tokio::task::spawn_blocking(move || command.output().expect("run charter"))
        .await
        .unwrap()
}

fn shown(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test]
async fn the_cli_works_after_sourcing_stack_env_as_the_readme_says() {
    let app = spawn_app().await;
    app.projected().await;
    let stack_env = write_stack_env(&app);
    let text = std::fs::read_to_string(&stack_env).unwrap();
    for setting in [
        "CHARTER_DATABASE__URL=",
        "CHARTER_DATABASE__MIGRATION_URL=",
        "CHARTER_DATABASE__TLS__MODE=verify-full",
        "CHARTER_DATABASE__TLS__CA_FILE=",
        "CHARTER_KAFKA__BROKERS=",
        "CHARTER_KEYS__MASTER_KEY=",
        "DATABASE_URL=",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(setting)),
            "{setting} in {text}"
        );
    }

    let verify = charter_after_sourcing(&stack_env, &["audit", "verify"]).await;
    assert_eq!(verify.status.code(), Some(0), "{}", shown(&verify));
    let report: Value = serde_json::from_slice(&verify.stdout).expect("a JSON report");
    assert!(
        report["verified"].as_u64().unwrap() >= 1 && report["first_break"].is_null(),
        "{report}"
    );

    let replay = charter_after_sourcing(&stack_env, &["replay"]).await;
    assert_eq!(replay.status.code(), Some(0), "{}", shown(&replay));
    let stdout = String::from_utf8_lossy(&replay.stdout);
    assert!(
        stdout.contains("identical") && !stdout.contains("DIFFERS"),
        "{}",
        shown(&replay)
    );
    assert!(
        String::from_utf8_lossy(&replay.stderr).contains("shadow and live are identical"),
        "{}",
        shown(&replay)
    );

    // The same file without the service's URL: the error names the setting and both ways.
    let without_url: String = text
        .lines()
        .filter(|l| !l.starts_with("CHARTER_DATABASE__URL="))
        .map(|l| format!("{l}\n"))
        .collect();
    let partial = stack_env.with_extension("without-url.env");
    std::fs::write(&partial, without_url).unwrap();
    let missing = charter_after_sourcing(&partial, &["audit", "verify"]).await;
    assert_eq!(missing.status.code(), Some(1), "{}", shown(&missing));
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains(
            "charter: database.url: not set (set database.url in --config FILE, or CHARTER_DATABASE__URL)"
        ),
        "{}",
        shown(&missing)
    );
    let _ = std::fs::remove_file(&stack_env);
    let _ = std::fs::remove_file(&partial);
}
