//! The `service_account` aggregate: a non-human principal of one tenant with client
//! credentials. Its secret is issued by the caller (256 random bits) and stored as a digest.

use charter_events::service_account::{
    ServiceAccountCreated, ServiceAccountDeleted, ServiceAccountDisabled, ServiceAccountEnabled,
    ServiceAccountEvent, ServiceAccountSecretIssued, ServiceAccountSecretRotated,
};
use uuid::Uuid;

use super::tenant::{require_active, TenantGate, TenantStatus};
use super::{Aggregate, Rejection, RejectionKind};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccountState {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    pub secret_hash: Option<String>,
    pub disabled: bool,
    pub deleted: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceAccount(pub Option<ServiceAccountState>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccountCommand {
    pub tenant_id: Uuid,
    pub tenant_status: Option<TenantStatus>,
    pub action: ServiceAccountAction,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceAccountAction {
    Create {
        id: Uuid,
        name: String,
        secret_hash: String,
    },
    RotateSecret {
        secret_hash: String,
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
                    disabled: false,
                    deleted: false,
                })),
                _ => ServiceAccount(None),
            };
        };
        match event {
            ServiceAccountEvent::Created(_) | ServiceAccountEvent::SecretRotated(_) => {}
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
            ServiceAccountAction::RotateSecret { secret_hash } => vec![
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
            ],
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
            action,
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
            .when(cmd(ServiceAccountAction::RotateSecret {
                secret_hash: "h2".into(),
            }))
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
        assert_eq!(state.0.unwrap().secret_hash.as_deref(), Some("h2"));
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
                tenant_status: Some(TenantStatus::Active),
                action: ServiceAccountAction::Disable,
            })
            .then_error(ServiceAccountError::NotFound);
    }
}
