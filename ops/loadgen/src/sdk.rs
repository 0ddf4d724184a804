//! `sdk`: the consumer SDK (`charter-client`) in process, as a service runs it.
//!
//! 1. Per request: `Verifier::verify_uncached` and `Guard::check` (ES256 verify with the JWKS
//!    found by discovery, the policy cache's staleness check, the scope and permission
//!    checks; the signature checked on every call) against raw ring ES256
//!    verification of the same token's signature, on the same number of tasks for the same
//!    time. Beside them, the peer: cedar-policy evaluating an equivalent RBAC policy for the
//!    same permission check (entities built from the claims, as a service would per request),
//!    alone and after the same raw ring verify. Then `Guard::authorize` on the same token
//!    again (the verified-token cache), for reference.
//! 2. Staleness: `--changes` role changes through Charter's API, one after another at
//!    `--change-rate` per second; for each, the time from sending the command (and from its
//!    response, i.e. after the commit) until the SDK's policy cache rejects the token's
//!    claims as of the version before it (the token's own claims, with that version).
//!
//! Prints one JSON line. Built only with feature `cedar` (ops/bench turns it on).

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use charter_client::guard::Resource;
use charter_client::{Claims, Guard, PolicyCache, PolicyCacheConfig, Verifier, VerifierConfig};
use clap::Args;
use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_FIXED};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::tokens::rate;

#[derive(Args, Debug, Clone)]
pub struct SdkArgs {
    /// Charter's issuer URL (discovery, JWKS, and the API for the role changes).
    #[arg(long)]
    issuer: String,
    #[arg(long, default_value = "charter")]
    audience: String,
    /// The brokers Charter publishes the policy topic to.
    #[arg(long, env = "KAFKA_BROKERS")]
    brokers: String,
    #[arg(long, default_value = "charter.iam.policy.v1")]
    policy_topic: String,
    /// A workspace-scoped access token holding `--permission`.
    #[arg(long, env = "CHARTER_SDK_TOKEN")]
    token: String,
    #[arg(long)]
    permission: String,
    /// An administrator's token, for the role changes.
    #[arg(long, env = "CHARTER_TOKEN")]
    admin_token: String,
    /// The role whose permissions the changes toggle (it must be in the token's tenant).
    #[arg(long)]
    role_id: Uuid,
    /// A registered permission the changes grant and revoke in turn.
    #[arg(long)]
    toggle_permission: String,
    #[arg(long, default_value = "10s", value_parser = crate::duration::parse)]
    duration: Duration,
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    #[arg(long, default_value_t = 200)]
    changes: usize,
    #[arg(long, default_value_t = 10.0)]
    change_rate: f64,
}

/// The cedar side: one policy per permission, and the entities a service builds from the
/// verified claims of each request.
struct Cedar {
    policies: cedar_policy::PolicySet,
    authorizer: cedar_policy::Authorizer,
}

impl Cedar {
    fn new(permission: &str) -> Self {
        // RBAC as Charter grants it: the principal holds the permission in the workspace the
        // resource belongs to, of the tenant the resource belongs to.
        let src = format!(
            r#"permit(principal, action == Action::"{permission}", resource is Workspace)
               when {{ principal.permissions.contains("{permission}")
                       && principal.workspace == resource
                       && principal.tenant == resource.tenant }};"#
        );
        Self {
            policies: src.parse().expect("the cedar policy parses"),
            authorizer: cedar_policy::Authorizer::new(),
        }
    }

    /// Builds the request's entities from `claims` and asks cedar.
    fn allows(&self, claims: &Value, action: &str, tenant: &str, workspace: &str) -> bool {
        let entities = json!([
            {
                "uid": {"type": "User", "id": claims["sub"]},
                "attrs": {
                    "permissions": claims["permissions"],
                    "tenant": {"__entity": {"type": "Tenant", "id": claims["tenant_id"]}},
                    "workspace": {"__entity": {"type": "Workspace", "id": claims["workspace_id"]}},
                },
                "parents": [],
            },
            {
                "uid": {"type": "Workspace", "id": workspace},
                "attrs": {"tenant": {"__entity": {"type": "Tenant", "id": tenant}}},
                "parents": [],
            },
        ]);
        let Ok(entities) = cedar_policy::Entities::from_json_value(entities, None) else {
            return false;
        };
        let uid = |ty: &str, id: &str| {
            cedar_policy::EntityUid::from_type_name_and_id(
                ty.parse().expect("a type name"),
                cedar_policy::EntityId::new(id),
            )
        };
        let request = cedar_policy::Request::new(
            uid("User", claims["sub"].as_str().unwrap_or_default()),
            uid("Action", action),
            uid("Workspace", workspace),
            cedar_policy::Context::empty(),
            None,
        )
        .expect("a request without a schema");
        self.authorizer
            .is_authorized(&request, &self.policies, &entities)
            .decision()
            == cedar_policy::Decision::Allow
    }
}

