//! Groups and memberships: created with a name free in the tenant, live users of the same
//! tenant joining (once), members leaving, groups deleted (their memberships lapse).

use super::gen::{pending, Gen};
use super::make;
use super::names::GROUPS;
use super::world::Group;
use charter::domain::user::UserStatus;
use charter_events::streams::{group_name_scope, group_stream, membership_claim};

impl Gen {
    pub fn create_group(&mut self) -> bool {
        let Some(t) = self.w.pick_tenant(&mut self.rng) else {
            return false;
        };
        let base = *self.rng.pick(GROUPS);
        let tenant = &mut self.w.tenants[t];
        let mut name = base.to_owned();
        while !tenant.take("g", &name) {
            tenant.counter += 1;
            name = format!("{base}-{}", tenant.counter);
        }
        let tenant_id = tenant.id;
        let id = self.rng.uuid_v7(self.clock.now());
        let stream = group_stream(id);
        let mut version = 0;
        let event = pending(
            stream.clone(),
            &mut version,
            &make::group_created(id, tenant_id, &name),
        );
        self.out.claim(&group_name_scope(tenant_id), &name, &stream);
        self.w.tenants[t].groups.push(self.w.groups.len());
        self.w.groups.push(Group {
            id,
            name,
            members: vec![],
            deleted: false,
            version,
        });
        let meta = self.admin_meta(t);
        self.emit(meta, vec![event]);
        true
    }

    /// Its name becomes free and its memberships lapse.
    pub fn delete_group(&mut self) -> bool {
        let Some(t) = self.w.pick_tenant(&mut self.rng) else {
            return false;
        };
        let Some(g) = self.w.pick_group(&mut self.rng, t) else {
            return false;
        };
        let tenant_id = self.w.tenants[t].id;
        let group = &mut self.w.groups[g];
        group.deleted = true;
        let (id, stream, name) = (group.id, group_stream(group.id), group.name.clone());
        for u in std::mem::take(&mut group.members) {
            self.w.members.remove(&(g, u));
            let (scope, value) = membership_claim(tenant_id, self.w.users[u].id, id);
            self.out.release(&scope, &value, &stream);
        }
        let group = &mut self.w.groups[g];
        let event = pending(
            stream.clone(),
            &mut group.version,
            &make::group_deleted(id, tenant_id),
        );
        self.out
            .release(&group_name_scope(tenant_id), &name, &stream);
        self.w.tenants[t].free("g", &name);
        let meta = self.admin_meta(t);
        self.emit(meta, vec![event]);
        true
    }

    /// A live user of the same tenant joins a live group.
    pub fn add_member(&mut self) -> bool {
        let Some(t) = self.w.pick_tenant(&mut self.rng) else {
            return false;
        };
        let (Some(g), users) = (
            self.w.pick_group(&mut self.rng, t),
            &self.w.tenants[t].users,
        ) else {
            return false;
        };
        let Some(u) = (0..6)
            .filter(|_| !users.is_empty())
            .map(|_| users[self.rng.below(users.len())])
            .find(|u| {
                self.w.users[*u].status != UserStatus::Deleted && !self.w.members.contains(&(g, *u))
            })
        else {
            return false;
        };
        self.w.members.insert((g, u));
        let (tenant_id, user_id) = (self.w.tenants[t].id, self.w.users[u].id);
        let group = &mut self.w.groups[g];
        group.members.push(u);
        let (id, stream) = (group.id, group_stream(group.id));
        let (scope, value) = membership_claim(tenant_id, user_id, id);
        self.out.claim(&scope, &value, &stream);
        let event = pending(
            stream,
            &mut group.version,
            &make::group_member_added(id, tenant_id, user_id),
        );
        let meta = self.admin_meta(t);
        self.emit(meta, vec![event]);
        true
    }

    pub fn remove_member(&mut self) -> bool {
        let Some(t) = self.w.pick_tenant(&mut self.rng) else {
            return false;
        };
        let Some(g) = self
            .w
            .pick_group(&mut self.rng, t)
            .filter(|g| !self.w.groups[*g].members.is_empty())
        else {
            return false;
        };
        let group = &mut self.w.groups[g];
        let u = group
            .members
            .swap_remove(self.rng.below(group.members.len()));
        self.w.members.remove(&(g, u));
        let (tenant_id, user_id) = (self.w.tenants[t].id, self.w.users[u].id);
        let (id, stream) = (group.id, group_stream(group.id));
        let (scope, value) = membership_claim(tenant_id, user_id, id);
        self.out.release(&scope, &value, &stream);
        let event = pending(
            stream,
            &mut group.version,
            &make::group_member_removed(id, tenant_id, user_id),
        );
        let meta = self.admin_meta(t);
        self.emit(meta, vec![event]);
        true
    }
}
