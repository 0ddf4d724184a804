//! Charter's read side: reading the global log in commit-safe order, the [`Projection`] trait,
//! the runner that folds the log into read models with a checkpoint in the same transaction,
//! and one read model per file.
#![forbid(unsafe_code)]

pub mod assignments;
pub mod audit_chain;
pub mod checkpoint;
pub mod entitlements;
pub mod failures;
pub mod groups;
pub mod index;
pub mod listener;
pub mod log;
pub mod permissions;
pub mod pg;
pub mod policy_versions;
pub mod projection;
pub mod replay;
pub mod roles;
pub mod runner;
pub mod service_accounts;
pub mod tenants;
pub mod users;
pub mod workspaces;

pub use log::LogPosition;
pub use projection::{Projection, ProjectionError};
pub use runner::Runner;

/// The live runners. Every read model moves in one group: each batch of the log is read once
/// and applied to all of them, with all their checkpoints, in one transaction (see
/// [`runner`]). A token minted from the read models therefore carries permissions and a
/// `policy_version` of the same point of the log, and one transaction's commit, not eleven,
/// pays for each batch.
pub fn runner_groups() -> Vec<Vec<std::sync::Arc<dyn Projection>>> {
    vec![all()]
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
