//! charter-loadgen: the load generator of ops/bench. This file parses the command line and
//! dispatches to a scenario: the closed loop ([`closed_loop`]), the open-loop lag probe, the
//! entitlement seeding, the bare baseline server, token verification in process, the seeded
//! log and the relay scenarios.
//!
//! Output: one JSON line on stdout. Progress/diagnostics go to stderr.
//!
//!   charter-loadgen workspaces --url http://127.0.0.1:8080 --clients 64 --duration 20s --warmup 3s
//!   charter-loadgen get --url http://127.0.0.1:8080/health --clients 64 --duration 10s
//!   charter-loadgen seed-log --database-url postgres://… --events 1000000 [--seed N]
#![forbid(unsafe_code)]

mod api;
mod bare;
mod closed_loop;
mod db;
mod duration;
mod lag;
mod open_loop;
mod relay;
mod runtime;
#[cfg(feature = "cedar")]
mod sdk;
mod seed_entitlements;
mod seedlog;
mod stats;
mod tokens;

use clap::{Parser, Subcommand};

use closed_loop::Target;
use runtime::with_runtime;

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
    Workspaces(closed_loop::WorkspacesArgs),
    /// GET one URL in a loop (e.g. /health, as a bare-HTTP baseline).
    Get(closed_loop::GetArgs),
    /// Seed one tenant with workspaces, a role, users and one tenant-wide assignment per user
    /// through the HTTP API; write the user ids (one per line) to --ids-file.
    SeedEntitlements(seed_entitlements::SeedEntitlementsArgs),
    /// GET /v1/tenants/{t}/users/{random user from --ids-file}/entitlements in a loop, or
    /// with --check-permission, POST /v1/tenants/{t}/check for a random user.
    Entitlements(closed_loop::EntitlementsArgs),
    /// Open loop: POST workspaces at a fixed rate; for every --sample-every-th committed
    /// command, measure the time until `GET ...?consistency=<token>` answers (commit -> read model).
    Lag(lag::LagArgs),
    /// Serve a bare actix-web JSON route (`GET /` -> {"status":"ok"}) on 127.0.0.1 as a baseline.
    Bare(bare::BareArgs),
    /// POST /v1/oauth/token (client_credentials, form-encoded) in a loop.
    ClientCredentials(closed_loop::ClientCredentialsArgs),
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
    #[cfg(feature = "cedar")]
    /// The consumer SDK in process: per-request checks vs raw ring and cedar; staleness.
    Sdk(sdk::SdkArgs),
}

fn main() {
    let code = match Cli::parse().scenario {
        Scenario::Workspaces(a) => closed_loop::run(Target::Workspaces(a)),
        Scenario::Get(a) => closed_loop::run(Target::Get(a)),
        Scenario::Entitlements(a) => closed_loop::run(Target::Entitlements(a)),
        Scenario::ClientCredentials(a) => closed_loop::run(Target::ClientCredentials(a)),
        Scenario::VerifyTokens(a) => with_runtime(a.threads, move || tokens::verify(a)),
        Scenario::Bare(a) => bare::bare(a),
        Scenario::SeedLog(a) => with_runtime(2, move || seedlog::seed_log(a)),
        Scenario::SeedEntitlements(a) => {
            with_runtime(2, move || seed_entitlements::seed_entitlements(a))
        }
        Scenario::Lag(a) => with_runtime(a.threads, move || lag::lag(a)),
        Scenario::OutboxBacklog(a) => with_runtime(1, move || relay::outbox_backlog(a)),
        Scenario::RelayDrain(a) => with_runtime(1, move || relay::relay_drain(a)),
        Scenario::RawProduce(a) => with_runtime(1, move || relay::raw_produce(a)),
        Scenario::RelayLatency(a) => with_runtime(a.threads, move || relay::relay_latency(a)),
        Scenario::RawLatency(a) => with_runtime(a.threads, move || relay::raw_latency(a)),
        #[cfg(feature = "cedar")]
        Scenario::Sdk(a) => with_runtime(a.threads, move || sdk::sdk(a)),
    };
    std::process::exit(code);
}
