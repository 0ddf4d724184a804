//! Service account commands. They hold the tenant's lock shared, like every command of a
//! tenant's resources.

use charter_events::envelope::stream_id;
use charter_events::service_account::ServiceAccountEvent;
use charter_events::DomainEvent;
use deadpool_postgres::Transaction;
use uuid::Uuid;

use super::tenant::status_for_update;
use super::{CommandError, CommandHandler};
use crate::domain::service_account::{ServiceAccount, ServiceAccountAction, ServiceAccountCommand};

pub fn service_account_stream(id: Uuid) -> String {
    stream_id(ServiceAccountEvent::STREAM_TYPE, id)
}

pub struct ServiceAccountHandler {
    pub tenant_id: Uuid,
    pub service_account_id: Uuid,
    pub action: ServiceAccountAction,
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
        Ok(vec![ServiceAccountCommand {
            tenant_id: self.tenant_id,
            tenant_status: status_for_update(tx, self.tenant_id).await?,
            action: self.action.clone(),
        }])
    }
}
