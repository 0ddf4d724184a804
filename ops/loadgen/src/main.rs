//! charter-loadgen: a closed-loop HTTP load generator for ops/bench.
//!
//! Each of `--clients` tasks sends one request, waits for the whole response, and immediately
//! sends the next (closed loop, no think time). Requests completing during `--warmup` are
//! discarded; after `--duration` of measurement no new request is started, in-flight ones are
//! given `--timeout` to finish (not counted), then everything is torn down. Only 2xx responses
//! count as successes and go into the latency histogram; every non-2xx status and transport
//! error is counted and broken down by kind (status + problem `type`, or the error class).
//!
//! Output: one JSON line on stdout. Progress/diagnostics go to stderr.
//!
//!   charter-loadgen workspaces --url http://127.0.0.1:8080 --clients 64 --duration 20s --warmup 3s
//!   charter-loadgen get --url http://127.0.0.1:8080/health --clients 64 --duration 10s
//!   charter-loadgen seed-log --database-url postgres://… --events 1000000 [--seed N]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use uuid::Uuid;

mod extra;
mod relay;
mod seedlog;
mod tokens;

/// `Authorization: Bearer $CHARTER_TOKEN` on every request when the variable is set (the
/// admin API needs a token; ops/bench logs in first).
pub fn auth_headers() -> reqwest::header::HeaderMap {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Ok(token) = std::env::var("CHARTER_TOKEN") {
        if !token.is_empty() {
            headers.insert(
                reqwest::header::AUTHORIZATION,
                format!("Bearer {token}").parse().expect("a header value"),
            );
        }
    }
    headers
}

#[derive(Parser, Debug)]
#[command(
    name = "charter-loadgen",
    about = "Closed-loop HTTP load generator for Charter"
)]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand, Debug)]
enum Scenario {
    /// Create tenants, then have each client POST new workspaces to its tenant in a loop.
    Workspaces {
        #[command(flatten)]
        common: Common,
        /// Number of tenants to create (clients are spread round-robin); default: one per client.
        #[arg(long)]
        tenants: Option<usize>,
    },
    /// GET one URL in a loop (e.g. /health, as a bare-HTTP baseline).
    Get {
        #[command(flatten)]
        common: Common,
    },
    /// Seed one tenant with workspaces, a role, users and one tenant-wide assignment per user
    /// through the HTTP API; write the user ids (one per line) to --ids-file.
    SeedEntitlements(SeedArgs),
    /// GET /v1/tenants/{t}/users/{random user from --ids-file}/entitlements in a loop, or
    /// with --check-permission, POST /v1/tenants/{t}/check for a random user.
    Entitlements {
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
    },
    /// Open loop: POST workspaces at a fixed rate; for every --sample-every-th committed
    /// command, measure the time until `GET ...?consistency=<token>` answers (commit -> read model).
    Lag(LagArgs),
    /// Serve a bare actix-web JSON route (`GET /` -> {"status":"ok"}) on 127.0.0.1 as a baseline.
    Bare(BareArgs),
    /// POST /v1/oauth/token (client_credentials, form-encoded) in a loop.
    ClientCredentials {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        client_id: String,
        #[arg(long, env = "CHARTER_CLIENT_SECRET")]
        client_secret: String,
    },
    /// In process: Charter's token verification library against raw ring ES256 verification
    /// of the same token, same threads, same run.
    VerifyTokens(tokens::VerifyArgs),
    #[command(name = "seed-log")]
    SeedLog(seedlog::SeedLogArgs),
    /// Outbox rows for the first N published events of a seeded log, as the command path
    /// writes them (the relay scenario's backlog).
    OutboxBacklog(relay::BacklogArgs),
    /// Watch a topic's high-water marks and the outbox while a relay drains the backlog.
    RelayDrain(relay::DrainArgs),
    /// Baseline: a bare producer with the relay's settings sends N sampled relay messages.
    RawProduce(relay::RawProduceArgs),
    /// Open loop of commands; an outside consumer times each event from commit to broker.
    RelayLatency(relay::LatencyArgs),
    /// Baseline: a bare producer at a fixed rate; the same consumer times send -> consume.
    RawLatency(relay::RawLatencyArgs),
}

