//! Delegation: **a caller can only hand out what it holds.**
//!
//! Every command that can give a principal a permission (creating a role or granting it
//! permissions, assigning a role, adding a member to a group, rotating a service account's
//! secret, which hands the caller that account's access) carries the caller's [`Authority`]
//! and the permissions the command would hand out. The decision refuses the command with
//! [`Escalation`] (`403 privilege-escalation`) when any of them is missing from what the
//! caller holds. Platform administrators are exempt.
//!
//! What a caller holds is its token's permissions: the tenant-wide grants of its own tenant,
//! which also reach that tenant's descendants and every workspace in them. A token that
//! passed verification is current (its `policy_version` is the scope's), so this is what the
//! caller holds now, not what it once held. Permissions held through a workspace-scoped role
//! are not in an admin token and cannot be handed out through the admin API.

use std::collections::BTreeSet;

use super::{Rejection, RejectionKind};

/// Who is deciding, as far as handing out permissions goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authority {
    /// A platform administrator (a platform-wide grant covers the route's permission), or
    /// Charter itself (bootstrap, seeding): exempt from the rule.
    Platform,
    /// A delegated administrator: the permissions it holds in the target scope.
    Holds(BTreeSet<String>),
}

/// Handing out these permissions would give someone more than the caller holds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} would hand out permissions the caller does not hold: {}", .missing.join(", "))]
pub struct Escalation {
    /// What was refused, for the message ("granting to role …").
    pub what: String,
    /// The permissions the caller lacks, sorted.
    pub missing: Vec<String>,
}

impl From<Escalation> for Rejection {
    fn from(e: Escalation) -> Self {
        Rejection::new(RejectionKind::Forbidden, "privilege-escalation", e)
    }
}

impl Authority {
    /// The authority of a caller holding `permissions` (sorted or not).
    pub fn holding<S: AsRef<str>>(permissions: impl IntoIterator<Item = S>) -> Self {
        Authority::Holds(
            permissions
                .into_iter()
                .map(|p| p.as_ref().to_owned())
                .collect(),
        )
    }

    /// `Ok` when the caller may hand out every permission of `handed_out`; otherwise the
    /// ones it lacks, in order.
    pub fn may_hand_out<'a>(
        &self,
        what: impl FnOnce() -> String,
        handed_out: impl IntoIterator<Item = &'a String>,
    ) -> Result<(), Escalation> {
        let Authority::Holds(held) = self else {
            return Ok(());
        };
        let missing: BTreeSet<&String> = handed_out
            .into_iter()
            .filter(|p| !held.contains(*p))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        Err(Escalation {
            what: what(),
            missing: missing.into_iter().cloned().collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_delegate_hands_out_only_what_it_holds() {
        let helpdesk = Authority::holding(["iam.users.read", "iam.roles.write"]);
        assert!(helpdesk
            .may_hand_out(|| "x".into(), &set(&["iam.users.read"]))
            .is_ok());
        assert!(helpdesk.may_hand_out(|| "x".into(), &set(&[])).is_ok());
        let refused = helpdesk
            .may_hand_out(
                || "granting to role r".into(),
                &set(&["iam.users.write", "iam.roles.write", "docs.read"]),
            )
            .unwrap_err();
        assert_eq!(refused.missing, ["docs.read", "iam.users.write"]);
        assert_eq!(
            refused.to_string(),
            "granting to role r would hand out permissions the caller does not hold: \
             docs.read, iam.users.write"
        );
        assert_eq!(Rejection::from(refused).code, "privilege-escalation");
    }

    #[test]
    fn platform_administrators_are_exempt() {
        assert!(Authority::Platform
            .may_hand_out(|| "x".into(), &set(&["iam.keys.write", "anything.at.all"]))
            .is_ok());
    }
}
