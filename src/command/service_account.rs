//! Service account commands. They hold the tenant's lock shared, like every command of a
//! tenant's resources. Rotating a secret reads what the account holds: whoever rotates it
//! learns the new secret, so the caller must hold all of that.

use std::collections::BTreeSet;

use charter_events::assignment::SubjectType;
use charter_events::streams::service_account_stream;
use deadpool_postgres::Transaction;
use uuid::Uuid;

use super::context::{permissions_of, status_for_update};
use super::{CommandError, CommandHandler};
use crate::domain::delegation::Authority;
use crate::domain::service_account::{ServiceAccount, ServiceAccountAction, ServiceAccountCommand};

/// What the request asks; what the account holds is filled in by `prepare`.
#[derive(Debug, Clone)]
pub enum ServiceAccountRequest {
    Create {
        name: String,
        secret_hash: String,
    },
    RotateSecret {
        secret_hash: String,
    },
    Disable,
    Enable,
    Delete,
    /// The whole new set of platform patterns, and the caller's own platform grants.
    SetPlatformAccess {
        permissions: BTreeSet<String>,
        caller_platform: BTreeSet<String>,
    },
}

pub struct ServiceAccountHandler {
    pub tenant_id: Uuid,
    pub service_account_id: Uuid,
    /// The caller's; a rotation hands it the account's access.
    pub authority: Authority,
    pub request: ServiceAccountRequest,
}

impl CommandHandler for ServiceAccountHandler {
    type Aggregate = ServiceAccount;

    fn stream_id(&self) -> String {
        service_account_stream(self.service_account_id)
    }

    async fn prepare(
        &self,
        tx: &Transaction<'_>,
    ) -> Result<Vec<ServiceAccountCommand>, CommandError> {
        let tenant_status = status_for_update(tx, self.tenant_id).await?;
        let action = match &self.request {
            ServiceAccountRequest::Create { name, secret_hash } => ServiceAccountAction::Create {
                id: self.service_account_id,
                name: name.clone(),
                secret_hash: secret_hash.clone(),
            },
            ServiceAccountRequest::RotateSecret { secret_hash } => {
                let confers = permissions_of(
                    tx,
                    self.tenant_id,
                    SubjectType::ServiceAccount,
                    self.service_account_id,
                )
                .await?;
                ServiceAccountAction::RotateSecret {
                    secret_hash: secret_hash.clone(),
                    confers,
                }
            }
            ServiceAccountRequest::Disable => ServiceAccountAction::Disable,
            ServiceAccountRequest::Enable => ServiceAccountAction::Enable,
            ServiceAccountRequest::Delete => ServiceAccountAction::Delete,
            ServiceAccountRequest::SetPlatformAccess {
                permissions,
                caller_platform,
            } => ServiceAccountAction::SetPlatformAccess {
                permissions: permissions.clone(),
                caller_platform: caller_platform.clone(),
            },
        };
        Ok(vec![ServiceAccountCommand {
            tenant_id: self.tenant_id,
            tenant_status,
            authority: self.authority.clone(),
            action,
        }])
    }
}
