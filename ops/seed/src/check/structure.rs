//! Checking tenants (with the system roles seeded with them), workspaces, the permission
//! registry and roles.

use charter_events::permission::PermissionEvent;
use charter_events::role::RoleEvent;
use charter_events::streams::{registry_stream, role_name_scope, stream_id};
use charter_events::tenant::TenantEvent;
use charter_events::workspace::WorkspaceEvent;
use charter_events::{DomainEvent, RecordedEvent, Scoped};
use uuid::Uuid;

use super::{decided, decode, valid, Checked, LogChecker};
use charter::command::permission::RegisterPermissions;
use charter::command::role::{RoleHandler, RoleRequest};
use charter::command::tenant::CreateTenant;
use charter::command::workspace::WorkspaceHandler;
use charter::command::CommandHandler;
use charter::domain::delegation::Authority;
use charter::domain::permission_registry::Register;
use charter::domain::role::{self, RoleAction, RoleCommand};
use charter::domain::tenant::{ParentContext, TenantCommand};
use charter::domain::validate;
use charter::domain::workspace::{WorkspaceAction, WorkspaceCommand};
use charter::store::claims::ClaimChange;

/// The events of the command's first stream, and the rest (written by `after_append`).
fn split(events: &[RecordedEvent]) -> (&[RecordedEvent], &[RecordedEvent]) {
    let n = events
        .iter()
        .take_while(|e| e.stream_id == events[0].stream_id)
        .count();
    events.split_at(n)
}

impl LogChecker {
    fn ancestors(&self, id: Uuid) -> Vec<Uuid> {
        let mut out = Vec::new();
        let mut at = self.hierarchy.get(&id).copied().flatten();
        while let Some(p) = at.filter(|_| out.len() < 64) {
            out.push(p);
            at = self.hierarchy.get(&p).copied().flatten();
        }
        out
    }

    fn subtree_height(&self, id: Uuid) -> usize {
        let children = self.hierarchy.iter().filter(|(_, p)| **p == Some(id));
        1 + children
            .map(|(c, _)| self.subtree_height(*c))
            .max()
            .unwrap_or(0)
    }

    fn parent(&self, id: Option<Uuid>) -> Option<ParentContext> {
        id.map(|id| ParentContext {
            id,
            status: self.tenant_status(id),
            ancestors: self.ancestors(id),
        })
    }

    pub(super) fn workspace_live(&self, id: Uuid, tenant_id: Uuid) -> bool {
        (self.workspaces.get(&id).and_then(|w| w.0.as_ref()))
            .is_some_and(|w| w.tenant_id == tenant_id && !w.deleted)
    }

    pub(super) fn tenant(&mut self, events: &[RecordedEvent]) -> Checked {
        let (own, seeded) = split(events);
        let recorded: Vec<TenantEvent> = decode(own, |e: &TenantEvent| {
            stream_id(TenantEvent::STREAM_TYPE, e.tenant_id())
        })?;
        let id = recorded[0].tenant_id();
        let state = self.tenants.get(&id).cloned().unwrap_or_default();
        let command = match &recorded[..] {
            [TenantEvent::Created(c)] => {
                valid(validate::slug, &c.slug)?;
                valid(validate::name, &c.name)?;
                TenantCommand::Create {
                    tenant_id: c.tenant_id,
                    name: c.name.clone(),
                    slug: c.slug.clone(),
                    parent: self.parent(c.parent_id),
                }
            }
            [TenantEvent::Renamed(r)] => TenantCommand::Rename {
                name: r.name.clone(),
            },
            [TenantEvent::Moved(m)] => TenantCommand::Move {
                parent: self.parent(m.parent_id),
                subtree_height: self.subtree_height(id),
            },
            [TenantEvent::Blocked(b)] => TenantCommand::Block {
                reason: b.reason.clone(),
            },
            [TenantEvent::Unblocked(_)] => TenantCommand::Unblock,
            [TenantEvent::Deleted(_)] => TenantCommand::Delete,
            _ => return Err("not the events of one tenant command".into()),
        };
        let after = decided(&state, &command, &recorded)?;
        if let TenantCommand::Create { slug, name, .. } = &command {
            let handler = CreateTenant {
                tenant_id: id,
                name: name.clone(),
                slug: slug.clone(),
                parent_id: None,
            };
            self.claim(&own[0].stream_id, handler.claims(&state, &recorded))?;
            self.seeded_roles(id, seeded)?;
        } else if !seeded.is_empty() {
            return Err("a tenant command wrote to other streams".into());
        }
        for event in &recorded {
            match event {
                TenantEvent::Created(c) => self.hierarchy.insert(id, c.parent_id),
                TenantEvent::Moved(m) => self.hierarchy.insert(id, m.parent_id),
                _ => None,
            };
        }
        self.tenants.insert(id, after);
        Ok(())
    }

    /// The system roles `CreateTenant::after_append` seeds, one per template, in order.
    fn seeded_roles(&mut self, tenant_id: Uuid, events: &[RecordedEvent]) -> Checked {
        let templates = role::templates();
        if events.len() != templates.len() {
            return Err(format!(
                "{} system roles seeded, not {}",
                events.len(),
                templates.len()
            ));
        }
        for (e, (template, permissions)) in events.iter().zip(templates) {
            let recorded: Vec<RoleEvent> =
                decode(std::slice::from_ref(e), |e: &RoleEvent| role_stream_of(e))?;
            let RoleEvent::Created(c) = &recorded[0] else {
                return Err("the tenant's system roles are created with it".into());
            };
            if recorded[0] != role::seeded(c.role_id, tenant_id, template, permissions) {
                return Err(format!("system role {template} differs from its template"));
            }
            let claim = ClaimChange::Claim {
                scope: role_name_scope(tenant_id, None),
                value: template.into(),
            };
            self.claim(&e.stream_id, vec![claim])?;
            let state = charter::domain::Aggregate::apply(
                charter::domain::role::Role::default(),
                &recorded[0],
            );
            self.roles.insert(c.role_id, state);
        }
        Ok(())
    }

