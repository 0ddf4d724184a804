//! Scenarios beyond the closed loop: entitlement seeding, the open-loop projection-lag probe
//! and the bare actix-web baseline server.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{create_tenants, BareArgs, LagArgs, SeedArgs};

/// splitmix64: cheap, well-mixed pseudo-random numbers without an extra dependency.
pub fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

pub fn with_runtime<F, Fut>(threads: usize, f: F) -> i32
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = i32>,
{
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()
        .expect("tokio runtime");
    let code = rt.block_on(f());
    rt.shutdown_timeout(Duration::from_secs(1));
    code
}

fn hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("histogram bounds")
}

fn hist_json(h: &Histogram<u64>) -> Value {
    let ms = |us: u64| us as f64 / 1000.0;
    if h.is_empty() {
        return json!({"count": 0, "p50_ms": 0.0, "p90_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0, "mean_ms": 0.0});
    }
    json!({
        "count": h.len(),
        "p50_ms": ms(h.value_at_quantile(0.50)),
        "p90_ms": ms(h.value_at_quantile(0.90)),
        "p99_ms": ms(h.value_at_quantile(0.99)),
        "p999_ms": ms(h.value_at_quantile(0.999)),
        "max_ms": ms(h.max()),
        "mean_ms": (h.mean() / 10.0).round() / 100.0,
    })
}

fn client(pool: usize, timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .default_headers(crate::auth_headers())
        .pool_max_idle_per_host(pool)
        .pool_idle_timeout(Duration::from_secs(90))
        .tcp_nodelay(true)
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(5))
        .no_proxy()
        .build()
        .expect("reqwest client")
}

/// Sends the request; returns (status, parsed body or the raw text as a JSON string).
async fn call(req: reqwest::RequestBuilder) -> Result<(u16, Value), String> {
    let resp = req.send().await.map_err(|e| format!("transport: {e}"))?;
    let status = resp.status().as_u16();
    let text = resp.text().await.map_err(|e| format!("body: {e}"))?;
    let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Ok((status, v))
}

fn kind_of(r: &Result<(u16, Value), String>) -> String {
    match r {
        Ok((st, v)) => {
            let t = v
                .get("type")
                .and_then(Value::as_str)
                .map(|t| t.rsplit('/').next().unwrap_or(t).to_owned());
            match t {
                Some(t) => format!("http_{st}:{t}"),
                None => format!("http_{st}"),
            }
        }
        Err(e) => e.split(':').next().unwrap_or("error").to_owned(),
    }
}

fn token_of(v: &Value) -> Option<String> {
    v.get("consistency_token")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// "<tx>.<pos>" -> (pos, tx) so that the max is the furthest position.
fn token_key(t: &str) -> (u64, u64) {
    let mut it = t.split('.');
    let tx = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let pos = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    (pos, tx)
}

fn id_of(v: &Value) -> Option<Uuid> {
    v.pointer("/data/id")
        .and_then(Value::as_str)
        .and_then(|s| Uuid::parse_str(s).ok())
}

#[derive(Default)]
struct Errs {
    kinds: BTreeMap<String, u64>,
    samples: BTreeMap<String, String>,
}

impl Errs {
    fn add(&mut self, what: &str, r: &Result<(u16, Value), String>) {
        let k = format!("{what}:{}", kind_of(r));
        *self.kinds.entry(k.clone()).or_default() += 1;
        let sample = match r {
            Ok((_, v)) => v.to_string().chars().take(300).collect(),
            Err(e) => e.clone(),
        };
        self.samples.entry(k).or_insert(sample);
    }
    fn total(&self) -> u64 {
        self.kinds.values().sum()
    }
    fn merge(&mut self, o: Errs) {
        for (k, v) in o.kinds {
            *self.kinds.entry(k).or_default() += v;
        }
        for (k, v) in o.samples {
            self.samples.entry(k).or_insert(v);
        }
    }
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

// ------------------------------------------------------------------ seed ----

pub async fn seed(a: SeedArgs) -> i32 {
    let base = a.url.trim_end_matches('/').to_owned();
    let cl = client(a.clients * 2, Duration::from_secs(30));
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
            let mut errs = Errs::default();
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
                    errs.add("user", &r);
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
                    _ => errs.add("assignment", &r),
                }
            }
            (ids, errs, last, h, cmds)
        }));
    }
    let mut ids = Vec::new();
    let mut errs = Errs::default();
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
        "setup_s": (setup_s * 100.0).round() / 100.0,
        "seed_commands": cmds,
        "seed_s": (seed_s * 100.0).round() / 100.0,
        "seed_rate_cmd_s": rate.round(),
        "seed_latency": hist_json(&h),
        "errors": errs.total(),
        "error_kinds": errs.kinds,
        "error_samples": errs.samples,
        "consistency_wait_s": (wait_s * 100.0).round() / 100.0,
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

// ------------------------------------------------------------------- lag ----

