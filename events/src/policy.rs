//! The messages of the compacted policy topic (`charter.iam.policy.v1`): the newest value of
//! each policy-version counter, keyed `<tenant_id>/<workspace_id>` (the nil uuid for the
//! tenant's own counter). `schemas/policy-topic.json` is generated from [`PolicyMessage`].
//!
//! Contract 2 (ADR 0007): the effective version of a workspace is the tenant's counter plus
//! the workspace's; of the tenant scope, the tenant's counter. A token is stale when its
//! `policy_version` is below its scope's effective version, computed by [`effective`].

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The contract this crate's types describe.
pub const CONTRACT: u32 = 2;

/// One counter's newest value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(title = "Charter policy-version counter (charter.iam.policy.v1)")]
pub struct PolicyMessage {
    pub tenant_id: Uuid,
    /// `null` for the tenant's own counter.
    pub workspace_id: Option<Uuid>,
    /// The counter's value (not the effective version: see [`effective`]).
    pub policy_version: i64,
    /// The policy-version contract, 2. A message without it was published under contract 1
    /// (before the upgrade to it) and must be ignored.
    pub contract: u32,
}

impl PolicyMessage {
    /// The message's key on the topic.
    pub fn key(&self) -> String {
        format!(
            "{}/{}",
            self.tenant_id,
            self.workspace_id.unwrap_or(Uuid::nil())
        )
    }
}

/// The effective version of a scope from its counters: the tenant's counter, plus the
/// workspace's for a workspace-scoped token (a counter never bumped is 0).
/// Saturating: a counter at the edge of `i64` (which only a forged message could carry) makes
/// every token of the scope stale rather than wrapping round and making them all current.
pub fn effective(tenant_counter: i64, workspace_counter: Option<i64>) -> i64 {
    tenant_counter.saturating_add(workspace_counter.unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bump_of_either_counter_raises_the_effective_version() {
        let before = effective(3, Some(4));
        assert!(effective(4, Some(4)) > before, "tenant bump");
        assert!(effective(3, Some(5)) > before, "workspace bump");
        assert_eq!(effective(3, None), 3, "tenant scope");
    }

    #[test]
    fn the_key_names_the_counter() {
        let t = Uuid::now_v7();
        let m = PolicyMessage {
            tenant_id: t,
            workspace_id: None,
            policy_version: 1,
            contract: CONTRACT,
        };
        assert_eq!(m.key(), format!("{t}/{}", Uuid::nil()));
    }
}