#[derive(Args, Debug, Clone)]
struct SeedArgs {
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
    #[arg(long, default_value = "300s", value_parser = parse_duration)]
    consistency_wait: Duration,
    /// Upper bound of the whole seeding phase (commands).
    #[arg(long, default_value = "600s", value_parser = parse_duration)]
    max_seed_time: Duration,
}

#[derive(Args, Debug, Clone)]
struct LagArgs {
    /// Base URL of the service.
    #[arg(long)]
    url: String,
    /// Commands per second (open loop).
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    duration: Duration,
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    warmup: Duration,
    /// Measure the read-model lag of every n-th command.
    #[arg(long, default_value_t = 10)]
    sample_every: u64,
    /// Maximum commands in flight (a send slot that finds none free is counted as missed); lag
    /// probes have a separate pool of the same size.
    #[arg(long, default_value_t = 256)]
    max_inflight: usize,
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    timeout: Duration,
    #[arg(long, default_value_t = 2)]
    threads: usize,
}

#[derive(Args, Debug, Clone)]
struct BareArgs {
    /// actix-web workers (the service runs one per core).
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Write the bound port here once listening.
    #[arg(long)]
    port_file: String,
    /// Exit after this long whatever happens.
    #[arg(long, default_value = "300s", value_parser = parse_duration)]
    max_lifetime: Duration,
}

#[derive(Args, Debug, Clone)]
struct Common {
    /// Base URL of the service (workspaces) or the full URL to GET (get).
    #[arg(long)]
    url: String,
    /// Concurrent closed-loop clients.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Measured duration (e.g. 20s, 500ms, 1m).
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    duration: Duration,
    /// Warm-up before measuring (not counted).
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    warmup: Duration,
    /// Per-request timeout (counted as an error).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    timeout: Duration,
    /// Tokio worker threads for the generator itself.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Scenario label in the output (default: the subcommand's name).
    #[arg(long)]
    label: Option<String>,
}

pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: f64 = num.parse().map_err(|_| format!("bad duration {s:?}"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("bad duration unit in {s:?} (use ms, s or m)")),
    };
    if !(secs.is_finite() && secs >= 0.0) {
        return Err(format!("bad duration {s:?}"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// What one client observed during the measured window.
struct Stats {
    hist: Histogram<u64>,
    ok: u64,
    errors: BTreeMap<String, u64>,
    samples: BTreeMap<String, String>,
}

impl Stats {
    fn new() -> Self {
        Stats {
            // 1 µs .. 120 s, 3 significant digits.
            hist: Histogram::new_with_bounds(1, 120_000_000, 3).expect("histogram bounds"),
            ok: 0,
            errors: BTreeMap::new(),
            samples: BTreeMap::new(),
        }
    }
    fn error(&mut self, kind: String, sample: String) {
        *self.errors.entry(kind.clone()).or_default() += 1;
        self.samples.entry(kind).or_insert(sample);
    }
    fn merge(&mut self, other: Stats) {
        self.hist.add(&other.hist).expect("same histogram bounds");
        self.ok += other.ok;
        for (k, v) in other.errors {
            *self.errors.entry(k).or_default() += v;
        }
        for (k, v) in other.samples {
            self.samples.entry(k).or_insert(v);
        }
    }
}

/// One request's result, classified.
enum Outcome {
    Ok,
    Err { kind: String, sample: String },
}

async fn send(req: reqwest::RequestBuilder) -> Outcome {
    match req.send().await {
        Ok(resp) => {
            let status = resp.status();
            // Always drain the body so the connection goes back to the pool.
            let body = resp.bytes().await;
            if status.is_success() {
                match body {
                    Ok(_) => Outcome::Ok,
                    Err(e) => Outcome::Err {
                        kind: format!("body:{}", error_class(&e)),
                        sample: e.to_string(),
                    },
                }
            } else {
                let body = body
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                let ptype = serde_json::from_str::<Value>(&body)
                    .ok()
                    .and_then(|v| v.get("type").and_then(Value::as_str).map(str::to_owned))
                    .map(|t| t.rsplit('/').next().unwrap_or(&t).to_owned());
                let kind = match ptype {
                    Some(t) => format!("http_{}:{}", status.as_u16(), t),
                    None => format!("http_{}", status.as_u16()),
                };
                Outcome::Err {
                    kind,
                    sample: body.chars().take(300).collect(),
                }
            }
        }
        Err(e) => Outcome::Err {
            kind: format!("transport:{}", error_class(&e)),
            sample: e.to_string(),
        },
    }
}

fn error_class(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else if e.is_body() || e.is_decode() {
        "body"
    } else if e.is_request() {
        "request"
    } else {
        "other"
    }
}

fn build_client(c: &Common) -> reqwest::Client {
    reqwest::Client::builder()
        .default_headers(auth_headers())
        .pool_max_idle_per_host(c.clients * 2)
        .pool_idle_timeout(Duration::from_secs(90))
        .tcp_nodelay(true)
        .timeout(c.timeout)
        .connect_timeout(Duration::from_secs(5))
        .no_proxy()
        .build()
        .expect("reqwest client")
}

/// Creates `n` tenants; returns their ids. Any failure aborts the run.
async fn create_tenants(
    client: &reqwest::Client,
    base: &str,
    n: usize,
) -> Result<Vec<Uuid>, String> {
    let run = Uuid::new_v4().simple().to_string();
    let run = &run[..12];
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let body = json!({"name": format!("bench {run} {i}"), "slug": format!("bench-{run}-{i}")});
        let resp = client
            .post(format!("{base}/v1/tenants"))
            .json(&body)
            .send()
            .await
            .map_err(|e| format!("POST /v1/tenants: {e}"))?;
        let status = resp.status();
        let text = resp
            .text()
            .await
            .map_err(|e| format!("POST /v1/tenants body: {e}"))?;
        if status.as_u16() != 201 {
            return Err(format!("POST /v1/tenants -> {status}: {text}"));
        }
        let v: Value =
            serde_json::from_str(&text).map_err(|e| format!("tenant response: {e}: {text}"))?;
        let id = v
            .pointer("/data/id")
            .and_then(Value::as_str)
            .and_then(|s| Uuid::parse_str(s).ok())
            .ok_or_else(|| format!("no data.id in tenant response: {text}"))?;
        ids.push(id);
    }
    Ok(ids)
}

/// Builds the request for client `client_no`'s `seq`-th iteration.
type MakeRequest =
    Arc<dyn Fn(&reqwest::Client, usize, u64) -> reqwest::RequestBuilder + Send + Sync>;

struct Run {
    stats: Stats,
    measured: Duration,
    attempted_total: u64,
}

async fn drive(client: reqwest::Client, c: &Common, make: MakeRequest) -> Run {
    let start = Instant::now();
    let measure_from = start + c.warmup;
    let measure_to = measure_from + c.duration;
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::with_capacity(c.clients);
    for client_no in 0..c.clients {
        let client = client.clone();
        let make = make.clone();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut stats = Stats::new();
            let mut attempted = 0u64;
            let mut seq = 0u64;
            loop {
                let t0 = Instant::now();
                if t0 >= measure_to || stop.load(Ordering::Relaxed) {
                    break;
                }
                let outcome = send(make(&client, client_no, seq)).await;
                seq += 1;
                attempted += 1;
                let t1 = Instant::now();
                // Count what completed inside the measured window.
                if t1 >= measure_from && t1 <= measure_to {
                    match outcome {
                        Outcome::Ok => {
                            stats.ok += 1;
                            let us = (t1 - t0).as_micros().max(1) as u64;
                            stats.hist.saturating_record(us);
                        }
                        Outcome::Err { kind, sample } => stats.error(kind, sample),
                    }
                } else if let Outcome::Err { kind, sample } = outcome {
                    // Errors outside the window still must not go unnoticed.
                    stats.error(format!("outside_window:{kind}"), sample);
                }
            }
            (stats, attempted)
        }));
    }

    // Hard bound: the window, plus one timeout for in-flight requests, plus slack.
    let deadline = measure_to + c.timeout + Duration::from_secs(2);
    let mut total = Stats::new();
    let mut attempted_total = 0;
    let mut aborted = 0;
    for t in tasks {
        let now = Instant::now();
        let left = deadline.saturating_duration_since(now);
        let abort = t.abort_handle();
        match tokio::time::timeout(left, t).await {
            Ok(Ok((s, a))) => {
                total.merge(s);
                attempted_total += a;
            }
            Ok(Err(e)) => {
                total.error("client_task_failed".into(), e.to_string());
            }
            Err(_) => {
                stop.store(true, Ordering::Relaxed);
                abort.abort();
                aborted += 1;
            }
        }
    }
    if aborted > 0 {
        total.error(
            "client_task_aborted".into(),
            format!("{aborted} clients still busy at the deadline"),
        );
    }
    Run {
        stats: total,
        measured: c.duration,
        attempted_total,
    }
}

