//! The `service_account` aggregate: a non-human principal of one tenant with client
//! credentials. Its secret is issued by the caller (256 random bits) and stored as a digest.

use charter_events::service_account::{
    ServiceAccountCreated, ServiceAccountDeleted, ServiceAccountDisabled, ServiceAccountEnabled,
    ServiceAccountEvent, ServiceAccountSecretIssued, ServiceAccountSecretRotated,
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
    /// How many times the secret was rotated. Tokens carry it as `account_version`, and a
    /// token minted before the newest rotation is refused.
    pub secret_version: i64,
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
                    secret_version: 0,
                    disabled: false,
                    deleted: false,
                })),
                _ => ServiceAccount(None),
            };
        };
        match event {
            ServiceAccountEvent::Created(_) => {}
            ServiceAccountEvent::SecretRotated(_) => s.secret_version += 1,
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
        })
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
            state.secret_version, 1,
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
        assert_eq!(state.0.unwrap().secret_version, 1);
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
}
