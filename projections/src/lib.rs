//! Charter's read side: the [`Projection`] trait, the runner that folds the log (read through
//! `charter-log`) into read models with a checkpoint in the same transaction, and one read
//! model per file.
#![forbid(unsafe_code)]

pub mod assignments;
pub mod audit_chain;
pub mod entitlements;
pub mod failures;
pub mod groups;
pub mod index;
pub mod permissions;
pub mod policy_versions;
pub mod projection;
pub mod replay;
pub mod roles;
pub mod runner;
pub mod service_accounts;
pub mod tenants;
pub mod users;
pub mod workspaces;

pub use projection::{Projection, ProjectionError};
pub use runner::Runner;

/// The live runners: three groups, each applied in one transaction per batch (see
/// [`runner`]), each batch of the log read once per group:
/// - the directory (tenants, workspaces, users, service accounts, groups, permissions, roles,
///   assignments);
/// - the authorization model: entitlements and the `policy_version` counters, which must move
///   together (a token's permissions and counter come from one point of the log);
/// - the audit chain, whose hashing is the costliest per event.
///
/// Three commits per batch instead of eleven, and the groups run in parallel. One group of
/// all eleven was measured too: each commit's follow-up work then ran as one serial
/// transaction long enough that a known user's failed login (which commits) measured
/// slower than an unknown user's (which does not), pair ratio 0.68-0.74 against 0.78-0.81
/// with three groups (`tests/api/timing.rs` needs 0.75-1.33).
pub fn runner_groups() -> Vec<Vec<std::sync::Arc<dyn Projection>>> {
    let (authorization, rest): (Vec<_>, Vec<_>) = all().into_iter().partition(|p| {
        p.name() == entitlements::Entitlements.name()
            || p.name() == policy_versions::PolicyVersions.name()
    });
    let (audit, directory): (Vec<_>, Vec<_>) = rest
        .into_iter()
        .partition(|p| p.name() == audit_chain::AuditChain.name());
    vec![directory, authorization, audit]
}

/// Every read model Charter maintains, in a fixed order.
pub fn all() -> Vec<std::sync::Arc<dyn Projection>> {
    vec![
        std::sync::Arc::new(tenants::Tenants),
        std::sync::Arc::new(workspaces::Workspaces),
        std::sync::Arc::new(users::Users),
        std::sync::Arc::new(service_accounts::ServiceAccounts),
        std::sync::Arc::new(groups::Groups),
        std::sync::Arc::new(permissions::Permissions),
        std::sync::Arc::new(roles::Roles),
        std::sync::Arc::new(assignments::Assignments),
        std::sync::Arc::new(entitlements::Entitlements),
        std::sync::Arc::new(policy_versions::PolicyVersions),
        std::sync::Arc::new(audit_chain::AuditChain),
    ]
}
