//! Workspace commands: create, rename, delete. Each holds the owning tenant's lock shared, so
//! a tenant being blocked or deleted waits for them, and they see its final status.

use charter_events::streams::{workspace_name_scope, workspace_stream};
use charter_events::workspace::WorkspaceEvent;
use deadpool_postgres::Transaction;
use uuid::Uuid;

use super::context::status_for_update;
use super::{CommandError, CommandHandler};
use crate::domain::workspace::{Workspace, WorkspaceAction, WorkspaceCommand};
use crate::store::claims::ClaimChange;

pub struct WorkspaceHandler {
    pub tenant_id: Uuid,
    pub workspace_id: Uuid,
    pub action: WorkspaceAction,
}

impl CommandHandler for WorkspaceHandler {
    type Aggregate = Workspace;

    fn stream_id(&self) -> String {
        workspace_stream(self.workspace_id)
    }

    async fn prepare(&self, tx: &Transaction<'_>) -> Result<Vec<WorkspaceCommand>, CommandError> {
        let tenant_status = status_for_update(tx, self.tenant_id).await?;
        Ok(vec![WorkspaceCommand {
            tenant_id: self.tenant_id,
            tenant_status,
            action: self.action.clone(),
        }])
    }

    fn claims(&self, before: &Workspace, events: &[WorkspaceEvent]) -> Vec<ClaimChange> {
        let scope = workspace_name_scope(self.tenant_id);
        let mut name = before.0.as_ref().map(|w| w.name.clone());
        let mut changes = Vec::new();
        for event in events {
            let release = |name: &Option<String>| {
                name.clone().map(|value| ClaimChange::Release {
                    scope: scope.clone(),
                    value,
                })
            };
            match event {
                WorkspaceEvent::Created(c) => {
                    name = Some(c.name.clone());
                }
                WorkspaceEvent::Renamed(r) => {
                    changes.extend(release(&name));
                    name = Some(r.name.clone());
                }
                WorkspaceEvent::Deleted(_) => {
                    changes.extend(release(&name));
                    name = None;
                    continue;
                }
            }
            changes.push(ClaimChange::Claim {
                scope: scope.clone(),
                value: name.clone().unwrap_or_default(),
            });
        }
        changes
    }
}
