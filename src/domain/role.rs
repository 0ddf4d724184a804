//! The `role` aggregate: a named set of registered permissions, scoped to a tenant or to one
//! of its workspaces. System roles, seeded from templates with every tenant, are read-only.

use std::collections::BTreeSet;

use charter_events::role::{
    RoleCreated, RoleDeleted, RoleEvent, RolePermissionsGranted, RolePermissionsRevoked,
    RoleRenamed,
};
use uuid::Uuid;

use super::delegation::{Authority, Escalation};
use super::permission_registry::CHARTER_PERMISSIONS;
use super::tenant::{require_active, TenantGate, TenantStatus};
use super::{Aggregate, Rejection, RejectionKind};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleState {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub workspace_id: Option<Uuid>,
    pub name: String,
    pub permissions: BTreeSet<String>,
    pub template: Option<String>,
    pub deleted: bool,
}

/// The write model of one role stream. `None` until `role.created`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Role(pub Option<RoleState>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleCommand {
    pub tenant_id: Uuid,
    pub tenant_status: Option<TenantStatus>,
    /// Who decides: a role's permissions are handed out to whoever holds it, so a caller
    /// creates or grants only permissions it holds itself.
    pub authority: Authority,
    pub action: RoleAction,
}

/// Facts loaded before deciding: which of the named permissions are not registered, and
/// whether the named workspace is a live workspace of the tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleAction {
    Create {
        role_id: Uuid,
        name: String,
        permissions: BTreeSet<String>,
        /// The workspace and whether it is a live workspace of this tenant.
        workspace: Option<(Uuid, bool)>,
        unregistered: Vec<String>,
    },
    Rename {
        name: String,
    },
    Grant {
        permissions: BTreeSet<String>,
        unregistered: Vec<String>,
    },
    Revoke {
        permissions: BTreeSet<String>,
    },
    Delete,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoleError {
    #[error("role not found")]
    NotFound,
    #[error("role already exists")]
    AlreadyExists,
    #[error("tenant not found")]
    TenantNotFound,
    #[error("tenant is blocked")]
    TenantBlocked,
    #[error("workspace {0} is not a workspace of this tenant")]
    WorkspaceNotFound(Uuid),
    #[error("permissions are not registered: {}", .0.join(", "))]
    Unregistered(Vec<String>),
    #[error("system roles cannot be changed")]
    SystemRole,
    #[error(transparent)]
    Escalation(#[from] Escalation),
}

impl From<RoleError> for Rejection {
    fn from(e: RoleError) -> Self {
        use RejectionKind::*;
        let (kind, code) = match &e {
            RoleError::NotFound | RoleError::TenantNotFound => (NotFound, "not-found"),
            RoleError::AlreadyExists => (Conflict, "already-exists"),
            RoleError::TenantBlocked => (Conflict, "tenant-blocked"),
            RoleError::SystemRole => (Conflict, "system-role"),
            RoleError::WorkspaceNotFound(_) => (Invalid, "workspace-not-found"),
            RoleError::Unregistered(_) => (Invalid, "permission-not-registered"),
            RoleError::Escalation(e) => return e.clone().into(),
        };
        Rejection::new(kind, code, e)
    }
}

/// The system role templates seeded into every tenant: (template, permissions).
pub fn templates() -> Vec<(&'static str, Vec<String>)> {
    let all: Vec<String> = CHARTER_PERMISSIONS
        .iter()
        .map(|(n, _)| n.to_string())
        .collect();
    let reads: Vec<String> = all
        .iter()
        .filter(|p| p.ends_with(".read"))
        .cloned()
        .collect();
    let viewer = reads
        .iter()
        .filter(|p| *p != "iam.audit.read")
        .cloned()
        .collect();
    vec![
        ("tenant_admin", all),
        ("auditor", reads),
        ("viewer", viewer),
    ]
}

/// The `role.created` event of a system role seeded into `tenant_id`.
pub fn seeded(
    role_id: Uuid,
    tenant_id: Uuid,
    template: &str,
    permissions: Vec<String>,
) -> RoleEvent {
    RoleCreated {
        role_id,
        tenant_id,
        workspace_id: None,
        name: template.to_owned(),
        permissions,
        template: Some(template.to_owned()),
    }
    .into()
}

impl Aggregate for Role {
    type Command = RoleCommand;
    type Event = RoleEvent;
    type Error = RoleError;

    fn apply(self, event: &RoleEvent) -> Self {
        let Some(mut r) = self.0 else {
            return match event {
                RoleEvent::Created(e) => Role(Some(RoleState {
                    id: e.role_id,
                    tenant_id: e.tenant_id,
                    workspace_id: e.workspace_id,
                    name: e.name.clone(),
                    permissions: e.permissions.iter().cloned().collect(),
                    template: e.template.clone(),
                    deleted: false,
                })),
                _ => Role(None),
            };
        };
        match event {
            RoleEvent::Created(_) => {}
            RoleEvent::Renamed(e) => r.name = e.name.clone(),
            RoleEvent::PermissionsGranted(e) => r.permissions.extend(e.permissions.iter().cloned()),
            RoleEvent::PermissionsRevoked(e) => {
                for p in &e.permissions {
                    r.permissions.remove(p);
                }
            }
            RoleEvent::Deleted(_) => r.deleted = true,
        }
        Role(Some(r))
    }

    fn decide(&self, command: &RoleCommand) -> Result<Vec<RoleEvent>, RoleError> {
        require_active(command.tenant_status).map_err(|gate| match gate {
            TenantGate::NotFound => RoleError::TenantNotFound,
            TenantGate::Blocked => RoleError::TenantBlocked,
        })?;
        let tenant_id = command.tenant_id;
        if let RoleAction::Create {
            role_id,
            name,
            permissions,
            workspace,
            unregistered,
        } = &command.action
        {
            if self.0.is_some() {
                return Err(RoleError::AlreadyExists);
            }
            if let Some((id, false)) = workspace {
                return Err(RoleError::WorkspaceNotFound(*id));
            }
            if !unregistered.is_empty() {
                return Err(RoleError::Unregistered(unregistered.clone()));
            }
            command
                .authority
                .may_hand_out(|| format!("creating role {name:?}"), permissions)?;
            return Ok(vec![RoleCreated {
                role_id: *role_id,
                tenant_id,
                workspace_id: workspace.map(|(id, _)| id),
                name: name.clone(),
                permissions: permissions.iter().cloned().collect(),
                template: None,
            }
            .into()]);
        }
        let r = match &self.0 {
            Some(r) if !r.deleted && r.tenant_id == tenant_id => r,
            _ => return Err(RoleError::NotFound),
        };
        if r.template.is_some() {
            return Err(RoleError::SystemRole);
        }
        let (role_id, workspace_id) = (r.id, r.workspace_id);
        Ok(match &command.action {
            RoleAction::Create { .. } => unreachable!("handled above"),
            RoleAction::Rename { name } if *name == r.name => vec![],
            RoleAction::Rename { name } => vec![RoleRenamed {
                role_id,
                tenant_id,
                workspace_id,
                name: name.clone(),
            }
            .into()],
            RoleAction::Grant {
                permissions,
                unregistered,
            } => {
                if !unregistered.is_empty() {
                    return Err(RoleError::Unregistered(unregistered.clone()));
                }
                let new: Vec<String> = permissions.difference(&r.permissions).cloned().collect();
                command
                    .authority
                    .may_hand_out(|| format!("granting to role {role_id}"), &new)?;
                if new.is_empty() {
                    vec![]
                } else {
                    vec![RolePermissionsGranted {
                        role_id,
                        tenant_id,
                        workspace_id,
                        permissions: new,
                    }
                    .into()]
                }
            }
            RoleAction::Revoke { permissions } => {
                let gone: Vec<String> = permissions.intersection(&r.permissions).cloned().collect();
                if gone.is_empty() {
                    vec![]
                } else {
                    vec![RolePermissionsRevoked {
                        role_id,
                        tenant_id,
                        workspace_id,
                        permissions: gone,
                    }
                    .into()]
                }
            }
            RoleAction::Delete => vec![RoleDeleted {
                role_id,
                tenant_id,
                workspace_id,
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
    const R: Uuid = Uuid::from_u128(5);
    const W: Uuid = Uuid::from_u128(9);

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn cmd(action: RoleAction) -> RoleCommand {
        RoleCommand {
            tenant_id: T,
            tenant_status: Some(TenantStatus::Active),
            authority: Authority::Platform,
            action,
        }
    }

    /// A delegated administrator holding `held`.
    fn by(held: &[&str], action: RoleAction) -> RoleCommand {
        RoleCommand {
            authority: Authority::holding(held),
            ..cmd(action)
        }
    }

    fn create(workspace: Option<(Uuid, bool)>, unregistered: &[&str]) -> RoleAction {
        RoleAction::Create {
            role_id: R,
            name: "editor".into(),
            permissions: set(&["docs.edit", "docs.read"]),
            workspace,
            unregistered: unregistered.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn created(workspace_id: Option<Uuid>) -> RoleEvent {
        RoleCreated {
            role_id: R,
            tenant_id: T,
            workspace_id,
            name: "editor".into(),
            permissions: vec!["docs.edit".into(), "docs.read".into()],
            template: None,
        }
        .into()
    }

    #[test]
    fn creates_tenant_and_workspace_scoped_roles() {
        given::<Role>([])
            .when(cmd(create(None, &[])))
            .then([created(None)]);
        given::<Role>([])
            .when(cmd(create(Some((W, true)), &[])))
            .then([created(Some(W))]);
    }

    #[test]
    fn only_registered_permissions_and_own_workspaces() {
        given::<Role>([])
            .when(cmd(create(None, &["docs.edit"])))
            .then_error(RoleError::Unregistered(vec!["docs.edit".into()]));
        given::<Role>([])
            .when(cmd(create(Some((W, false)), &[])))
            .then_error(RoleError::WorkspaceNotFound(W));
    }

    #[test]
    fn grants_and_revokes_only_what_changes() {
        given::<Role>([created(None)])
            .when(cmd(RoleAction::Grant {
                permissions: set(&["docs.read", "docs.delete"]),
                unregistered: vec![],
            }))
            .then([RolePermissionsGranted {
                role_id: R,
                tenant_id: T,
                workspace_id: None,
                permissions: vec!["docs.delete".into()],
            }
            .into()]);
        given::<Role>([created(None)])
            .when(cmd(RoleAction::Revoke {
                permissions: set(&["docs.nothing"]),
            }))
            .then([]);
        let state = given::<Role>([created(None)])
            .when(cmd(RoleAction::Revoke {
                permissions: set(&["docs.edit"]),
            }))
            .then([RolePermissionsRevoked {
                role_id: R,
                tenant_id: T,
                workspace_id: None,
                permissions: vec!["docs.edit".into()],
            }
            .into()]);
        assert_eq!(state.0.unwrap().permissions, set(&["docs.read"]));
    }

    #[test]
    fn a_delegate_creates_and_grants_only_what_it_holds() {
        // A helpdesk holding iam.roles.write cannot mint a role with more than it holds...
        given::<Role>([])
            .when(by(&["iam.roles.write", "docs.read"], create(None, &[])))
            .then_error(RoleError::Escalation(Escalation {
                what: "creating role \"editor\"".into(),
                missing: vec!["docs.edit".into()],
            }));
        given::<Role>([])
            .when(by(&["docs.edit", "docs.read"], create(None, &[])))
            .then([created(None)]);
        // ...nor grant a role (one it holds itself, say) what it lacks.
        let grant = |p: &[&str]| RoleAction::Grant {
            permissions: set(p),
            unregistered: vec![],
        };
        given::<Role>([created(None)])
            .when(by(
                &["iam.roles.write"],
                grant(&["iam.users.write", "docs.read"]),
            ))
            .then_error(RoleError::Escalation(Escalation {
                what: format!("granting to role {R}"),
                missing: vec!["iam.users.write".into()],
            }));
        // What the role already has is not handed out again; what it lacks is.
        given::<Role>([created(None)])
            .when(by(&["iam.roles.write"], grant(&["docs.read"])))
            .then([]);
        // Revoking hands out nothing.
        given::<Role>([created(None)])
            .when(by(
                &[],
                RoleAction::Revoke {
                    permissions: set(&["docs.edit"]),
                },
            ))
            .then([RolePermissionsRevoked {
                role_id: R,
                tenant_id: T,
                workspace_id: None,
                permissions: vec!["docs.edit".into()],
            }
            .into()]);
    }

    #[test]
    fn system_roles_are_read_only() {
        let seeded = seeded(R, T, "viewer", vec!["iam.users.read".into()]);
        for action in [
            RoleAction::Rename { name: "x".into() },
            RoleAction::Delete,
            RoleAction::Revoke {
                permissions: set(&["iam.users.read"]),
            },
        ] {
            given::<Role>([seeded.clone()])
                .when(cmd(action))
                .then_error(RoleError::SystemRole);
        }
    }

    #[test]
    fn templates_grant_what_their_names_say() {
        let t = templates();
        let admin = &t.iter().find(|(n, _)| *n == "tenant_admin").unwrap().1;
        let auditor = &t.iter().find(|(n, _)| *n == "auditor").unwrap().1;
        let viewer = &t.iter().find(|(n, _)| *n == "viewer").unwrap().1;
        assert_eq!(admin.len(), CHARTER_PERMISSIONS.len());
        assert!(auditor.contains(&"iam.audit.read".to_string()));
        assert!(!viewer.contains(&"iam.audit.read".to_string()));
        assert!(viewer.iter().chain(auditor).all(|p| p.ends_with(".read")));
    }
}
