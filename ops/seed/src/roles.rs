//! Custom roles: created tenant-wide or in a live workspace with registered permissions,
//! granted and revoked permissions, renamed, deleted once nobody holds them. System roles are
//! never touched (the domain refuses).

use std::collections::BTreeSet;

use super::gen::{pending, Gen};
use super::make;
use super::names::ROLES;
use super::world::{role_kind, Ix, Role};
use charter_events::streams::{role_name_scope, role_stream};

impl Gen {
    /// A custom role, tenant-wide or in one live workspace, granting a few registered
    /// permissions.
    pub fn create_role(&mut self) -> bool {
        let Some(t) = self.w.pick_tenant(&mut self.rng) else {
            return false;
        };
        let workspace = match self.rng.chance(0.4) {
            true => Some(self.w.pick_workspace(&mut self.rng, t)).flatten(),
            false => None,
        };
        let kind = role_kind(workspace);
        let start = self.rng.below(ROLES.len());
        let tenant = &mut self.w.tenants[t];
        let free = (0..ROLES.len())
            .map(|i| ROLES[(start + i) % ROLES.len()].to_owned())
            .find(|n| tenant.take(&kind, n));
        let name = free.unwrap_or_else(|| loop {
            tenant.counter += 1;
            let name = format!("{}-{}", ROLES[start], tenant.counter);
            if tenant.take(&kind, &name) {
                break name;
            }
        });
        let count = 2 + self.rng.below(6);
        let permissions: BTreeSet<String> = (0..count)
            .map(|_| self.rng.pick(&self.w.grantable).clone())
            .collect();
        let tenant_id = self.w.tenants[t].id;
        let workspace_id = workspace.map(|w| self.w.workspaces[w].id);
        let id = self.rng.uuid_v7(self.clock.now());
        let stream = role_stream(id);
        let mut version = 0;
        let created = make::role_created(
            id,
            tenant_id,
            workspace_id,
            &name,
            permissions.iter().cloned().collect(),
            None,
        );
        let event = pending(stream.clone(), &mut version, &created);
        self.out
            .claim(&role_name_scope(tenant_id, workspace_id), &name, &stream);
        self.w.tenants[t].roles.push(self.w.roles.len());
        self.w.roles.push(Role {
            id,
            tenant: t,
            workspace,
            name,
            permissions,
            template: false,
            deleted: false,
            version,
            holders: 0,
        });
        let meta = self.admin_meta(t);
        self.emit(meta, vec![event]);
        true
    }

    /// A live custom role of an active tenant (system roles cannot be changed).
    pub fn pick_custom_role(&mut self, ok: impl Fn(&Role) -> bool) -> Option<(Ix, Ix)> {
        for _ in 0..8 {
            let t = self.w.pick_tenant(&mut self.rng)?;
            let roles = &self.w.tenants[t].roles;
            let r = roles[self.rng.below(roles.len())];
            let role = &self.w.roles[r];
            if !role.template && !role.deleted && ok(role) {
                return Some((t, r));
            }
        }
        None
    }

    /// Grants one to three registered permissions the role does not have yet.
    pub fn grant_permissions(&mut self) -> bool {
        let Some((t, r)) = self.pick_custom_role(|_| true) else {
            return false;
        };
        let new: BTreeSet<String> = (0..1 + self.rng.below(3))
            .map(|_| self.rng.pick(&self.w.grantable).clone())
            .filter(|p| !self.w.roles[r].permissions.contains(p))
            .collect();
        if new.is_empty() {
            return false;
        }
        let (tenant_id, workspace_id) = self.role_scope(r);
        let role = &mut self.w.roles[r];
        role.permissions.extend(new.iter().cloned());
        let (id, stream) = (role.id, role_stream(role.id));
        let granted = make::role_permissions_granted(id, tenant_id, workspace_id, &new);
        let event = pending(stream, &mut role.version, &granted);
        let meta = self.admin_meta(t);
        self.emit(meta, vec![event]);
        true
    }

    /// Revokes one or two permissions, leaving the role at least one.
    pub fn revoke_permissions(&mut self) -> bool {
        let Some((t, r)) = self.pick_custom_role(|r| r.permissions.len() >= 2) else {
            return false;
        };
        let held: Vec<String> = self.w.roles[r].permissions.iter().cloned().collect();
        let gone: BTreeSet<String> = (0..1 + self.rng.below(held.len().min(3) - 1))
            .map(|_| self.rng.pick(&held).clone())
            .collect();
        let (tenant_id, workspace_id) = self.role_scope(r);
        let role = &mut self.w.roles[r];
        role.permissions.retain(|p| !gone.contains(p));
        let (id, stream) = (role.id, role_stream(role.id));
        let revoked = make::role_permissions_revoked(id, tenant_id, workspace_id, &gone);
        let event = pending(stream, &mut role.version, &revoked);
        let meta = self.admin_meta(t);
        self.emit(meta, vec![event]);
        true
    }

    pub fn rename_role(&mut self) -> bool {
        let Some((t, r)) = self.pick_custom_role(|_| true) else {
            return false;
        };
        let suffix = self
            .rng
            .pick(&["lead", "senior", "external", "temp", "emea"]);
        let (old, workspace) = (self.w.roles[r].name.clone(), self.w.roles[r].workspace);
        let name = format!("{old}-{suffix}");
        let kind = role_kind(workspace);
        if name.len() > 200 || !self.w.tenants[t].take(&kind, &name) {
            return false;
        }
        self.w.tenants[t].free(&kind, &old);
        let (tenant_id, workspace_id) = self.role_scope(r);
        let role = &mut self.w.roles[r];
        role.name = name.clone();
        let (id, stream) = (role.id, role_stream(role.id));
        let event = pending(
            stream.clone(),
            &mut role.version,
            &make::role_renamed(id, tenant_id, workspace_id, &name),
        );
        let scope = role_name_scope(tenant_id, workspace_id);
        self.out.release(&scope, &old, &stream);
        self.out.claim(&scope, &name, &stream);
        let meta = self.admin_meta(t);
        self.emit(meta, vec![event]);
        true
    }

    /// Only roles nobody holds any more are deleted (admins unassign first).
    pub fn delete_role(&mut self) -> bool {
        let Some((t, r)) = self.pick_custom_role(|r| r.holders == 0) else {
            return false;
        };
        let (tenant_id, workspace_id) = self.role_scope(r);
        let role = &mut self.w.roles[r];
        role.deleted = true;
        let (id, stream, name) = (role.id, role_stream(role.id), role.name.clone());
        let event = pending(
            stream.clone(),
            &mut role.version,
            &make::role_deleted(id, tenant_id, workspace_id),
        );
        self.out
            .release(&role_name_scope(tenant_id, workspace_id), &name, &stream);
        self.w.tenants[t].free(&role_kind(self.w.roles[r].workspace), &name);
        let meta = self.admin_meta(t);
        self.emit(meta, vec![event]);
        true
    }

    /// `(tenant_id, workspace_id)` of role `r`, as its events carry them.
    fn role_scope(&self, r: Ix) -> (uuid::Uuid, Option<uuid::Uuid>) {
        let role = &self.w.roles[r];
        let workspace_id = role.workspace.map(|w| self.w.workspaces[w].id);
        (self.w.tenants[role.tenant].id, workspace_id)
    }
}
