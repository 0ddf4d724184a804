//! The closed-loop scenarios: what each one's clients send.

use std::sync::Arc;

use clap::Args;
use serde_json::json;
use uuid::Uuid;

use super::{Common, Plan};
use crate::api::create_tenants;

#[derive(Args, Debug, Clone)]
pub struct WorkspacesArgs {
    #[command(flatten)]
    common: Common,
    /// Number of tenants to create (clients are spread round-robin); default: one per client.
    #[arg(long)]
    tenants: Option<usize>,
}

#[derive(Args, Debug, Clone)]
pub struct GetArgs {
    #[command(flatten)]
    common: Common,
    /// Sends `Authorization: Bearer <token>` with every request.
    #[arg(long, env = "CHARTER_BENCH_BEARER")]
    bearer: Option<String>,
}

#[derive(Args, Debug, Clone)]
pub struct EntitlementsArgs {
    #[command(flatten)]
    common: Common,
    /// Tenant id (from seed-entitlements).
    #[arg(long)]
    tenant: Uuid,
    /// File with one user id per line.
    #[arg(long)]
    ids_file: String,
    /// Ask `check` for this permission (tenant-wide) instead of the lookup.
    #[arg(long)]
    check_permission: Option<String>,
}

#[derive(Args, Debug, Clone)]
pub struct ClientCredentialsArgs {
    #[command(flatten)]
    common: Common,
    #[arg(long)]
    client_id: String,
    #[arg(long, env = "CHARTER_CLIENT_SECRET")]
    client_secret: String,
}

/// A closed-loop scenario with its flags.
pub enum Target {
    Workspaces(WorkspacesArgs),
    Get(GetArgs),
    Entitlements(EntitlementsArgs),
    ClientCredentials(ClientCredentialsArgs),
}

impl Target {
    pub fn common(&self) -> &Common {
        match self {
            Target::Workspaces(a) => &a.common,
            Target::Get(a) => &a.common,
            Target::Entitlements(a) => &a.common,
            Target::ClientCredentials(a) => &a.common,
        }
    }

    /// Sets the scenario up (tenants, the user ids) and builds its requests.
    pub(super) async fn plan(self, client: &reqwest::Client) -> Result<Plan, String> {
        match self {
            Target::Workspaces(a) => workspaces(a, client).await,
            Target::Get(a) => Ok(get(a)),
            Target::Entitlements(a) => entitlements(a),
            Target::ClientCredentials(a) => Ok(client_credentials(a)),
        }
    }
}

/// splitmix64: cheap, well-mixed pseudo-random numbers without an extra dependency.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Each client POSTs new workspaces to its tenant (created first).
async fn workspaces(a: WorkspacesArgs, client: &reqwest::Client) -> Result<Plan, String> {
    let common = a.common;
    let base = common.url.trim_end_matches('/').to_owned();
    let n = a.tenants.unwrap_or(common.clients).max(1);
    eprintln!("charter-loadgen: creating {n} tenants at {base}");
    let ids = create_tenants(client, &base, n)
        .await
        .map_err(|e| format!("tenant setup failed: {e}"))?;
    let urls: Arc<Vec<String>> = Arc::new(
        ids.iter()
            .map(|id| format!("{base}/v1/tenants/{id}/workspaces"))
            .collect(),
    );
    let run_tag = Uuid::new_v4().simple().to_string()[..8].to_owned();
    Ok(Plan {
        name: "workspaces",
        make: Arc::new(move |cl: &reqwest::Client, client_no: usize, seq: u64| {
            let url = &urls[client_no % urls.len()];
            cl.post(url)
                .json(&json!({"name": format!("w-{run_tag}-{client_no}-{seq}")}))
        }),
        extra: json!({"url": base, "tenants": n}),
    })
}

/// GET one URL.
fn get(a: GetArgs) -> Plan {
    let url = a.common.url.clone();
    Plan {
        name: "get",
        make: Arc::new(move |cl: &reqwest::Client, _, _| match &a.bearer {
            Some(token) => cl.get(&url).bearer_auth(token),
            None => cl.get(&url),
        }),
        extra: json!({"url": a.common.url}),
    }
}

/// A random seeded user's entitlements, or with --check-permission a `check` for them.
fn entitlements(a: EntitlementsArgs) -> Result<Plan, String> {
    let (tenant, ids_file) = (a.tenant, &a.ids_file);
    let base = a.common.url.trim_end_matches('/').to_owned();
    let text = std::fs::read_to_string(ids_file).map_err(|e| format!("reading {ids_file}: {e}"))?;
    let ids = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| match &a.check_permission {
            None => format!("{base}/v1/tenants/{tenant}/users/{l}/entitlements"),
            Some(_) => l.to_owned(),
        })
        .collect::<Vec<_>>();
    if ids.is_empty() {
        return Err(format!("no user ids in {ids_file}"));
    }
    let n = ids.len();
    let urls = Arc::new(ids);
    Ok(match a.check_permission {
        None => Plan {
            name: "entitlements",
            make: Arc::new(move |cl: &reqwest::Client, client_no: usize, seq: u64| {
                let r = mix((client_no as u64) << 40 ^ seq);
                cl.get(&urls[(r % urls.len() as u64) as usize])
            }),
            extra: json!({"url": base, "tenant_id": tenant, "users": n}),
        },
        Some(permission) => {
            let url = format!("{base}/v1/tenants/{tenant}/check");
            let extra = json!({"url": url, "tenant_id": tenant, "users": n,
                               "permission": permission});
            // The bodies, prebuilt: the generator must not be what is measured.
            let bodies: Arc<Vec<String>> = Arc::new(
                urls.iter()
                    .map(|u| json!({"user_id": u, "permission": permission}).to_string())
                    .collect(),
            );
            Plan {
                name: "check",
                make: Arc::new(move |cl: &reqwest::Client, client_no: usize, seq: u64| {
                    let r = mix((client_no as u64) << 40 ^ seq);
                    cl.post(&url)
                        .header("content-type", "application/json")
                        .body(bodies[(r % bodies.len() as u64) as usize].clone())
                }),
                extra,
            }
        }
    })
}

/// POST /v1/oauth/token with the client credentials, form-encoded.
fn client_credentials(a: ClientCredentialsArgs) -> Plan {
    let url = format!("{}/v1/oauth/token", a.common.url.trim_end_matches('/'));
    let form = Arc::new([
        ("grant_type", "client_credentials".to_owned()),
        ("client_id", a.client_id.clone()),
        ("client_secret", a.client_secret),
    ]);
    Plan {
        name: "token-issue",
        make: Arc::new(move |cl: &reqwest::Client, _, _| cl.post(&url).form(&*form)),
        extra: json!({"url": a.common.url, "client_id": a.client_id}),
    }
}