struct LagShared {
    commit: Histogram<u64>,
    lag: Histogram<u64>,
    /// commit -> the in-process entitlement index (GET policy-version?consistency=).
    index_lag: Histogram<u64>,
    rtt: Histogram<u64>,
    committed: u64,
    errs: Errs,
    lag_errs: Errs,
    lag_503s: u64,
    probes_skipped: u64,
}

pub async fn lag(a: LagArgs) -> i32 {
    if a.rate == 0 || a.sample_every == 0 || a.max_inflight == 0 {
        eprintln!("error: --rate, --sample-every and --max-inflight must be > 0");
        return 2;
    }
    let base = a.url.trim_end_matches('/').to_owned();
    let cl = client(a.max_inflight + 16, a.timeout);
    let tenant = match create_tenants(&cl, &base, 1).await {
        Ok(v) => v[0],
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    let run_tag = Uuid::new_v4().simple().to_string()[..8].to_owned();
    // One user, whose entitlements the index probe reads (the lookup answers from the index
    // alone, without a database round trip).
    let probe_user = match call(
        cl.post(format!("{base}/v1/tenants/{tenant}/users"))
            .json(&json!({"username": format!("probe-{run_tag}"), "email": format!("probe-{run_tag}@bench.example")})),
    )
    .await
    {
        Ok((201, v)) => match id_of(&v) {
            Some(id) => id,
            None => {
                eprintln!("error: the probe user has no id: {v}");
                return 1;
            }
        },
        other => {
            eprintln!("error: creating the probe user: {other:?}");
            return 1;
        }
    };
    let sem = Arc::new(tokio::sync::Semaphore::new(a.max_inflight));
    let shared = Arc::new(Mutex::new(LagShared {
        commit: hist(),
        lag: hist(),
        index_lag: hist(),
        rtt: hist(),
        committed: 0,
        errs: Errs::default(),
        lag_errs: Errs::default(),
        lag_503s: 0,
        probes_skipped: 0,
    }));
    // Lag probes get their own slots, so that slow read models do not throttle the commands.
    let probe_sem = Arc::new(tokio::sync::Semaphore::new(a.max_inflight));
    let interval = Duration::from_secs_f64(1.0 / a.rate as f64);
    let start = Instant::now() + Duration::from_millis(100);
    let measure_from = start + a.warmup;
    let total = ((a.warmup + a.duration).as_secs_f64() * a.rate as f64).round() as u64;
    let mut missed = 0u64; // no free slot at the due time (measured window)
    let mut late = 0u64; // issued more than 5 ms after its due time (measured window)
    let mut sched_lateness = hist();
    let mut issued = 0u64;
    let mut sampled = 0u64;
    eprintln!(
        "lag: tenant {tenant}; {} cmd/s open loop, warm-up {:?}, duration {:?}, lag sample every {}th",
        a.rate, a.warmup, a.duration, a.sample_every
    );
    for i in 0..total {
        let due = start + interval.mul_f64(i as f64);
        tokio::time::sleep_until(due.into()).await;
        let now = Instant::now();
        let measured = due >= measure_from;
        let Ok(permit) = sem.clone().try_acquire_owned() else {
            if measured {
                missed += 1;
            }
            continue;
        };
        if measured {
            issued += 1;
            let l = now.saturating_duration_since(due);
            sched_lateness.saturating_record(l.as_micros().max(1) as u64);
            if l > Duration::from_millis(5) {
                late += 1;
            }
        }
        let sample = measured && i % a.sample_every == 0;
        if sample {
            sampled += 1;
        }
        let cl = cl.clone();
        let base = base.clone();
        let shared = shared.clone();
        let probe_sem = probe_sem.clone();
        let name = format!("lag-{run_tag}-{i}");
        tokio::spawn(async move {
            let t0 = Instant::now();
            let r = call(
                cl.post(format!("{base}/v1/tenants/{tenant}/workspaces"))
                    .json(&json!({"name": name})),
            )
            .await;
            let t1 = Instant::now();
            let tok = match &r {
                Ok((201, v)) => token_of(v),
                _ => None,
            };
            let Some(tok) = tok else {
                if measured {
                    shared.lock().unwrap().errs.add("command", &r);
                }
                return;
            };
            if measured {
                let mut s = shared.lock().unwrap();
                s.committed += 1;
                s.commit
                    .saturating_record((t1 - t0).as_micros().max(1) as u64);
            }
            drop(permit);
            if !sample {
                return;
            }
            let Ok(_probe) = probe_sem.try_acquire_owned() else {
                shared.lock().unwrap().probes_skipped += 1;
                return;
            };
            let url = format!("{base}/v1/tenants/{tenant}/workspaces?consistency={tok}&limit=1");
            let index_url = format!(
                "{base}/v1/tenants/{tenant}/users/{probe_user}/entitlements?consistency={tok}"
            );
            // Both probes at once: the read model, and this instance's entitlement index.
            let probe = |url: String| {
                let cl = cl.clone();
                let shared = shared.clone();
                async move {
                    let mut n503 = 0;
                    let at = loop {
                        let r = call(cl.get(&url)).await;
                        match &r {
                            Ok((200, _)) => break Some(Instant::now()),
                            Ok((503, _)) if t1.elapsed() < Duration::from_secs(30) => n503 += 1,
                            _ => {
                                shared.lock().unwrap().lag_errs.add("consistency", &r);
                                break None;
                            }
                        }
                    };
                    (at, n503)
                }
            };
            let ((t2, n503), (t2_index, n503_index)) =
                tokio::join!(probe(url.clone()), probe(index_url));
            let n503 = n503 + n503_index;
            if let Some(t) = t2_index {
                shared
                    .lock()
                    .unwrap()
                    .index_lag
                    .saturating_record((t - t1).as_micros().max(1) as u64);
            }
            // The same request again: the token is passed, so this is one round trip.
            let t3 = Instant::now();
            let again = call(cl.get(&url)).await;
            let t4 = Instant::now();
            let mut s = shared.lock().unwrap();
            s.lag_503s += n503;
            if let Some(t2) = t2 {
                s.lag.saturating_record((t2 - t1).as_micros().max(1) as u64);
            }
            if matches!(again, Ok((200, _))) {
                s.rtt.saturating_record((t4 - t3).as_micros().max(1) as u64);
            }
        });
    }
    let sent_s = (Instant::now() - measure_from).as_secs_f64();
    // Drain: wait (bounded) until every in-flight request has finished.
    let drain_deadline = Instant::now() + a.timeout + Duration::from_secs(35);
    let mut unfinished = 0;
    loop {
        let busy = 2 * a.max_inflight - sem.available_permits() - probe_sem.available_permits();
        if busy == 0 {
            break;
        }
        if Instant::now() >= drain_deadline {
            unfinished = busy;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let s = shared.lock().unwrap();
    let secs = a.duration.as_secs_f64();
    let out = json!({
        "scenario": "projection-lag",
        "tenant_id": tenant,
        "target_rate": a.rate,
        "duration_s": secs,
        "warmup_s": a.warmup.as_secs_f64(),
        "send_window_s": (sent_s * 100.0).round() / 100.0,
        "max_inflight": a.max_inflight,
        "issued": issued,
        "missed_no_slot": missed,
        "late_over_5ms": late,
        "schedule_lateness": hist_json(&sched_lateness),
        "committed": s.committed,
        "achieved_rate": ((s.committed as f64 / secs) * 10.0).round() / 10.0,
        "errors": s.errs.total(),
        "error_kinds": s.errs.kinds,
        "error_samples": s.errs.samples,
        "commit_latency": hist_json(&s.commit),
        "sample_every": a.sample_every,
        "lag_samples_requested": sampled,
        "lag": hist_json(&s.lag),
        "index_lag": hist_json(&s.index_lag),
        "lag_errors": s.lag_errs.total(),
        "lag_error_kinds": s.lag_errs.kinds,
        "lag_error_samples": s.lag_errs.samples,
        "lag_503_retries": s.lag_503s,
        "lag_probes_skipped_no_slot": s.probes_skipped,
        "consistency_get_rtt": hist_json(&s.rtt),
        "unfinished_at_exit": unfinished,
        "caveat": "lag = time from the 201 to the answer of GET ?consistency=<token>, which waits server-side; it includes one HTTP round trip (see consistency_get_rtt: the same GET once the token has passed)",
    });
    println!("{out}");
    0
}

// ------------------------------------------------------------------ bare ----

async fn ok_json() -> actix_web::HttpResponse {
    actix_web::HttpResponse::Ok()
        .content_type("application/json")
        .body(r#"{"status":"ok"}"#)
}

pub fn bare(a: BareArgs) -> i32 {
    let lifetime = a.max_lifetime;
    std::thread::spawn(move || {
        std::thread::sleep(lifetime);
        eprintln!("bare: max lifetime reached, exiting");
        std::process::exit(0);
    });
    let res: std::io::Result<()> = actix_web::rt::System::new().block_on(async move {
        let server = actix_web::HttpServer::new(|| {
            actix_web::App::new().route("/", actix_web::web::get().to(ok_json))
        })
        .workers(a.workers.max(1))
        .bind(("127.0.0.1", 0))?;
        let port = server
            .addrs()
            .first()
            .map(|s| s.port())
            .ok_or_else(|| std::io::Error::other("no address bound"))?;
        let tmp = format!("{}.tmp", a.port_file);
        std::fs::write(&tmp, format!("{port}\n"))?;
        std::fs::rename(&tmp, &a.port_file)?;
        eprintln!(
            "bare: listening on 127.0.0.1:{port} with {} workers",
            a.workers
        );
        server.run().await
    });
    match res {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: bare server: {e}");
            1
        }
    }
}