fn claims_json(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url")).expect("JSON")
}

/// Percentile `p` (0..=1) of sorted `values`, in ms.
fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    (sorted[i] * 1000.0).round() / 1000.0
}

pub async fn sdk(a: SdkArgs) -> i32 {
    let verifier = match Verifier::discover(VerifierConfig::new(&a.issuer, &a.audience)).await {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: discovery: {e}");
            return 1;
        }
    };
    let mut policy = PolicyCacheConfig::new(&a.brokers);
    policy.topic = a.policy_topic.clone();
    let cache = match PolicyCache::start(policy) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: policy cache: {e}");
            return 1;
        }
    };
    let guard = Guard::new(verifier, cache);
    if !guard.wait_ready(Duration::from_secs(60)).await {
        eprintln!("error: the policy cache did not catch up within 60 s");
        return 1;
    }
    let claims: Claims = match guard.verifier().verify(&a.token).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: the token does not verify: {e}");
            return 1;
        }
    };
    let resource = Resource {
        tenant_id: Some(claims.tenant_id),
        workspace_id: claims.workspace_id,
    };
    if let Err(e) = guard.authorize(&a.token, &a.permission, resource).await {
        eprintln!("error: the token is refused: {e}");
        return 1;
    }
    let raw_claims = claims_json(&a.token);
    let (tenant, workspace) = (
        claims.tenant_id.to_string(),
        claims
            .workspace_id
            .map(|w| w.to_string())
            .unwrap_or_default(),
    );
    let cedar = Arc::new(Cedar::new(&a.permission));
    if !cedar.allows(&raw_claims, &a.permission, &tenant, &workspace)
        || cedar.allows(
            &raw_claims,
            &a.permission,
            &tenant,
            &Uuid::now_v7().to_string(),
        )
    {
        eprintln!("error: the cedar policy does not decide as Charter's grants do");
        return 1;
    }

    // The raw baseline's key, from the same JWKS.
    let parts: Vec<&str> = a.token.split('.').collect();
    let kid = jsonwebtoken::decode_header(&a.token)
        .ok()
        .and_then(|h| h.kid)
        .unwrap_or_default();
    let jwks: Value = match async {
        reqwest::get(format!(
            "{}/.well-known/jwks.json",
            a.issuer.trim_end_matches('/')
        ))
        .await?
        .json()
        .await
    }
    .await
    {
        Ok(j) => j,
        Err(e) => {
            eprintln!("error: JWKS: {e}");
            return 1;
        }
    };
    let Some(jwk) = jwks["keys"]
        .as_array()
        .and_then(|keys| keys.iter().find(|k| k["kid"] == kid.as_str()))
    else {
        eprintln!("error: the token's key is not in the JWKS");
        return 1;
    };
    let mut point = vec![4u8];
    point.extend(
        URL_SAFE_NO_PAD
            .decode(jwk["x"].as_str().unwrap_or_default())
            .expect("x"),
    );
    point.extend(
        URL_SAFE_NO_PAD
            .decode(jwk["y"].as_str().unwrap_or_default())
            .expect("y"),
    );
    let message = Arc::new(format!("{}.{}", parts[0], parts[1]).into_bytes());
    let signature = Arc::new(URL_SAFE_NO_PAD.decode(parts[2]).expect("signature"));
    let point = Arc::new(point);
    let ring_verify = {
        let (m, s, p) = (message.clone(), signature.clone(), point.clone());
        move || {
            UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &p[..])
                .verify(&m, &s)
                .is_ok()
        }
    };

    let tasks = a.threads.max(1);
    eprintln!(
        "sdk: {tasks} tasks, {:?} for each of ring, the SDK, cedar, ring + cedar",
        a.duration
    );
    let ring = ring_verify.clone();
    let ring_rate = rate(tasks, a.duration, move || {
        let ok = ring();
        async move { ok }
    })
    .await;
    // Every call verifies the signature, as for a token never seen before.
    let (g, token, permission) = (
        guard.clone(),
        Arc::new(a.token.clone()),
        Arc::new(a.permission.clone()),
    );
    let sdk_rate = rate(tasks, a.duration, move || {
        let (g, t, p) = (g.clone(), token.clone(), permission.clone());
        async move {
            match g.verifier().verify_uncached(&t).await {
                Ok(claims) => g.check(&claims, &p, resource).is_ok(),
                Err(_) => false,
            }
        }
    })
    .await;
    // The same token again: what a service pays once it has seen the token.
    let (g, token, permission) = (
        guard.clone(),
        Arc::new(a.token.clone()),
        Arc::new(a.permission.clone()),
    );
    let cached_rate = rate(tasks, a.duration / 4, move || {
        let (g, t, p) = (g.clone(), token.clone(), permission.clone());
        async move { g.authorize(&t, &p, resource).await.is_ok() }
    })
    .await;
    let (c, cl, p, t, w) = (
        cedar.clone(),
        Arc::new(raw_claims.clone()),
        Arc::new(a.permission.clone()),
        Arc::new(tenant.clone()),
        Arc::new(workspace.clone()),
    );
    let cedar_rate = rate(tasks, a.duration, move || {
        let ok = c.allows(&cl, &p, &t, &w);
        async move { ok }
    })
    .await;
    let (c, p, t, w, tok) = (
        cedar.clone(),
        Arc::new(a.permission.clone()),
        Arc::new(tenant.clone()),
        Arc::new(workspace.clone()),
        Arc::new(a.token.clone()),
    );
    let ring = ring_verify.clone();
    let ring_cedar_rate = rate(tasks, a.duration, move || {
        // The peer's whole path: the same signature check, the claims parsed, cedar asked.
        let ok = ring() && c.allows(&claims_json(&tok), &p, &t, &w);
        async move { ok }
    })
    .await;

    // Staleness after role changes.
    let http = reqwest::Client::new();
    let url = format!(
        "{}/v1/tenants/{}/roles/{}/permissions",
        a.issuer.trim_end_matches('/'),
        claims.tenant_id,
        a.role_id
    );
    let interval = Duration::from_secs_f64(1.0 / a.change_rate.max(0.1));
    let (mut from_send, mut from_commit) = (Vec::new(), Vec::new());
    let (mut failures, mut granted) = (0usize, false);
    for _ in 0..a.changes {
        let next = Instant::now() + interval;
        let before = guard
            .policy()
            .effective_version(claims.tenant_id, claims.workspace_id);
        let mut old = claims.clone();
        old.policy_version = before;
        if guard.policy().check(&old).is_err() {
            // The previous change has not settled: wait it out rather than measure it.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        let sent = Instant::now();
        let request = if !granted {
            http.post(&url)
                .json(&json!({"permissions": [a.toggle_permission]}))
        } else {
            http.delete(format!("{url}/{}", a.toggle_permission))
        };
        let ok = request
            .bearer_auth(&a.admin_token)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        let answered = Instant::now();
        if !ok {
            failures += 1;
            continue;
        }
        granted = !granted;
        let deadline = Instant::now() + Duration::from_secs(10);
        while guard.policy().check(&old).is_ok() {
            if Instant::now() > deadline {
                eprintln!("error: a role change never made the old token stale");
                return 1;
            }
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
        let rejected = Instant::now();
        from_send.push((rejected - sent).as_secs_f64() * 1000.0);
        from_commit.push((rejected - answered).as_secs_f64() * 1000.0);
        tokio::time::sleep_until(next.into()).await;
    }
    from_send.sort_by(f64::total_cmp);
    from_commit.sort_by(f64::total_cmp);

    let ratio = sdk_rate / ring_rate;
    println!(
        "{}",
        json!({
            "scenario": "sdk",
            "sdk_per_s": sdk_rate.round(),
            "sdk_cached_per_s": cached_rate.round(),
            "ring_per_s": ring_rate.round(),
            "ratio": (ratio * 1000.0).round() / 1000.0,
            "cedar_check_per_s": cedar_rate.round(),
            "ring_plus_cedar_per_s": ring_cedar_rate.round(),
            "cedar_ratio": ((ring_cedar_rate / ring_rate) * 1000.0).round() / 1000.0,
            "tasks": tasks,
            "duration_s": a.duration.as_secs_f64(),
            "staleness": {
                "changes": from_send.len(),
                "failed_commands": failures,
                "change_rate_per_s": a.change_rate,
                "from_send_ms": {"p50": pct(&from_send, 0.5), "p99": pct(&from_send, 0.99), "max": pct(&from_send, 1.0)},
                "from_response_ms": {"p50": pct(&from_commit, 0.5), "p99": pct(&from_commit, 0.99), "max": pct(&from_commit, 1.0)},
            },
        })
    );
    0
}