fn report(scenario: &str, c: &Common, run: Run, extra: Value) -> Value {
    let s = &run.stats;
    let secs = run.measured.as_secs_f64();
    let ms = |us: u64| us as f64 / 1000.0;
    let q = |p: f64| {
        if s.ok > 0 {
            ms(s.hist.value_at_quantile(p))
        } else {
            0.0
        }
    };
    let errors: u64 = s.errors.values().sum();
    let mut out = json!({
        "scenario": scenario,
        "requests": s.ok,
        "errors": errors,
        "rps": ((s.ok as f64 / secs) * 10.0).round() / 10.0,
        "p50_ms": q(0.50),
        "p90_ms": q(0.90),
        "p99_ms": q(0.99),
        "p999_ms": q(0.999),
        "max_ms": if s.ok > 0 { ms(s.hist.max()) } else { 0.0 },
        "mean_ms": if s.ok > 0 { (s.hist.mean() / 10.0).round() / 100.0 } else { 0.0 },
        "clients": c.clients,
        "duration_s": secs,
        "warmup_s": c.warmup.as_secs_f64(),
        "threads": c.threads,
        "attempted_total": run.attempted_total,
        "error_kinds": s.errors,
        "error_samples": s.samples,
    });
    if let (Value::Object(o), Value::Object(e)) = (&mut out, extra) {
        o.extend(e);
    }
    out
}

