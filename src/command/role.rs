//! Role commands. Permissions must be registered (checked against the registry's write-side
//! claims), and a workspace-scoped role must name a live workspace of the tenant.

use std::collections::BTreeSet;

use charter_events::role::RoleEvent;
use charter_events::streams::{role_name_scope, role_stream};
use deadpool_postgres::Transaction;
use uuid::Uuid;

use super::context::{status_for_update, unregistered, workspace_is_live};
use super::{CommandError, CommandHandler};
use crate::domain::delegation::Authority;
use crate::domain::role::{Role, RoleAction, RoleCommand};
use crate::store::claims::ClaimChange;

#[derive(Debug, Clone)]
pub enum RoleRequest {
    Create {
        name: String,
        permissions: BTreeSet<String>,
        workspace_id: Option<Uuid>,
    },
    Rename {
        name: String,
    },
    Grant {
        permissions: BTreeSet<String>,
    },
    Revoke {
        permissions: BTreeSet<String>,
    },
    Delete,
}

pub struct RoleHandler {
    pub tenant_id: Uuid,
    pub role_id: Uuid,
    /// The caller's; a role's permissions go to whoever holds it.
    pub authority: Authority,
    pub request: RoleRequest,
}

impl CommandHandler for RoleHandler {
    type Aggregate = Role;

    fn stream_id(&self) -> String {
        role_stream(self.role_id)
    }

    async fn prepare(&self, tx: &Transaction<'_>) -> Result<Vec<RoleCommand>, CommandError> {
        let tenant_status = status_for_update(tx, self.tenant_id).await?;
        let missing = |p: &BTreeSet<String>| {
            let names: Vec<String> = p.iter().cloned().collect();
            async move { unregistered(tx, &names).await }
        };
        let action = match &self.request {
            RoleRequest::Create {
                name,
                permissions,
                workspace_id,
            } => {
                let workspace = match workspace_id {
                    None => None,
                    Some(id) => Some((*id, workspace_is_live(tx, self.tenant_id, *id).await?)),
                };
                RoleAction::Create {
                    role_id: self.role_id,
                    name: name.clone(),
                    permissions: permissions.clone(),
                    workspace,
                    unregistered: missing(permissions).await?,
                }
            }
            RoleRequest::Rename { name } => RoleAction::Rename { name: name.clone() },
            RoleRequest::Grant { permissions } => RoleAction::Grant {
                permissions: permissions.clone(),
                unregistered: missing(permissions).await?,
            },
            RoleRequest::Revoke { permissions } => RoleAction::Revoke {
                permissions: permissions.clone(),
            },
            RoleRequest::Delete => RoleAction::Delete,
        };
        Ok(vec![RoleCommand {
            tenant_id: self.tenant_id,
            tenant_status,
            authority: self.authority.clone(),
            action,
        }])
    }

    fn claims(&self, before: &Role, events: &[RoleEvent]) -> Vec<ClaimChange> {
        let mut current = before.0.as_ref().map(|r| (r.workspace_id, r.name.clone()));
        let mut changes = Vec::new();
        for event in events {
            match event {
                RoleEvent::Created(c) => {
                    changes.push(ClaimChange::Claim {
                        scope: role_name_scope(c.tenant_id, c.workspace_id),
                        value: c.name.clone(),
                    });
                    current = Some((c.workspace_id, c.name.clone()));
                }
                RoleEvent::Renamed(r) => {
                    if let Some((w, old)) = current.take() {
                        changes.push(ClaimChange::Release {
                            scope: role_name_scope(self.tenant_id, w),
                            value: old,
                        });
                    }
                    changes.push(ClaimChange::Claim {
                        scope: role_name_scope(self.tenant_id, r.workspace_id),
                        value: r.name.clone(),
                    });
                    current = Some((r.workspace_id, r.name.clone()));
                }
                RoleEvent::Deleted(_) => {
                    if let Some((w, old)) = current.take() {
                        changes.push(ClaimChange::Release {
                            scope: role_name_scope(self.tenant_id, w),
                            value: old,
                        });
                    }
                }
                _ => {}
            }
        }
        changes
    }
}
