//! Encrypted links: every connection to PostgreSQL goes over TLS verified against the
//! configured authority (`database.tls.mode: verify-full`), and a server whose certificate the
//! authority did not sign, or whose name is not the host's, is refused. The test cluster of
//! `ops/lib.sh` offers TLS with a certificate of its own private CA (`$TLS_DIR`).

use std::path::PathBuf;

use charter::config::{Config, TlsMode};

use crate::helpers::{env, fresh_database, slug, spawn_with_config, superuser, test_config};

fn tls_file(name: &str) -> PathBuf {
    let path = PathBuf::from(env("TLS_DIR")).join(name);
    assert!(
        path.exists(),
        "{} is missing; run through ops/test",
        path.display()
    );
    path
}

fn verify_full(config: &mut Config, ca: &str) {
    config.database.tls.mode = TlsMode::VerifyFull;
    config.database.tls.ca_file = Some(tls_file(ca));
}

#[tokio::test]
async fn every_database_connection_is_tls_verified_against_the_configured_authority() {
    let database = fresh_database().await;
    let mut config = test_config(&database);
    verify_full(&mut config, "ca.crt");
    let app = spawn_with_config(config).await;
    app.create_tenant(&slug("tls")).await;
    app.projected().await;
    // Every connection Charter holds to its database, whatever it is for (requests, the
    // projection runners, the relay, the LISTEN connections), is encrypted.
    let admin = superuser(&app).await;
    let rows = admin
        .query(
            "SELECT a.application_name, s.ssl, s.version FROM pg_stat_activity a \
             JOIN pg_stat_ssl s USING (pid) \
             WHERE a.datname = $1 AND a.application_name LIKE 'charter%'",
            &[&database],
        )
        .await
        .unwrap();
    assert!(rows.len() >= 3, "Charter's connections: {}", rows.len());
    for row in &rows {
        let (name, ssl, version): (String, bool, Option<String>) =
            (row.get(0), row.get(1), row.get(2));
        assert!(ssl, "{name} is not encrypted");
        println!("{name}: TLS {}", version.unwrap_or_default());
    }
}

#[tokio::test]
async fn a_server_the_authority_did_not_sign_or_of_another_name_is_refused() {
    // Another authority: the server's certificate does not chain to it.
    let database = fresh_database().await;
    let mut config = test_config(&database);
    verify_full(&mut config, "other-ca.crt");
    let refused = charter::startup::Application::build(config.clone())
        .await
        .err()
        .expect("a server signed by another authority is refused");
    let message = refused.to_string();
    println!("another authority: {message}");
    assert!(message.to_lowercase().contains("certificate"), "{message}");
    // The right authority, but a host name the certificate does not carry (the address is
    // the same server's): verify-full checks the name too.
    verify_full(&mut config, "ca.crt");
    let url = url::Url::parse(&env("DATABASE_URL")).unwrap();
    let port = url.port().unwrap();
    for (field, role) in [("url", "charter"), ("migration", "charter_owner")] {
        let dsn = format!(
            "host=charter.invalid hostaddr=127.0.0.1 port={port} user={role} password={role} \
             dbname={database}"
        );
        match field {
            "url" => config.database.url = secrecy::SecretString::from(dsn),
            _ => config.database.migration_url = Some(secrecy::SecretString::from(dsn)),
        }
    }
    let refused = charter::startup::Application::build(config.clone())
        .await
        .err()
        .expect("a certificate of another name is refused");
    let message = refused.to_string();
    println!("another name: {message}");
    assert!(message.to_lowercase().contains("certificate"), "{message}");
    // Misconfigurations are named.
    config.database.tls.ca_file = Some(PathBuf::from("/nonexistent/ca.pem"));
    let refused = charter::startup::Application::build(config)
        .await
        .err()
        .expect("a missing CA file is refused");
    assert!(refused.to_string().contains("ca_file"), "{refused}");
}