    pub(super) fn workspace(&mut self, events: &[RecordedEvent]) -> Checked {
        let recorded: Vec<WorkspaceEvent> = decode(events, |e: &WorkspaceEvent| {
            stream_id(
                WorkspaceEvent::STREAM_TYPE,
                e.workspace_id().unwrap_or_default(),
            )
        })?;
        let (tenant_id, workspace_id) = (
            events[0].tenant_id,
            events[0].workspace_id.unwrap_or_default(),
        );
        let action = match &recorded[..] {
            [WorkspaceEvent::Created(c)] => WorkspaceAction::Create {
                workspace_id,
                name: c.name.clone(),
            },
            [WorkspaceEvent::Renamed(r)] => WorkspaceAction::Rename {
                name: r.name.clone(),
            },
            [WorkspaceEvent::Deleted(_)] => WorkspaceAction::Delete,
            _ => return Err("not the events of one workspace command".into()),
        };
        if let WorkspaceAction::Create { name, .. } | WorkspaceAction::Rename { name } = &action {
            valid(validate::name, name)?;
        }
        let command = WorkspaceCommand {
            tenant_id,
            tenant_status: self.tenant_status(tenant_id),
            action,
        };
        let state = self
            .workspaces
            .get(&workspace_id)
            .cloned()
            .unwrap_or_default();
        let after = decided(&state, &command, &recorded)?;
        let handler = WorkspaceHandler {
            tenant_id,
            workspace_id,
            action: command.action,
        };
        self.claim(&events[0].stream_id, handler.claims(&state, &recorded))?;
        self.workspaces.insert(workspace_id, after);
        Ok(())
    }

    pub(super) fn registry(&mut self, events: &[RecordedEvent]) -> Checked {
        let service = events[0]
            .stream_id
            .trim_start_matches("permission_registry-")
            .to_owned();
        let recorded: Vec<PermissionEvent> =
            decode(events, |_: &PermissionEvent| registry_stream(&service))?;
        let mut permissions = Vec::new();
        for event in &recorded {
            let (s, name, label) = match event {
                PermissionEvent::Registered(r) => (&r.service, &r.name, &r.label),
                PermissionEvent::LabelChanged(c) => (&c.service, &c.name, &c.label),
            };
            if *s != service {
                return Err(format!("service {s} in the registry of {service}"));
            }
            valid(validate::permission_name, name)?;
            valid(validate::service, s)?;
            permissions.push((name.clone(), label.clone()));
        }
        let command = Register {
            service: service.clone(),
            permissions,
        };
        let state = self.registries.get(&service).cloned().unwrap_or_default();
        let after = decided(&state, &command, &recorded)?;
        let handler = RegisterPermissions(command);
        self.claim(&events[0].stream_id, handler.claims(&state, &recorded))?;
        self.registries.insert(service, after);
        Ok(())
    }

    pub(super) fn role(&mut self, events: &[RecordedEvent]) -> Checked {
        let recorded: Vec<RoleEvent> = decode(events, |e: &RoleEvent| role_stream_of(e))?;
        let tenant_id = events[0].tenant_id;
        let role_id = role_id(&recorded[0]);
        let action = match &recorded[..] {
            [RoleEvent::Created(c)] if c.template.is_none() => {
                valid(validate::name, &c.name)?;
                let permissions = c.permissions.iter().cloned().collect();
                RoleAction::Create {
                    role_id,
                    name: c.name.clone(),
                    unregistered: self.registered(&permissions),
                    permissions,
                    workspace: c
                        .workspace_id
                        .map(|w| (w, self.workspace_live(w, tenant_id))),
                }
            }
            [RoleEvent::Renamed(r)] => {
                valid(validate::name, &r.name)?;
                RoleAction::Rename {
                    name: r.name.clone(),
                }
            }
            [RoleEvent::PermissionsGranted(g)] => {
                let permissions = g.permissions.iter().cloned().collect();
                RoleAction::Grant {
                    unregistered: self.registered(&permissions),
                    permissions,
                }
            }
            [RoleEvent::PermissionsRevoked(r)] => RoleAction::Revoke {
                permissions: r.permissions.iter().cloned().collect(),
            },
            [RoleEvent::Deleted(_)] => RoleAction::Delete,
            _ => return Err("not the events of one role command".into()),
        };
        let command = RoleCommand {
            tenant_id,
            tenant_status: self.tenant_status(tenant_id),
            authority: Authority::Platform,
            action,
        };
        let state = self.roles.get(&role_id).cloned().unwrap_or_default();
        let after = decided(&state, &command, &recorded)?;
        let handler = RoleHandler {
            tenant_id,
            role_id,
            authority: Authority::Platform,
            request: RoleRequest::Delete,
        };
        self.claim(&events[0].stream_id, handler.claims(&state, &recorded))?;
        self.roles.insert(role_id, after);
        Ok(())
    }
}

fn role_id(e: &RoleEvent) -> Uuid {
    match e {
        RoleEvent::Created(c) => c.role_id,
        RoleEvent::Renamed(r) => r.role_id,
        RoleEvent::PermissionsGranted(g) => g.role_id,
        RoleEvent::PermissionsRevoked(r) => r.role_id,
        RoleEvent::Deleted(d) => d.role_id,
    }
}

fn role_stream_of(e: &RoleEvent) -> String {
    stream_id(RoleEvent::STREAM_TYPE, role_id(e))
}
