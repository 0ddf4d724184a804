//! Workspaces: created with a name free in the tenant, renamed, deleted.

use super::gen::{pending, Gen};
use super::make;
use super::names::WORKSPACES;
use super::world::Workspace;
use charter_events::streams::{workspace_name_scope, workspace_stream};

impl Gen {
    pub fn create_workspace(&mut self) -> bool {
        let Some(t) = self.w.pick_tenant(&mut self.rng) else {
            return false;
        };
        let start = self.rng.below(WORKSPACES.len());
        let tenant = &mut self.w.tenants[t];
        let free = (0..WORKSPACES.len())
            .map(|i| WORKSPACES[(start + i) % WORKSPACES.len()].to_owned())
            .find(|n| tenant.take("w", n));
        let name = free.unwrap_or_else(|| loop {
            tenant.counter += 1;
            let name = format!("{}-{}", WORKSPACES[start], tenant.counter);
            if tenant.take("w", &name) {
                break name;
            }
        });
        let (tenant_id, now) = (tenant.id, self.clock.now());
        let id = self.rng.uuid_v7(now);
        let stream = workspace_stream(id);
        let mut version = 0;
        let event = pending(
            stream.clone(),
            &mut version,
            &make::workspace_created(id, tenant_id, &name),
        );
        self.out
            .claim(&workspace_name_scope(tenant_id), &name, &stream);
        self.w.tenants[t].workspaces.push(self.w.workspaces.len());
        self.w.workspaces.push(Workspace {
            id,
            name,
            deleted: false,
            version,
        });
        let meta = self.admin_meta(t);
        self.emit(meta, vec![event]);
        true
    }

    pub fn rename_workspace(&mut self) -> bool {
        let Some(t) = self.w.pick_tenant(&mut self.rng) else {
            return false;
        };
        let Some(w) = self.w.pick_workspace(&mut self.rng, t) else {
            return false;
        };
        let suffix = self
            .rng
            .pick(&["legacy", "v2", "old", "eu", "new", "archive"]);
        let old = self.w.workspaces[w].name.clone();
        let name = format!("{old}-{suffix}");
        if name.len() > 200 || !self.w.tenants[t].take("w", &name) {
            return false;
        }
        self.w.tenants[t].free("w", &old);
        let tenant_id = self.w.tenants[t].id;
        let ws = &mut self.w.workspaces[w];
        ws.name = name.clone();
        let (id, stream) = (ws.id, workspace_stream(ws.id));
        let event = pending(
            stream.clone(),
            &mut ws.version,
            &make::workspace_renamed(id, tenant_id, &name),
        );
        self.out
            .release(&workspace_name_scope(tenant_id), &old, &stream);
        self.out
            .claim(&workspace_name_scope(tenant_id), &name, &stream);
        let meta = self.admin_meta(t);
        self.emit(meta, vec![event]);
        true
    }

    /// Its name becomes free; its roles can no longer be assigned.
    pub fn delete_workspace(&mut self) -> bool {
        let Some(t) = self.w.pick_tenant(&mut self.rng) else {
            return false;
        };
        let Some(w) = self.w.pick_workspace(&mut self.rng, t) else {
            return false;
        };
        let tenant_id = self.w.tenants[t].id;
        let ws = &mut self.w.workspaces[w];
        ws.deleted = true;
        let (id, stream, name) = (ws.id, workspace_stream(ws.id), ws.name.clone());
        let event = pending(
            stream.clone(),
            &mut ws.version,
            &make::workspace_deleted(id, tenant_id),
        );
        self.out
            .release(&workspace_name_scope(tenant_id), &name, &stream);
        self.w.tenants[t].free("w", &name);
        let meta = self.admin_meta(t);
        self.emit(meta, vec![event]);
        true
    }
}