fn main() {
    let cli = Cli::parse();
    let common = match &cli.scenario {
        Scenario::Workspaces { common, .. }
        | Scenario::Get { common }
        | Scenario::Entitlements { common, .. }
        | Scenario::ClientCredentials { common, .. } => common.clone(),
        Scenario::VerifyTokens(a) => {
            let a = a.clone();
            std::process::exit(extra::with_runtime(a.threads, move || tokens::verify(a)))
        }
        Scenario::Bare(a) => std::process::exit(extra::bare(a.clone())),
        Scenario::SeedLog(a) => {
            let a = a.clone();
            std::process::exit(extra::with_runtime(2, move || seedlog::seed_log(a)))
        }
        Scenario::SeedEntitlements(a) => {
            let a = a.clone();
            std::process::exit(extra::with_runtime(2, move || extra::seed(a)))
        }
        Scenario::Lag(a) => {
            let a = a.clone();
            std::process::exit(extra::with_runtime(a.threads, move || extra::lag(a)))
        }
        Scenario::OutboxBacklog(a) => {
            let a = a.clone();
            std::process::exit(extra::with_runtime(1, move || relay::outbox_backlog(a)))
        }
        Scenario::RelayDrain(a) => {
            let a = a.clone();
            std::process::exit(extra::with_runtime(1, move || relay::relay_drain(a)))
        }
        Scenario::RawProduce(a) => {
            let a = a.clone();
            std::process::exit(extra::with_runtime(1, move || relay::raw_produce(a)))
        }
        Scenario::RelayLatency(a) => {
            let a = a.clone();
            std::process::exit(extra::with_runtime(a.threads, move || {
                relay::relay_latency(a)
            }))
        }
        Scenario::RawLatency(a) => {
            let a = a.clone();
            std::process::exit(extra::with_runtime(a.threads, move || {
                relay::raw_latency(a)
            }))
        }
    };
    if common.clients == 0 || common.duration.is_zero() {
        eprintln!("error: --clients and --duration must be > 0");
        std::process::exit(2);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(common.threads.max(1))
        .enable_all()
        .build()
        .expect("tokio runtime");
    let code = rt.block_on(async move {
        let client = build_client(&common);
        let (name, make, extra): (&str, MakeRequest, Value) = match cli.scenario {
            Scenario::Entitlements {
                tenant,
                ids_file,
                check_permission,
                ..
            } => {
                let base = common.url.trim_end_matches('/').to_owned();
                let ids = match std::fs::read_to_string(&ids_file) {
                    Ok(t) => t
                        .lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .map(|l| match &check_permission {
                            None => format!("{base}/v1/tenants/{tenant}/users/{l}/entitlements"),
                            Some(_) => l.to_owned(),
                        })
                        .collect::<Vec<_>>(),
                    Err(e) => {
                        eprintln!("error: reading {ids_file}: {e}");
                        return 1;
                    }
                };
                if ids.is_empty() {
                    eprintln!("error: no user ids in {ids_file}");
                    return 1;
                }
                let n = ids.len();
                let urls = Arc::new(ids);
                match check_permission {
                    None => (
                        "entitlements",
                        Arc::new(move |cl: &reqwest::Client, client_no: usize, seq: u64| {
                            let r = extra::mix((client_no as u64) << 40 ^ seq);
                            cl.get(&urls[(r % urls.len() as u64) as usize])
                        }),
                        json!({"url": base, "tenant_id": tenant, "users": n}),
                    ),
                    Some(permission) => {
                        let url = format!("{base}/v1/tenants/{tenant}/check");
                        let extra = json!({"url": url, "tenant_id": tenant, "users": n,
                                           "permission": permission});
                        // The bodies, prebuilt: the generator must not be what is measured.
                        let bodies: Arc<Vec<String>> = Arc::new(
                            urls.iter()
                                .map(|u| {
                                    json!({"user_id": u, "permission": permission}).to_string()
                                })
                                .collect(),
                        );
                        (
                            "check",
                            Arc::new(move |cl: &reqwest::Client, client_no: usize, seq: u64| {
                                let r = extra::mix((client_no as u64) << 40 ^ seq);
                                cl.post(&url)
                                    .header("content-type", "application/json")
                                    .body(bodies[(r % bodies.len() as u64) as usize].clone())
                            }),
                            extra,
                        )
                    }
                }
            }
            Scenario::Bare(_)
            | Scenario::SeedLog(_)
            | Scenario::SeedEntitlements(_)
            | Scenario::Lag(_)
            | Scenario::OutboxBacklog(_)
            | Scenario::RelayDrain(_)
            | Scenario::RawProduce(_)
            | Scenario::RelayLatency(_)
            | Scenario::RawLatency(_)
            | Scenario::VerifyTokens(_) => unreachable!(),
            Scenario::ClientCredentials {
                client_id,
                client_secret,
                ..
            } => {
                let url = format!("{}/v1/oauth/token", common.url.trim_end_matches('/'));
                let form = Arc::new([
                    ("grant_type", "client_credentials".to_owned()),
                    ("client_id", client_id.clone()),
                    ("client_secret", client_secret),
                ]);
                (
                    "token-issue",
                    Arc::new(move |cl: &reqwest::Client, _, _| cl.post(&url).form(&*form)),
                    json!({"url": common.url, "client_id": client_id}),
                )
            }
            Scenario::Get { .. } => {
                let url = common.url.clone();
                (
                    "get",
                    Arc::new(move |cl: &reqwest::Client, _, _| cl.get(&url)),
                    json!({"url": common.url}),
                )
            }
            Scenario::Workspaces { tenants, .. } => {
                let base = common.url.trim_end_matches('/').to_owned();
                let n = tenants.unwrap_or(common.clients).max(1);
                eprintln!("charter-loadgen: creating {n} tenants at {base}");
                let ids = match create_tenants(&client, &base, n).await {
                    Ok(ids) => ids,
                    Err(e) => {
                        eprintln!("error: tenant setup failed: {e}");
                        return 1;
                    }
                };
                let urls: Arc<Vec<String>> = Arc::new(
                    ids.iter()
                        .map(|id| format!("{base}/v1/tenants/{id}/workspaces"))
                        .collect(),
                );
                let run_tag = Uuid::new_v4().simple().to_string()[..8].to_owned();
                (
                    "workspaces",
                    Arc::new(move |cl: &reqwest::Client, client_no: usize, seq: u64| {
                        let url = &urls[client_no % urls.len()];
                        cl.post(url)
                            .json(&json!({"name": format!("w-{run_tag}-{client_no}-{seq}")}))
                    }),
                    json!({"url": base, "tenants": n}),
                )
            }
        };
        eprintln!(
            "charter-loadgen: {name}: {} clients, warmup {:?}, duration {:?}",
            common.clients, common.warmup, common.duration
        );
        let run = drive(client, &common, make).await;
        let label = common.label.clone().unwrap_or_else(|| name.to_owned());
        let out = report(&label, &common, run, extra);
        println!("{out}");
        0
    });
    // Do not wait for anything left in the runtime (aborted clients, idle connections).
    rt.shutdown_timeout(Duration::from_secs(1));
    std::process::exit(code);
}
