//! `verify-tokens`: Charter's verification library (`charter::token::Verifier::verify_uncached`:
//! every check of the function behind the HTTP extractor and introspection, with the signature
//! verified on every call) against raw ring ES256 verification of the same signature, each
//! run on the same number of tasks for the same time, in one process; then `verify` itself on
//! the same token again (the signature remembered), for reference. Prints one JSON line.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use clap::Args;
use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_FIXED};
use secrecy::SecretString;
use serde_json::json;

#[derive(Args, Debug, Clone)]
pub struct VerifyArgs {
    /// The service's database (the verifier reads its keyring and read models).
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    #[arg(long, env = "CHARTER_KEYS__MASTER_KEY")]
    master_key: String,
    /// A valid access token of that service.
    #[arg(long, env = "CHARTER_TOKEN")]
    token: String,
    #[arg(long)]
    issuer: String,
    #[arg(long, default_value = "charter")]
    audience: String,
    #[arg(long, default_value = "10s", value_parser = crate::duration::parse)]
    duration: Duration,
    /// Tasks (and runtime threads) verifying concurrently.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
}

/// Runs `op` on `tasks` tasks for `duration`; returns successful operations per second.
pub(crate) async fn rate<F, Fut>(tasks: usize, duration: Duration, op: F) -> f64
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let op = Arc::new(op);
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let (op, stop, done, failed) = (op.clone(), stop.clone(), done.clone(), failed.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let (mut ok, mut bad) = (0u64, 0u64);
                    for _ in 0..64 {
                        if op().await {
                            ok += 1
                        } else {
                            bad += 1
                        }
                    }
                    done.fetch_add(ok, Ordering::Relaxed);
                    failed.fetch_add(bad, Ordering::Relaxed);
                    // A CPU-bound loop must let the runtime breathe.
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    // The clock runs on its own thread: busy workers may starve the runtime's timers.
    let stopper = stop.clone();
    std::thread::spawn(move || {
        std::thread::sleep(duration);
        stopper.store(true, Ordering::Relaxed);
    });
    for h in handles {
        let _ = h.await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    assert_eq!(failed.load(Ordering::Relaxed), 0, "a verification failed");
    done.load(Ordering::Relaxed) as f64 / elapsed
}

pub async fn verify(a: VerifyArgs) -> i32 {
    let database = charter::config::DatabaseConfig {
        url: SecretString::from(a.database_url.clone()),
        pool_size: 4,
        ..Default::default()
    };
    let pool = match charter::db::pool(&database) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: pool: {e}");
            return 1;
        }
    };
    let master = match charter::crypto::MasterKey::parse(&a.master_key) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: master key: {e}");
            return 1;
        }
    };
    let keys = match charter::token::KeyStore::load(
        &pool.get().await.expect("a connection"),
        master,
    )
    .await
    {
        Ok(k) => k,
        Err(e) => {
            eprintln!("error: keyring: {e}");
            return 1;
        }
    };
    let auth = charter::config::AuthConfig {
        issuer: a.issuer.clone(),
        audience: a.audience.clone(),
        ..Default::default()
    };
    let verifier = charter::token::Verifier::new(keys.clone(), pool.clone(), &auth);
    let shutdown = tokio_util::sync::CancellationToken::new();
    verifier.spawn_invalidation(
        charter::db::service(&database).expect("database config"),
        database.heartbeat(),
        shutdown.clone(),
    );
    // Let the invalidation channel connect (until then nothing is cached), then check once.
    tokio::time::sleep(Duration::from_millis(500)).await;
    if let Err(e) = verifier.verify(&a.token).await {
        eprintln!("error: the token does not verify: {e}");
        return 1;
    }

    // The raw baseline: ring verifying the same signature over the same bytes.
    let parts: Vec<&str> = a.token.split('.').collect();
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).expect("header"))
            .expect("header json");
    let jwk = keys
        .current()
        .jwks
        .iter()
        .find(|k| Some(k.kid.as_str()) == header["kid"].as_str())
        .cloned()
        .expect("the token's key");
    let mut point = vec![4u8];
    point.extend(URL_SAFE_NO_PAD.decode(&jwk.x).expect("x"));
    point.extend(URL_SAFE_NO_PAD.decode(&jwk.y).expect("y"));
    let message = Arc::new(format!("{}.{}", parts[0], parts[1]).into_bytes());
    let signature = Arc::new(URL_SAFE_NO_PAD.decode(parts[2]).expect("signature"));
    let point = Arc::new(point);

    let tasks = a.threads.max(1);
    eprintln!(
        "verify-tokens: {tasks} tasks, {:?} each for ring and for the library",
        a.duration
    );
    let ring_rate = rate(tasks, a.duration, move || {
        let (m, s, p) = (message.clone(), signature.clone(), point.clone());
        async move {
            UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &p[..])
                .verify(&m, &s)
                .is_ok()
        }
    })
    .await;
    let token = Arc::new(a.token.clone());
    let v = verifier.clone();
    // Every call verifies the signature, as for a token never seen before.
    let library_rate = rate(tasks, a.duration, move || {
        let (v, t) = (v.clone(), token.clone());
        async move { v.verify_uncached(&t).await.is_ok() }
    })
    .await;
    // The same token again: what a service pays per request once it has seen the token.
    let token = Arc::new(a.token.clone());
    let v = verifier.clone();
    let cached_rate = rate(tasks, a.duration / 4, move || {
        let (v, t) = (v.clone(), token.clone());
        async move { v.verify(&t).await.is_ok() }
    })
    .await;
    shutdown.cancel();
    let ratio = library_rate / ring_rate;
    println!(
        "{}",
        json!({
            "scenario": "token-verify",
            "library_per_s": library_rate.round(),
            "library_cached_per_s": cached_rate.round(),
            "ring_per_s": ring_rate.round(),
            "ratio": (ratio * 1000.0).round() / 1000.0,
            "tasks": tasks,
            "duration_s": a.duration.as_secs_f64(),
        })
    );
    0
}
