//! Tenant commands: create, rename/move, block, unblock, delete.

use charter_events::role::RoleEvent;
use charter_events::streams::{role_name_scope, role_stream, tenant_stream, TENANT_SLUG_SCOPE};
use charter_events::tenant::TenantEvent;
use charter_events::{DomainEvent, Metadata};
use deadpool_postgres::Transaction;
use uuid::Uuid;

use super::context::parent_context;
use super::{CommandError, CommandHandler};
use crate::domain::role;
use crate::domain::tenant::{Tenant, TenantCommand};
use crate::store::claims::{self, ClaimChange};
use crate::store::events::{Appended, NewEvent};
use crate::store::locks::{self, Mode};
use crate::store::{events, hierarchy};

/// Mirrors hierarchy events into the write-side index.
async fn index_hierarchy(tx: &Transaction<'_>, events: &[TenantEvent]) -> Result<(), CommandError> {
    for event in events {
        match event {
            TenantEvent::Created(c) => hierarchy::set_parent(tx, c.tenant_id, c.parent_id).await?,
            TenantEvent::Moved(m) => hierarchy::set_parent(tx, m.tenant_id, m.parent_id).await?,
            _ => {}
        }
    }
    Ok(())
}

pub struct CreateTenant {
    pub tenant_id: Uuid,
    pub name: String,
    pub slug: String,
    pub parent_id: Option<Uuid>,
}

impl CommandHandler for CreateTenant {
    type Aggregate = Tenant;

    fn stream_id(&self) -> String {
        tenant_stream(self.tenant_id)
    }

    async fn prepare(&self, tx: &Transaction<'_>) -> Result<Vec<TenantCommand>, CommandError> {
        let parent = match self.parent_id {
            Some(id) => {
                locks::hierarchy(tx, Mode::Shared).await?;
                Some(parent_context(tx, id).await?)
            }
            None => None,
        };
        Ok(vec![TenantCommand::Create {
            tenant_id: self.tenant_id,
            name: self.name.clone(),
            slug: self.slug.clone(),
            parent,
        }])
    }

    /// Indexes the hierarchy and seeds the system roles into the new tenant, by events, in
    /// the same transaction.
    async fn after_append(
        &self,
        tx: &Transaction<'_>,
        events: &[TenantEvent],
        metadata: &Metadata,
    ) -> Result<Vec<Appended>, CommandError> {
        index_hierarchy(tx, events).await?;
        let mut seeded = Vec::new();
        for (template, permissions) in role::templates() {
            let role_id = Uuid::now_v7();
            let stream = role_stream(role_id);
            let event = role::seeded(role_id, self.tenant_id, template, permissions);
            seeded.push(
                events::append_new_stream(
                    tx,
                    RoleEvent::STREAM_TYPE,
                    &stream,
                    &[NewEvent::of(&event)],
                    metadata,
                )
                .await?,
            );
            let claim = ClaimChange::Claim {
                scope: role_name_scope(self.tenant_id, None),
                value: template.to_owned(),
            };
            claims::apply(tx, &stream, &[claim]).await?;
        }
        Ok(seeded)
    }

    fn claims(&self, _: &Tenant, events: &[TenantEvent]) -> Vec<ClaimChange> {
        events
            .iter()
            .filter_map(|e| match e {
                TenantEvent::Created(c) => Some(ClaimChange::Claim {
                    scope: TENANT_SLUG_SCOPE.into(),
                    value: c.slug.clone(),
                }),
                _ => None,
            })
            .collect()
    }
}

/// `PATCH`: any of a new name and a new parent (`Some(None)` moves the tenant to the root).
pub struct UpdateTenant {
    pub tenant_id: Uuid,
    pub name: Option<String>,
    pub parent_id: Option<Option<Uuid>>,
}

impl CommandHandler for UpdateTenant {
    type Aggregate = Tenant;

    fn stream_id(&self) -> String {
        tenant_stream(self.tenant_id)
    }

    async fn prepare(&self, tx: &Transaction<'_>) -> Result<Vec<TenantCommand>, CommandError> {
        let mut commands = Vec::new();
        if let Some(name) = &self.name {
            commands.push(TenantCommand::Rename { name: name.clone() });
        }
        if let Some(parent_id) = self.parent_id {
            locks::hierarchy(tx, Mode::Exclusive).await?;
            let parent = match parent_id {
                Some(id) => Some(parent_context(tx, id).await?),
                None => None,
            };
            commands.push(TenantCommand::Move {
                parent,
                subtree_height: hierarchy::subtree_height(tx, self.tenant_id).await?,
            });
        }
        Ok(commands)
    }

    async fn after_append(
        &self,
        tx: &Transaction<'_>,
        events: &[TenantEvent],
        _metadata: &Metadata,
    ) -> Result<Vec<Appended>, CommandError> {
        index_hierarchy(tx, events).await?;
        Ok(vec![])
    }
}

/// Block, unblock and delete change whether the tenant can be used at all, so they hold the
/// tenant's lock exclusively: no workspace command can be deciding against the old status.
pub struct ChangeTenantStatus {
    pub tenant_id: Uuid,
    pub command: TenantCommand,
}

impl CommandHandler for ChangeTenantStatus {
    type Aggregate = Tenant;

    fn stream_id(&self) -> String {
        tenant_stream(self.tenant_id)
    }

    async fn prepare(&self, tx: &Transaction<'_>) -> Result<Vec<TenantCommand>, CommandError> {
        locks::tenant(tx, self.tenant_id, Mode::Exclusive).await?;
        Ok(vec![self.command.clone()])
    }
}
