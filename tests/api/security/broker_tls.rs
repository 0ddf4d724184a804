//! TLS to the broker. tansu 0.6 speaks plaintext only (its `--cert` flag is accepted, and the
//! listener stays plaintext), so a TLS-terminating proxy stands in front of a private tansu
//! that advertises the proxy: every byte between the relay's librdkafka and the broker then
//! crosses a verified TLS link, exactly as with a broker that terminates TLS itself. The relay
//! publishes through it with `kafka.security_protocol: ssl` and the local CA, and refuses the
//! link when told to trust another authority. SASL cannot be tested: tansu 0.6 has no SASL
//! mechanism to authenticate against.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use charter::config::KafkaSecurity;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};

use crate::faults::{free_port, Broker};
use crate::helpers::{env, fresh_database, slug, spawn_with_config, test_config, TestApp};

fn tls_file(name: &str) -> PathBuf {
    PathBuf::from(env("TLS_DIR")).join(name)
}

/// Terminates TLS (the local CA's server certificate, for `localhost`) on a port of its own
/// and forwards the plaintext to `upstream`. Counts the handshakes that completed.
struct TlsFront {
    handshakes: Arc<AtomicUsize>,
}

impl TlsFront {
    async fn start(port: u16, upstream: u16) -> TlsFront {
        let chain = CertificateDer::pem_file_iter(tls_file("server.crt"))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(tls_file("server.key")).unwrap();
        let config =
            rustls::ServerConfig::builder_with_provider(charter_log::pg::crypto_provider())
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(chain, key)
                .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let handshakes = Arc::new(AtomicUsize::new(0));
        let counted = handshakes.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (acceptor, counted) = (acceptor.clone(), counted.clone());
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(client).await else {
                        return;
                    };
                    counted.fetch_add(1, Ordering::SeqCst);
                    let Ok(mut broker) = TcpStream::connect(("127.0.0.1", upstream)).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut broker).await;
                });
            }
        });
        TlsFront { handshakes }
    }
}

/// An app whose relay publishes to `localhost:<port>` over TLS, trusting `ca`.
async fn app_through(port: u16, ca: &str) -> TestApp {
    let database = fresh_database().await;
    let mut config = test_config(&database);
    config.relay.enabled = true;
    config.kafka.brokers = format!("localhost:{port}");
    config.kafka.security_protocol = KafkaSecurity::Ssl;
    config.kafka.ssl_ca_location = Some(tls_file(ca).display().to_string());
    config.kafka.message_timeout_ms = 5_000;
    spawn_with_config(config).await
}

async fn outbox(app: &TestApp) -> i64 {
    let client = app.pool.get().await.unwrap();
    client
        .query_one("SELECT count(*) FROM outbox", &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_publishes_over_verified_tls_and_refuses_an_unknown_authority() {
    let dir = std::env::temp_dir().join(format!("charter-tls-{}", uuid::Uuid::now_v7().simple()));
    let broker_port = free_port();
    let front_port = free_port();
    let mut broker = Broker::advertising(
        dir.clone(),
        broker_port,
        &format!("tcp://localhost:{front_port}"),
    );
    let front = TlsFront::start(front_port, broker_port).await;

    // Trusting the local CA: everything is published, through TLS only.
    let app = app_through(front_port, "ca.crt").await;
    for i in 0..3 {
        app.create_tenant(&slug(&format!("tls{i}"))).await;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while outbox(&app).await > 0 {
        assert!(
            Instant::now() < deadline,
            "the relay did not publish over TLS: {}",
            app.ops("/ready").await.text().await.unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let handshakes = front.handshakes.load(Ordering::SeqCst);
    println!("published through the TLS front after {handshakes} handshakes");
    assert!(handshakes >= 1);

    // Trusting another authority: the relay refuses the broker, nothing is published, and
    // /ready says why.
    // (Through a front of its own, so its handshakes are counted apart.)
    let second_port = free_port();
    let second = TlsFront::start(second_port, broker_port).await;
    let refusing = app_through(second_port, "other-ca.crt").await;
    refusing.create_tenant(&slug("untrusted")).await;
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut detail = Value::Null;
    while Instant::now() < deadline {
        detail = refusing.ops("/ready").await.json().await.unwrap();
        if detail["relay"]["detail"]["state"] == "degraded" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!("untrusted broker: {}", detail["relay"]);
    assert_eq!(detail["relay"]["detail"]["state"], "degraded", "{detail}");
    assert!(outbox(&refusing).await > 0, "nothing went out");
    assert_eq!(
        second.handshakes.load(Ordering::SeqCst),
        0,
        "no TLS session was completed with an untrusted broker"
    );
    broker.stop();
    let _ = std::fs::remove_dir_all(dir);
}
