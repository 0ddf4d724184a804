//! Registering a service's permissions. The claims it takes are the registry's write-side
//! index (`command::context::unregistered`).

use charter_events::permission::PermissionEvent;
use charter_events::streams::{registry_stream, PERMISSION_NAME_SCOPE};
use deadpool_postgres::Transaction;

use super::{CommandError, CommandHandler};
use crate::domain::permission_registry::{PermissionRegistry, Register};
use crate::store::claims::ClaimChange;

pub struct RegisterPermissions(pub Register);

impl CommandHandler for RegisterPermissions {
    type Aggregate = PermissionRegistry;

    fn stream_id(&self) -> String {
        registry_stream(&self.0.service)
    }

    async fn prepare(&self, _tx: &Transaction<'_>) -> Result<Vec<Register>, CommandError> {
        Ok(vec![self.0.clone()])
    }

    fn claims(&self, _: &PermissionRegistry, events: &[PermissionEvent]) -> Vec<ClaimChange> {
        events
            .iter()
            .filter_map(|e| match e {
                PermissionEvent::Registered(r) => Some(ClaimChange::Claim {
                    scope: PERMISSION_NAME_SCOPE.into(),
                    value: r.name.clone(),
                }),
                PermissionEvent::LabelChanged(_) => None,
            })
            .collect()
    }
}
