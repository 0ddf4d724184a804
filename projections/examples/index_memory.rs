//! Memory of the in-process entitlement index, measured: one tenant of `USERS` users (default
//! 100,000) and `WORKSPACES` workspaces (default 50), built through the same
//! `TenantIndex::apply` the index uses for the log. Prints the resident memory it took, the
//! bindings it holds and the bytes per binding, and what publishing a new snapshot after one
//! change costs (structural sharing: it must not copy the tenant).
//!
//! `cargo run --release -p charter-projections --example index_memory [USERS [WORKSPACES]]`
//! (`ops/bench index-memory` runs it and records the result).
#![forbid(unsafe_code)]

use std::sync::Arc;
use std::time::Instant;

use charter_projections::entitlements::{Binding, Change, SubjectKind};
use charter_projections::index::{Names, TenantIndex};
use uuid::Uuid;

/// Resident set size of this process, in bytes (Linux).
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn main() {
    let mut args = std::env::args().skip(1);
    let users: u128 = args.next().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let workspaces: u128 = args.next().and_then(|v| v.parse().ok()).unwrap_or(50);
    let groups: u128 = 100;
    let roles: u128 = 20;
    let id = |kind: u128, n: u128| Uuid::from_u128((kind << 96) | n);
    let mut names = Names::default();
    let before = rss();
    let started = Instant::now();
    let mut t = TenantIndex::default();
    let mut changes = 0u64;
    let mut apply = |t: &mut TenantIndex, c: Change| {
        t.apply(&c, &mut names);
        changes += 1;
    };
    apply(&mut t, Change::TenantCreated(id(1, 0)));
    for w in 0..workspaces {
        apply(&mut t, Change::WorkspaceCreated(id(2, w)));
    }
    for r in 0..roles {
        // Half tenant roles, half workspace roles; five permissions each, from a pool of 40.
        apply(
            &mut t,
            Change::RoleCreated {
                role: id(3, r),
                workspace: (r % 2 == 1).then(|| id(2, r % workspaces)),
                permissions: (0..5)
                    .map(|p| format!("svc{}.resource{}.action", r % 4, (r + p) % 10))
                    .collect(),
            },
        );
    }
    let mut assignment = 0u128;
    let mut bind = |t: &mut TenantIndex,
                    apply: &mut dyn FnMut(&mut TenantIndex, Change),
                    subject: Uuid,
                    kind: SubjectKind,
                    role: u128,
                    workspace: Option<Uuid>| {
        assignment += 1;
        apply(
            t,
            Change::Bound(Binding {
                assignment: id(5, assignment),
                subject,
                subject_kind: kind,
                role: id(3, role),
                workspace,
            }),
        );
    };
    for g in 0..groups {
        apply(&mut t, Change::GroupCreated(id(4, g)));
        // Each group holds one tenant role, tenant-wide: stored once, never per workspace.
        bind(
            &mut t,
            &mut apply,
            id(4, g),
            SubjectKind::Group,
            (g % 10) * 2,
            None,
        );
    }
    for u in 0..users {
        let user = id(6, u);
        apply(&mut t, Change::PrincipalCreated(user));
        apply(
            &mut t,
            Change::MemberAdded {
                group: id(4, u % groups),
                user,
            },
        );
        // Two workspace roles of the user's own, in two of the workspaces.
        for k in 0..2 {
            let w = id(2, (u * 7 + k * 13) % workspaces);
            bind(
                &mut t,
                &mut apply,
                user,
                SubjectKind::Principal,
                (u + k) % 10 * 2 + 1,
                Some(w),
            );
        }
    }
    let built = started.elapsed();
    let after = rss();
    let bindings = t.binding_count() as u64;
    let memberships = users as u64;
    let resident = after.saturating_sub(before);
    // Publishing: each change derives a new value from the shared one, as every batch does.
    let shared = Arc::new(t);
    let publishes = 1_000u32;
    let started = Instant::now();
    let mut current = shared.clone();
    for i in 0..publishes {
        let mut next = (*current).clone();
        next.apply(
            &Change::PrincipalActive(id(6, i as u128 % users), i % 2 == 0),
            &mut names,
        );
        current = Arc::new(next);
    }
    let per_publish = started.elapsed() / publishes;
    // A lookup and a check, from the built value.
    let probe = id(6, users / 2);
    let started = Instant::now();
    let mut allowed = 0u32;
    for k in 0..100_000u128 {
        if current.allows(probe, Some(id(2, k % workspaces)), "svc1.resource3.action") {
            allowed += 1;
        }
    }
    let per_check = started.elapsed() / 100_000;
    let out = serde_json::json!({
        "users": users as u64,
        "workspaces": workspaces as u64,
        "groups": groups as u64,
        "roles": roles as u64,
        "bindings": bindings,
        "memberships": memberships,
        "changes_applied": changes,
        "build_s": built.as_secs_f64(),
        "resident_bytes": resident,
        "resident_mib": (resident as f64 / 1048576.0 * 10.0).round() / 10.0,
        "bytes_per_binding": resident / bindings.max(1),
        "bytes_per_user": resident / (users as u64).max(1),
        "publish_after_one_change_us": per_publish.as_secs_f64() * 1e6,
        "check_ns": per_check.as_nanos() as u64,
        "checks_allowed": allowed,
        "note": "resident_bytes is the growth of this process's RSS while building the index (everything it holds: principals, memberships, bindings, roles); bytes_per_binding divides all of it by the bindings, so it is an upper bound",
    });
    println!("{out}");
}
