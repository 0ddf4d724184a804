//! Read model `entitlements`: what was decided, never its fan-out. Bindings of a subject (a
//! user, a service account or a group) to a role in a scope (the tenant, or one workspace),
//! each role's permissions, group memberships, and whether each tenant, workspace, principal,
//! group and role is live. A change writes a fixed number of rows, whatever the size of the
//! tenant; resolving a user's permissions in a scope happens on read, in memory
//! ([`crate::index`]), or in SQL for audits ([`fan_out`]).
//!
//! Owns `ent_*`. Resolution rules (the same in [`fan_out`], in the index and in the model
//! test's naive fold):
//! - a tenant-wide binding applies to the tenant scope and to every live workspace;
//! - a workspace binding applies to that workspace only;
//! - a disabled or deleted principal, a blocked or deleted tenant, a deleted workspace, role
//!   or group yields nothing.
//!
//! Every event is first turned into [`Change`]s by [`changes`], a pure function: the SQL
//! writes here and the in-process index apply the same list, so the two cannot disagree on
//! what an event means.

mod change;
mod fan_out;
mod writes;

use serde::Serialize;
use uuid::Uuid;

pub use change::{changes, Binding, Change, SubjectKind};
pub use fan_out::{fan_out, FanOutRow};

/// The entitlement model's read model (its writes are in `writes.rs`).
pub struct Entitlements;

/// The workspace id of the tenant scope.
pub const TENANT_SCOPE: Uuid = Uuid::nil();

/// One scope of a user's entitlements.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScopeEntitlements {
    pub workspace_id: Uuid,
    /// The scope's effective policy version: the tenant's counter, plus the workspace's for a
    /// workspace.
    pub policy_version: i64,
    pub roles: Vec<Uuid>,
    pub permissions: Vec<String>,
}

/// A user's entitlements: tenant-wide, and in the workspaces that add to them (or in one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserEntitlements {
    pub tenant_id: Uuid,
    pub user_id: Uuid,
    /// The tenant's counter.
    pub policy_version: i64,
    /// Tenant-wide grants (what a token not scoped to a workspace carries). They apply in
    /// every live workspace too.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub tenant: Option<ScopeEntitlements>,
    /// Without `workspace_id`: each live workspace where a workspace binding adds to the
    /// tenant-wide grants, with its effective (tenant-wide included) roles and permissions. A
    /// live workspace not listed has exactly the tenant scope's. With `workspace_id`: that
    /// workspace, when anything applies in it.
    pub workspaces: Vec<ScopeEntitlements>,
}
