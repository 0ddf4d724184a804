//! `seed-entitlements`: one tenant with workspaces, a role, users and one tenant-wide
//! assignment per user, seeded through the HTTP API for the lookup and check scenarios.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::api::{self, call, create_tenants, id_of, kind_of, token_key, token_of};
use crate::stats::{hist, hist_json, round, ErrorTally};

#[derive(Args, Debug, Clone)]
pub struct SeedEntitlementsArgs {
    /// Base URL of the service.
    #[arg(long)]
    url: String,
    #[arg(long, default_value_t = 10_000)]
    users: usize,
    #[arg(long, default_value_t = 50)]
    workspaces: usize,
    /// Concurrent seeding clients.
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// Where to write the user ids.
    #[arg(long)]
    ids_file: String,
    /// Upper bound of the wait for the read models to catch up after seeding.
    #[arg(long, default_value = "300s", value_parser = crate::duration::parse)]
    consistency_wait: Duration,
    /// Upper bound of the whole seeding phase (commands).
    #[arg(long, default_value = "600s", value_parser = crate::duration::parse)]
    max_seed_time: Duration,
}

/// Waits (bounded) until `GET {base}/v1/tenants/{t}/users?consistency=tok&limit=1` is 200.
async fn wait_token(
    cl: &reqwest::Client,
    base: &str,
    tenant: Uuid,
    tok: &str,
    deadline: Instant,
) -> Result<u32, String> {
    let mut timeouts = 0u32;
    loop {
        let r = call(cl.get(format!(
            "{base}/v1/tenants/{tenant}/users?consistency={tok}&limit=1"
        )))
        .await;
        match &r {
            Ok((200, _)) => return Ok(timeouts),
            Ok((503, _)) => timeouts += 1,
            Err(e) if e.starts_with("transport") => timeouts += 1,
            _ => return Err(format!("consistency wait: {}: {:?}", kind_of(&r), r)),
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "read models did not pass {tok} in time ({timeouts} waits)"
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Seeds the tenant, waits for the read models, verifies two users and prints the JSON line.
pub async fn seed_entitlements(a: SeedEntitlementsArgs) -> i32 {
    let base = a.url.trim_end_matches('/').to_owned();
    let cl = api::client(a.clients * 2, Duration::from_secs(30));
    let t_start = Instant::now();
    let tenant = match create_tenants(&cl, &base, 1).await {
        Ok(v) => v[0],
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    eprintln!("seed: tenant {tenant}; {} workspaces", a.workspaces);
    let mut setup_tokens = Vec::new();
    let mut workspace_ids: Vec<String> = Vec::new();
    for i in 0..a.workspaces {
        let r = call(
            cl.post(format!("{base}/v1/tenants/{tenant}/workspaces"))
                .json(&json!({"name": format!("ws-{i:03}")})),
        )
        .await;
        match &r {
            Ok((201, v)) => {
                setup_tokens.extend(token_of(v));
                workspace_ids.extend(id_of(v).map(|w| w.to_string()));
            }
            _ => {
                eprintln!("error: create workspace: {r:?}");
                return 1;
            }
        }
    }
    let perms = ["bench.read", "bench.write", "bench.admin"];
    let r = call(
        cl.post(format!("{base}/v1/permissions/register"))
            .json(&json!({
                "service": "bench",
                "permissions": [
                    {"name": "bench.read", "label": "Read"},
                    {"name": "bench.write", "label": "Write"},
                    {"name": "bench.admin", "label": "Administer"}
                ]
            })),
    )
    .await;
    match &r {
        Ok((st, v)) if (200..300).contains(st) => setup_tokens.extend(token_of(v)),
        _ => {
            eprintln!("error: register permissions: {r:?}");
            return 1;
        }
    }
    let r = call(
        cl.post(format!("{base}/v1/tenants/{tenant}/roles"))
            .json(&json!({"name": "bench-role", "permissions": perms})),
    )
    .await;
    let role = match &r {
        Ok((201, v)) => {
            setup_tokens.extend(token_of(v));
            id_of(v)
        }
        _ => None,
    };
    let Some(role) = role else {
        eprintln!("error: create role: {r:?}");
        return 1;
    };
    // The role must be visible to the assignment command's validation; it reads the write side,
    // but wait anyway so that the projections see workspaces/role before the flood.
    if let Some(t) = setup_tokens.iter().max_by_key(|t| token_key(t)) {
        if let Err(e) = wait_token(&cl, &base, tenant, t, Instant::now() + a.consistency_wait).await
        {
            eprintln!("error: {e}");
            return 1;
        }
    }
    let setup_s = t_start.elapsed().as_secs_f64();

    eprintln!(
        "seed: {} users + {0} tenant-wide assignments with {} clients",
        a.users, a.clients
    );
    let t_cmd = Instant::now();
    let deadline = t_cmd + a.max_seed_time;
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..a.clients {
        let cl = cl.clone();
        let base = base.clone();
        let next = next.clone();
        let users = a.users;
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            let mut errs = ErrorTally::default();
            let mut last: Option<String> = None;
            let mut h = hist();
            let mut cmds = 0u64;
            let keep = |t: Option<String>, last: &mut Option<String>| {
                if let Some(t) = t {
                    if last.as_deref().is_none_or(|l| token_key(&t) > token_key(l)) {
                        *last = Some(t);
                    }
                }
            };
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= users || Instant::now() >= deadline {
                    break;
                }
                let t0 = Instant::now();
                let r = call(
                    cl.post(format!("{base}/v1/tenants/{tenant}/users"))
                        .json(&json!({
                            "username": format!("u{i:05}"),
                            "email": format!("u{i:05}@bench.example"),
                        })),
                )
                .await;
                let user = match &r {
                    Ok((201, v)) => id_of(v).inspect(|_| keep(token_of(v), &mut last)),
                    _ => None,
                };
                let Some(user) = user else {
                    errs.record_reply("user", &r);
                    continue;
                };
                cmds += 1;
                h.saturating_record(t0.elapsed().as_micros().max(1) as u64);
                let t1 = Instant::now();
                let r = call(
                    cl.post(format!("{base}/v1/tenants/{tenant}/assignments"))
                        .json(&json!({"role_id": role, "user_id": user})),
                )
                .await;
                match &r {
                    Ok((201, v)) => {
                        keep(token_of(v), &mut last);
                        cmds += 1;
                        h.saturating_record(t1.elapsed().as_micros().max(1) as u64);
                        ids.push((i, user));
                    }
                    _ => errs.record_reply("assignment", &r),
                }
            }
            (ids, errs, last, h, cmds)
        }));
    }
    let mut ids = Vec::new();
    let mut errs = ErrorTally::default();
    let mut lasts = Vec::new();
    let mut h = hist();
    let mut cmds = 0u64;
    for t in tasks {
        match t.await {
            Ok((i, e, l, hh, c)) => {
                ids.extend(i);
                errs.merge(e);
                lasts.extend(l);
                h.add(&hh).expect("same bounds");
                cmds += c;
            }
            Err(e) => {
                eprintln!("error: seeding task failed: {e}");
                return 1;
            }
        }
    }
    let seed_s = t_cmd.elapsed().as_secs_f64();
    ids.sort();
    let text: String = ids.iter().map(|(_, u)| format!("{u}\n")).collect();
    if let Err(e) = std::fs::write(&a.ids_file, text) {
        eprintln!("error: writing {}: {e}", a.ids_file);
        return 1;
    }
    let rate = cmds as f64 / seed_s.max(1e-9);
    eprintln!(
        "seed: {cmds} commands in {seed_s:.1}s = {rate:.0} cmd/s ({} users with assignment, {} errors)",
        ids.len(),
        errs.total()
    );
    if ids.is_empty() {
        eprintln!("error: no user was seeded: {:?}", errs.samples);
        return 1;
    }

    // Wait for the read models: the furthest token first, then every client's last one.
    let t_wait = Instant::now();
    let wait_deadline = t_wait + a.consistency_wait;
    lasts.sort_by_key(|t| std::cmp::Reverse(token_key(t)));
    let mut consistent = true;
    let mut wait_error = Value::Null;
    let mut n503 = 0;
    for t in &lasts {
        match wait_token(&cl, &base, tenant, t, wait_deadline).await {
            Ok(n) => n503 += n,
            Err(e) => {
                eprintln!("warning: {e}");
                consistent = false;
                wait_error = json!(e);
                break;
            }
        }
    }
    let wait_s = t_wait.elapsed().as_secs_f64();
    eprintln!("seed: read models caught up after {wait_s:.1}s (consistent: {consistent})");

    // Verify: the first and last seeded users hold bench.read tenant-wide (the lookup) and in
    // every workspace (one batch check per user over all the workspaces).
    let mut verify = Vec::new();
    let mut verified = consistent;
    for (_, u) in [ids[0], ids[ids.len() - 1]] {
        let r = call(cl.get(format!("{base}/v1/tenants/{tenant}/users/{u}/entitlements"))).await;
        let has_perm = match &r {
            Ok((200, v)) => v["tenant"]["permissions"]
                .to_string()
                .contains("bench.read"),
            _ => false,
        };
        let mut n = 0;
        for chunk in workspace_ids.chunks(100) {
            let items: Vec<Value> = chunk
                .iter()
                .map(|w| json!({"user_id": u, "permission": "bench.read", "workspace_id": w}))
                .collect();
            let r = call(
                cl.post(format!("{base}/v1/tenants/{tenant}/check"))
                    .json(&json!({"items": items})),
            )
            .await;
            if let Ok((200, v)) = &r {
                n += v["results"]
                    .as_array()
                    .map_or(0, |rs| rs.iter().filter(|r| r["allowed"] == true).count());
            }
        }
        verified &= n == a.workspaces && has_perm;
        verify.push(json!({"user_id": u, "workspaces": n, "has_bench_read": has_perm}));
    }
    let out = json!({
        "scenario": "seed-entitlements",
        "tenant_id": tenant,
        "workspaces": a.workspaces,
        "users_requested": a.users,
        "users_seeded": ids.len(),
        "clients": a.clients,
        "setup_s": round(setup_s, 2),
        "seed_commands": cmds,
        "seed_s": round(seed_s, 2),
        "seed_rate_cmd_s": rate.round(),
        "seed_latency": hist_json(&h),
        "errors": errs.total(),
        "error_kinds": errs.kinds,
        "error_samples": errs.samples,
        "consistency_wait_s": round(wait_s, 2),
        "consistency_503s": n503,
        "consistent": consistent,
        "consistency_error": wait_error,
        "verified": verified,
        "verify": verify,
        "ids_file": a.ids_file,
    });
    println!("{out}");
    0
}
