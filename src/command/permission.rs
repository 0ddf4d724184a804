//! Registering a service's permissions, and the write-side existence check roles rely on.

use charter_events::permission::PermissionEvent;
use charter_events::DomainEvent;
use deadpool_postgres::{GenericClient, Transaction};

use super::{CommandError, CommandHandler};
use crate::domain::permission_registry::{PermissionRegistry, Register};
use crate::store::claims::ClaimChange;

/// Permission names are global: one service owns each. The claim doubles as the registry's
/// index, consistent inside a command's transaction.
pub const NAME_SCOPE: &str = "permission.name";

pub fn registry_stream(service: &str) -> String {
    format!("{}-{service}", PermissionEvent::STREAM_TYPE)
}

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
                    scope: NAME_SCOPE.into(),
                    value: r.name.clone(),
                }),
                PermissionEvent::LabelChanged(_) => None,
            })
            .collect()
    }
}

/// The names among `names` that no service has registered.
pub async fn unregistered(
    client: &impl GenericClient,
    names: &[String],
) -> Result<Vec<String>, CommandError> {
    let rows = client
        .query(
            "SELECT n FROM unnest($1::text[]) AS n \
             WHERE NOT EXISTS (SELECT 1 FROM unique_claims \
                               WHERE claim_scope = $2 AND claim_value = n)",
            &[&names, &NAME_SCOPE],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}
