//! A "connections" service, as a platform team would write one on Charter: it registers
//! `connections.read` and `connections.create` at start-up, protects its routes with the
//! SDK, and keeps a policy cache, so that it never calls Charter on a request.
//!
//! Settings (environment):
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `CHARTER_ISSUER` | Charter's issuer URL | required |
//! | `CHARTER_AUDIENCE` | the tokens' audience | `charter` |
//! | `KAFKA_BROKERS` | the brokers Charter publishes to | required |
//! | `CHARTER_POLICY_TOPIC` | the policy topic | `charter.iam.policy.v1` |
//! | `CONNECTIONS_CLIENT_ID`, `CONNECTIONS_CLIENT_SECRET` | the service account that registers the permissions | required |
//! | `CONNECTIONS_LISTEN` | the address to serve on | `127.0.0.1:8090` |
//! | `CONNECTIONS_STALENESS_BUDGET_MS` | the policy cache's staleness budget | `30000` |
//! | `CONNECTIONS_ON_STALE` | `fail-closed` or `serve-stale` past the budget | `fail-closed` |
//! | `CONNECTIONS_UNPROTECTED` | `1` also serves the list route without any check under `/unprotected` (a benchmark's baseline; never in production) | unset |
//!
//! It prints `listening on http://<address>` once it serves.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use actix_web::{web, App, HttpResponse, HttpServer};
use charter_client::actix::{require_permission, Authorized};
use charter_client::register::{register_permissions, ClientCredentials, Permission};
use charter_client::{Guard, OnStale, PolicyCache, PolicyCacheConfig, Verifier, VerifierConfig};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

const SERVICE: &str = "connections";
const LIST: &str = "/tenants/{tenant_id}/workspaces/{workspace_id}/connections";

#[derive(Clone, Serialize)]
struct Connection {
    id: Uuid,
    name: String,
    created_by: Uuid,
}

#[derive(Deserialize)]
struct NewConnection {
    name: String,
}

/// The service's own data: connections by (tenant, workspace).
#[derive(Default)]
struct Store(Mutex<HashMap<(Uuid, Uuid), Vec<Connection>>>);

fn scope(path: &web::Path<(Uuid, Uuid)>) -> (Uuid, Uuid) {
    let (tenant, workspace) = **path;
    (tenant, workspace)
}

async fn list(store: web::Data<Store>, path: web::Path<(Uuid, Uuid)>) -> HttpResponse {
    let items = store.0.lock().unwrap().get(&scope(&path)).cloned();
    HttpResponse::Ok().json(serde_json::json!({ "items": items.unwrap_or_default() }))
}

async fn create(
    who: Authorized,
    store: web::Data<Store>,
    path: web::Path<(Uuid, Uuid)>,
    body: web::Json<NewConnection>,
) -> HttpResponse {
    let connection = Connection {
        id: Uuid::now_v7(),
        name: body.into_inner().name,
        created_by: who.sub,
    };
    let mut all = store.0.lock().unwrap();
    all.entry(scope(&path))
        .or_default()
        .push(connection.clone());
    HttpResponse::Created().json(connection)
}

async fn health(guard: web::Data<Guard>) -> HttpResponse {
    let policy = guard.policy().health();
    let body = serde_json::json!({
        "policy": policy,
        "jwks_fetches": guard.verifier().jwks_fetches(),
    });
    if policy.serving {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is required"))
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let issuer = env("CHARTER_ISSUER");
    let verifier = loop {
        let config = VerifierConfig::new(&issuer, env_or("CHARTER_AUDIENCE", "charter"));
        match Verifier::discover(config).await {
            Ok(v) => break v,
            Err(e) => {
                eprintln!("waiting for Charter: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    let credentials = ClientCredentials {
        client_id: env("CONNECTIONS_CLIENT_ID"),
        client_secret: env("CONNECTIONS_CLIENT_SECRET"),
    };
    let permissions = [
        Permission::new("connections.read", "Read connections"),
        Permission::new("connections.create", "Create connections"),
    ];
    let registered = register_permissions(
        verifier.discovery(),
        &credentials,
        SERVICE,
        &permissions,
        Duration::from_secs(60),
    )
    .await
    .unwrap_or_else(|e| panic!("registering the permissions: {e}"));
    println!("registered permissions ({} changes)", registered.changes);

    let mut policy = PolicyCacheConfig::new(env("KAFKA_BROKERS"));
    policy.topic = env_or("CHARTER_POLICY_TOPIC", &policy.topic);
    policy.staleness_budget = Duration::from_millis(
        env_or("CONNECTIONS_STALENESS_BUDGET_MS", "30000")
            .parse()
            .expect("CONNECTIONS_STALENESS_BUDGET_MS is a number of milliseconds"),
    );
    policy.on_stale = match env_or("CONNECTIONS_ON_STALE", "fail-closed").as_str() {
        "serve-stale" => OnStale::ServeStale,
        "fail-closed" => OnStale::FailClosed,
        other => panic!("CONNECTIONS_ON_STALE is fail-closed or serve-stale, not {other:?}"),
    };
    let cache = PolicyCache::start(policy).expect("start the policy cache");
    let guard = Guard::new(verifier, cache);
    if !guard.wait_ready(Duration::from_secs(60)).await {
        panic!(
            "the policy cache did not catch up within 60 s: {:?}",
            guard.policy().health()
        );
    }

    let unprotected = env_or("CONNECTIONS_UNPROTECTED", "") == "1";
    let store = web::Data::new(Store::default());
    let guard = web::Data::new(guard);
    let server = HttpServer::new(move || {
        let mut app = App::new()
            .app_data(guard.clone())
            .app_data(store.clone())
            .route("/health", web::get().to(health))
            .service(
                web::resource(LIST)
                    .route(
                        web::get()
                            .to(list)
                            .wrap(require_permission("connections.read")),
                    )
                    .route(
                        web::post()
                            .to(create)
                            .wrap(require_permission("connections.create")),
                    ),
            );
        if unprotected {
            app = app.route(&format!("/unprotected{LIST}"), web::get().to(list));
        }
        app
    })
    .bind(env_or("CONNECTIONS_LISTEN", "127.0.0.1:8090"))?;
    for address in server.addrs() {
        println!("listening on http://{address}");
    }
    server.run().await
}
