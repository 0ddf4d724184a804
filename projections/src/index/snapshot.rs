//! One immutable state of the entitlement index, and the answers read from it.

use std::sync::Arc;

use charter_log::LogPosition;
use uuid::Uuid;

use super::{Permission, TenantIndex};
use crate::entitlements::{UserEntitlements, TENANT_SCOPE};

/// One immutable state of the index.
#[derive(Clone, Default)]
pub struct Snapshot {
    /// Every event up to here is applied (every part of the index).
    pub at: LogPosition,
    pub(super) tenants: imbl::HashMap<Uuid, Arc<TenantIndex>>,
    /// The permission registry (names only).
    pub(super) registry: imbl::HashSet<Permission>,
}

impl Snapshot {
    /// The index of tenant `id`, if it has one.
    pub fn tenant(&self, id: Uuid) -> Option<&TenantIndex> {
        self.tenants.get(&id).map(|t| &**t)
    }

    /// Whether `name` is a registered permission.
    pub fn is_registered(&self, name: &str) -> bool {
        self.registry.contains(name)
    }

    /// The tenants, sorted by id.
    pub fn tenant_ids(&self) -> Vec<Uuid> {
        let mut ids: Vec<Uuid> = self.tenants.keys().copied().collect();
        ids.sort();
        ids
    }

    /// A user's (or service account's) entitlements: tenant-wide, and in every live workspace
    /// where a workspace binding adds to them, or in `workspace` only. `None` when the tenant
    /// has no such live principal.
    pub fn lookup(
        &self,
        tenant_id: Uuid,
        user_id: Uuid,
        workspace: Option<Uuid>,
    ) -> Option<UserEntitlements> {
        let tenant = self.tenant(tenant_id)?;
        tenant.principal(user_id)?;
        let workspaces = match workspace {
            Some(w) => tenant.resolve(user_id, Some(w)).into_iter().collect(),
            None => tenant
                .bound_workspaces(user_id)
                .into_iter()
                .filter_map(|w| tenant.resolve(user_id, Some(w)))
                .collect(),
        };
        Some(UserEntitlements {
            tenant_id,
            user_id,
            policy_version: tenant.policy_version(None),
            tenant: tenant.resolve(user_id, None),
            workspaces,
        })
    }

    /// Every active principal × scope (nil, then each live workspace) of `tenant_id` with at
    /// least one role, as [`crate::entitlements::fan_out`] derives it from the read model.
    pub fn fan_out(&self, tenant_id: Uuid) -> Vec<crate::entitlements::FanOutRow> {
        let Some(tenant) = self.tenant(tenant_id) else {
            return vec![];
        };
        let scopes: Vec<Option<Uuid>> = std::iter::once(None)
            .chain(tenant.live_workspaces().into_iter().map(Some))
            .collect();
        let mut rows = Vec::new();
        for user in tenant.principal_ids() {
            for scope in &scopes {
                if let Some(s) = tenant.resolve(user, *scope) {
                    rows.push((user, s.workspace_id, s.roles, s.permissions));
                }
            }
        }
        rows.sort();
        rows
    }

    /// The counters of `tenant_id`: `(workspace or nil, value)` for each counter bumped at
    /// least once, sorted (what `policy_versions` holds).
    pub fn counters(&self, tenant_id: Uuid) -> Vec<(Uuid, i64)> {
        let Some(t) = self.tenant(tenant_id) else {
            return vec![];
        };
        let mut all: Vec<(Uuid, i64)> = t.counters.iter().map(|(w, v)| (*w, *v)).collect();
        if t.counter > 0 {
            all.push((TENANT_SCOPE, t.counter));
        }
        all.sort();
        all
    }

    /// Bindings held in the index, over every tenant.
    pub fn binding_count(&self) -> usize {
        self.tenants.values().map(|t| t.binding_count()).sum()
    }
}
