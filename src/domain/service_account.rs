//! The `service_account` aggregate: a non-human principal of one tenant with client
//! credentials. Its secret is issued by the caller (256 random bits) and stored as a digest.

use charter_events::service_account::{
    ServiceAccountCreated, ServiceAccountDeleted, ServiceAccountDisabled, ServiceAccountEnabled,
    ServiceAccountEvent, ServiceAccountPlatformAccessSet, ServiceAccountSecretIssued,
    ServiceAccountSecretRotated,
};
use uuid::Uuid;

use std::collections::BTreeSet;

use super::delegation::{Authority, Escalation};
use super::tenant::{require_active, TenantGate, TenantStatus};
use super::{Aggregate, Rejection, RejectionKind};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccountState {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    pub secret_hash: Option<String>,
    /// Raised by every change to what the account's credentials give: a secret rotation and
    /// a change of its platform access. Tokens carry it as `account_version`, and a token
    /// minted before the newest change is refused.
    pub account_version: i64,
    /// Permission patterns granted in every tenant, sorted (`service_account.platform_access_set`).
    pub platform_permissions: Vec<String>,
    pub disabled: bool,
    pub deleted: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceAccount(pub Option<ServiceAccountState>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccountCommand {
    pub tenant_id: Uuid,
    pub tenant_status: Option<TenantStatus>,
    /// Who decides: whoever rotates a secret learns it and can act as the account, so a
    /// caller rotates only the secrets of accounts holding nothing it does not hold.
    pub authority: Authority,
    pub action: ServiceAccountAction,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceAccountAction {
    Create {
        id: Uuid,
        name: String,
        secret_hash: String,
    },
    /// `confers` is every permission the account's live assignments grant, in any scope.
    RotateSecret {
        secret_hash: String,
        confers: BTreeSet<String>,
    },
    Disable,
    Enable,
    Delete,
    /// Replaces the account's platform-wide grants with `permissions` (empty: none). Only a
    /// platform administrator may, and only with patterns its own platform grants cover
    /// (`caller_platform`): a platform grant reaches every tenant, so it is handed out by no
    /// one who does not hold it platform-wide.
    SetPlatformAccess {
        permissions: BTreeSet<String>,
        caller_platform: BTreeSet<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceAccountError {
    #[error("service account not found")]
    NotFound,
    #[error("service account already exists")]
    AlreadyExists,
    #[error("tenant not found")]
    TenantNotFound,
    #[error("tenant is blocked")]
    TenantBlocked,
    #[error("the service account is disabled")]
    Disabled,
    #[error("only a platform administrator may set a service account's platform access")]
    PlatformOnly,
    #[error(transparent)]
    Escalation(#[from] Escalation),
}

impl From<ServiceAccountError> for Rejection {
    fn from(e: ServiceAccountError) -> Self {
        use RejectionKind::*;
        let (kind, code) = match &e {
            ServiceAccountError::NotFound | ServiceAccountError::TenantNotFound => {
                (NotFound, "not-found")
            }
            ServiceAccountError::AlreadyExists => (Conflict, "already-exists"),
            ServiceAccountError::TenantBlocked => (Conflict, "tenant-blocked"),
            ServiceAccountError::Disabled => (Conflict, "service-account-disabled"),
            ServiceAccountError::PlatformOnly => (Forbidden, "forbidden"),
            ServiceAccountError::Escalation(e) => return e.clone().into(),
        };
        Rejection::new(kind, code, e)
    }
}

impl ServiceAccountState {
    /// Whether it may obtain tokens.
    pub fn active(&self) -> bool {
        !self.disabled && !self.deleted
    }
}

impl Aggregate for ServiceAccount {
    type Command = ServiceAccountCommand;
    type Event = ServiceAccountEvent;
    type Error = ServiceAccountError;

    fn apply(self, event: &ServiceAccountEvent) -> Self {
        let Some(mut s) = self.0 else {
            return match event {
                ServiceAccountEvent::Created(e) => ServiceAccount(Some(ServiceAccountState {
                    id: e.service_account_id,
                    tenant_id: e.tenant_id,
                    name: e.name.clone(),
                    secret_hash: None,
                    account_version: 0,
                    platform_permissions: vec![],
                    disabled: false,
                    deleted: false,
                })),
                _ => ServiceAccount(None),
            };
        };
        match event {
            ServiceAccountEvent::Created(_) => {}
            ServiceAccountEvent::SecretRotated(_) => s.account_version += 1,
            ServiceAccountEvent::PlatformAccessSet(e) => {
                s.platform_permissions = e.permissions.clone();
                s.account_version = e.account_version;
            }
            ServiceAccountEvent::SecretIssued(e) => s.secret_hash = Some(e.secret_hash.clone()),
            ServiceAccountEvent::Disabled(_) => s.disabled = true,
            ServiceAccountEvent::Enabled(_) => s.disabled = false,
            ServiceAccountEvent::Deleted(_) => s.deleted = true,
        }
        ServiceAccount(Some(s))
    }

    fn decide(
        &self,
        command: &ServiceAccountCommand,
    ) -> Result<Vec<ServiceAccountEvent>, ServiceAccountError> {
        require_active(command.tenant_status).map_err(|gate| match gate {
            TenantGate::NotFound => ServiceAccountError::TenantNotFound,
            TenantGate::Blocked => ServiceAccountError::TenantBlocked,
        })?;
        let tenant_id = command.tenant_id;
        if let ServiceAccountAction::Create {
            id,
            name,
            secret_hash,
        } = &command.action
        {
            if self.0.is_some() {
                return Err(ServiceAccountError::AlreadyExists);
            }
            return Ok(vec![
                ServiceAccountCreated {
                    service_account_id: *id,
                    tenant_id,
                    name: name.clone(),
                }
                .into(),
                ServiceAccountSecretIssued {
                    service_account_id: *id,
                    tenant_id,
                    secret_hash: secret_hash.clone(),
                }
                .into(),
            ]);
        }
        let s = match &self.0 {
            Some(s) if !s.deleted && s.tenant_id == tenant_id => s,
            _ => return Err(ServiceAccountError::NotFound),
        };
        let service_account_id = s.id;
        Ok(match &command.action {
            ServiceAccountAction::Create { .. } => unreachable!("handled above"),
            ServiceAccountAction::RotateSecret {
                secret_hash,
                confers,
            } => {
                command.authority.may_hand_out(
                    || format!("rotating the secret of service account {service_account_id}"),
                    confers,
                )?;
                vec![
                    ServiceAccountSecretIssued {
                        service_account_id,
                        tenant_id,
                        secret_hash: secret_hash.clone(),
                    }
                    .into(),
                    ServiceAccountSecretRotated {
                        service_account_id,
                        tenant_id,
                    }
                    .into(),
                ]
            }
            ServiceAccountAction::Disable if s.disabled => vec![],
            ServiceAccountAction::Disable => vec![ServiceAccountDisabled {
                service_account_id,
                tenant_id,
            }
            .into()],
            ServiceAccountAction::Enable if !s.disabled => vec![],
            ServiceAccountAction::Enable => vec![ServiceAccountEnabled {
                service_account_id,
                tenant_id,
            }
            .into()],
            ServiceAccountAction::Delete => vec![ServiceAccountDeleted {
                service_account_id,
                tenant_id,
            }
            .into()],
            ServiceAccountAction::SetPlatformAccess {
                permissions,
                caller_platform,
            } => s.decide_platform_access(&command.authority, permissions, caller_platform)?,
        })
    }
}

impl ServiceAccountState {
    /// `SetPlatformAccess`: refused to anyone but a platform administrator. Patterns it adds
    /// must be covered by the caller's own platform grants, and a disabled account gains
    /// none (narrowing its access is allowed, so it can be taken away before it is enabled
    /// again). Setting the set it already has appends nothing.
    fn decide_platform_access(
        &self,
        authority: &Authority,
        permissions: &BTreeSet<String>,
        caller_platform: &BTreeSet<String>,
    ) -> Result<Vec<ServiceAccountEvent>, ServiceAccountError> {
        if !matches!(authority, Authority::Platform) {
            return Err(ServiceAccountError::PlatformOnly);
        }
        let current: BTreeSet<&String> = self.platform_permissions.iter().collect();
        if permissions.iter().eq(current.iter().copied()) {
            return Ok(vec![]);
        }
        // Only what is added hands anything out; removing never does.
        let added: Vec<&String> = permissions
            .iter()
            .filter(|p| !current.contains(p))
            .collect();
        if self.disabled && !added.is_empty() {
            return Err(ServiceAccountError::Disabled);
        }
        let missing: Vec<String> = added
            .into_iter()
            .filter(|p| !caller_platform.iter().any(|held| covers(held, p)))
            .cloned()
            .collect();
        if !missing.is_empty() {
            return Err(Escalation {
                what: format!("setting the platform access of service account {}", self.id),
                missing,
            }
            .into());
        }
        Ok(vec![ServiceAccountPlatformAccessSet {
            service_account_id: self.id,
            tenant_id: self.tenant_id,
            permissions: permissions.iter().cloned().collect(),
            account_version: self.account_version + 1,
        }
        .into()])
    }
}

/// Whether the platform pattern `held` covers the pattern `wanted`: every permission
/// `wanted` matches, `held` matches too (`iam.*` covers `iam.users.*` and `iam.users.write`).
fn covers(held: &str, wanted: &str) -> bool {
    match held.strip_suffix('*') {
        Some(prefix) => prefix.ends_with('.') && wanted.starts_with(prefix),
        None => held == wanted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testing::given;

    const T: Uuid = Uuid::from_u128(1);
    const S: Uuid = Uuid::from_u128(5);

    fn cmd(action: ServiceAccountAction) -> ServiceAccountCommand {
        ServiceAccountCommand {
            tenant_id: T,
            tenant_status: Some(TenantStatus::Active),
            authority: Authority::Platform,
            action,
        }
    }

    fn rotate(secret_hash: &str, confers: &[&str]) -> ServiceAccountAction {
        ServiceAccountAction::RotateSecret {
            secret_hash: secret_hash.into(),
            confers: confers.iter().map(|p| p.to_string()).collect(),
        }
    }

    fn history() -> Vec<ServiceAccountEvent> {
        vec![
            ServiceAccountCreated {
                service_account_id: S,
                tenant_id: T,
                name: "ci".into(),
            }
            .into(),
            ServiceAccountSecretIssued {
                service_account_id: S,
                tenant_id: T,
                secret_hash: "h1".into(),
            }
            .into(),
        ]
    }

    #[test]
    fn creation_issues_a_secret_kept_out_of_kafka() {
        use charter_events::DomainEvent;
        let state = given::<ServiceAccount>([])
            .when(cmd(ServiceAccountAction::Create {
                id: S,
                name: "ci".into(),
                secret_hash: "h1".into(),
            }))
            .then(history());
        assert_eq!(state.0.unwrap().secret_hash.as_deref(), Some("h1"));
        assert!(history()[0].published() && !history()[1].published());
    }

    #[test]
    fn rotation_replaces_the_secret() {
        let state = given::<ServiceAccount>(history())
            .when(cmd(rotate("h2", &["iam.users.write"])))
            .then([
                ServiceAccountSecretIssued {
                    service_account_id: S,
                    tenant_id: T,
                    secret_hash: "h2".into(),
                }
                .into(),
                ServiceAccountSecretRotated {
                    service_account_id: S,
                    tenant_id: T,
                }
                .into(),
            ]);
        let state = state.0.unwrap();
        assert_eq!(state.secret_hash.as_deref(), Some("h2"));
        assert_eq!(
            state.account_version, 1,
            "tokens of the old secret are now refused"
        );
    }

    #[test]
    fn a_delegate_rotates_only_secrets_of_accounts_holding_less() {
        let by = |held: &[&str], action| ServiceAccountCommand {
            authority: Authority::holding(held),
            ..cmd(action)
        };
        given::<ServiceAccount>(history())
            .when(by(
                &["iam.service_accounts.write"],
                rotate("h2", &["iam.roles.write", "iam.service_accounts.write"]),
            ))
            .then_error(ServiceAccountError::Escalation(Escalation {
                what: format!("rotating the secret of service account {S}"),
                missing: vec!["iam.roles.write".into()],
            }));
        let state = given::<ServiceAccount>(history())
            .when(by(&["iam.service_accounts.write"], rotate("h2", &[])))
            .then([
                ServiceAccountSecretIssued {
                    service_account_id: S,
                    tenant_id: T,
                    secret_hash: "h2".into(),
                }
                .into(),
                ServiceAccountSecretRotated {
                    service_account_id: S,
                    tenant_id: T,
                }
                .into(),
            ]);
        assert_eq!(state.0.unwrap().account_version, 1);
    }

    #[test]
    fn disabled_accounts_are_inactive_and_other_tenants_see_nothing() {
        let state = given::<ServiceAccount>(history())
            .when(cmd(ServiceAccountAction::Disable))
            .then([ServiceAccountDisabled {
                service_account_id: S,
                tenant_id: T,
            }
            .into()]);
        assert!(!state.0.unwrap().active());
        given::<ServiceAccount>(history())
            .when(ServiceAccountCommand {
                tenant_id: Uuid::from_u128(2),
                ..cmd(ServiceAccountAction::Disable)
            })
            .then_error(ServiceAccountError::NotFound);
    }

    fn set_access(permissions: &[&str]) -> ServiceAccountAction {
        ServiceAccountAction::SetPlatformAccess {
            permissions: permissions.iter().map(|p| p.to_string()).collect(),
            caller_platform: ["iam.*".to_string()].into(),
        }
    }

    fn access_set(permissions: &[&str], account_version: i64) -> ServiceAccountEvent {
        ServiceAccountPlatformAccessSet {
            service_account_id: S,
            tenant_id: T,
            permissions: permissions.iter().map(|p| p.to_string()).collect(),
            account_version,
        }
        .into()
    }

    #[test]
    fn a_platform_administrator_sets_platform_access_and_older_tokens_go_stale() {
        let state = given::<ServiceAccount>(history())
            .when(cmd(set_access(&[
                "iam.users.read",
                "iam.permissions.write",
            ])))
            .then([access_set(&["iam.permissions.write", "iam.users.read"], 1)]);
        let state = state.0.unwrap();
        assert_eq!(
            state.platform_permissions,
            ["iam.permissions.write", "iam.users.read"]
        );
        assert_eq!(state.account_version, 1, "tokens minted before are refused");
        // The set is the whole new set: an empty one takes the access away.
        let state = given::<ServiceAccount>(
            history()
                .into_iter()
                .chain([access_set(&["iam.permissions.write"], 1)]),
        )
        .when(cmd(set_access(&[])))
        .then([access_set(&[], 2)]);
        assert!(state.0.unwrap().platform_permissions.is_empty());
    }

    #[test]
    fn rotations_and_platform_access_changes_share_one_account_version() {
        let state = given::<ServiceAccount>(
            history().into_iter().chain([
                ServiceAccountSecretRotated {
                    service_account_id: S,
                    tenant_id: T,
                }
                .into(),
                access_set(&["iam.permissions.write"], 2),
            ]),
        )
        .when(cmd(rotate("h3", &[])))
        .then([
            ServiceAccountSecretIssued {
                service_account_id: S,
                tenant_id: T,
                secret_hash: "h3".into(),
            }
            .into(),
            ServiceAccountSecretRotated {
                service_account_id: S,
                tenant_id: T,
            }
            .into(),
        ]);
        assert_eq!(state.0.unwrap().account_version, 3);
    }

    #[test]
    fn setting_the_same_platform_access_appends_nothing() {
        given::<ServiceAccount>(history())
            .when(cmd(set_access(&[])))
            .then([]);
        given::<ServiceAccount>(
            history()
                .into_iter()
                .chain([access_set(&["iam.permissions.write"], 1)]),
        )
        .when(cmd(set_access(&["iam.permissions.write"])))
        .then([]);
    }

    #[test]
    fn only_platform_administrators_set_platform_access() {
        // A delegate holding every iam.* permission in its tenant still holds nothing
        // platform-wide.
        given::<ServiceAccount>(history())
            .when(ServiceAccountCommand {
                authority: Authority::holding([
                    "iam.service_accounts.write",
                    "iam.permissions.write",
                ]),
                ..cmd(set_access(&["iam.permissions.write"]))
            })
            .then_error(ServiceAccountError::PlatformOnly);
        assert_eq!(
            Rejection::from(ServiceAccountError::PlatformOnly).kind,
            RejectionKind::Forbidden
        );
        // A platform administrator hands out only patterns its own platform grants cover.
        given::<ServiceAccount>(history())
            .when(cmd(ServiceAccountAction::SetPlatformAccess {
                permissions: ["iam.permissions.write", "iam.*", "billing.read"]
                    .map(String::from)
                    .into(),
                caller_platform: ["iam.permissions.*".to_string()].into(),
            }))
            .then_error(ServiceAccountError::Escalation(Escalation {
                what: format!("setting the platform access of service account {S}"),
                missing: vec!["billing.read".into(), "iam.*".into()],
            }));
        given::<ServiceAccount>(history())
            .when(cmd(set_access(&["iam.*", "iam.users.*"])))
            .then([access_set(&["iam.*", "iam.users.*"], 1)]);
    }

    #[test]
    fn disabled_accounts_gain_no_platform_access_and_deleted_ones_are_gone() {
        let disabled: ServiceAccountEvent = ServiceAccountDisabled {
            service_account_id: S,
            tenant_id: T,
        }
        .into();
        let granted = access_set(&["iam.permissions.write", "iam.users.read"], 1);
        given::<ServiceAccount>(history().into_iter().chain([disabled.clone()]))
            .when(cmd(set_access(&["iam.permissions.write"])))
            .then_error(ServiceAccountError::Disabled);
        // Narrowing is allowed: access can be taken away before the account is enabled.
        given::<ServiceAccount>(history().into_iter().chain([granted, disabled]))
            .when(cmd(set_access(&["iam.users.read"])))
            .then([access_set(&["iam.users.read"], 2)]);
        let deleted: ServiceAccountEvent = ServiceAccountDeleted {
            service_account_id: S,
            tenant_id: T,
        }
        .into();
        given::<ServiceAccount>(history().into_iter().chain([deleted]))
            .when(cmd(set_access(&["iam.permissions.write"])))
            .then_error(ServiceAccountError::NotFound);
        given::<ServiceAccount>(history())
            .when(ServiceAccountCommand {
                tenant_id: Uuid::from_u128(2),
                ..cmd(set_access(&["iam.permissions.write"]))
            })
            .then_error(ServiceAccountError::NotFound);
    }
}
