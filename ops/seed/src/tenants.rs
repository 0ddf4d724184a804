//! Tenants: sign-ups (with the system roles seeded with them and a first administrator),
//! renames, moves in the hierarchy, blocks and deletions. Each action checks what the command
//! side's `prepare` and `decide` would, and returns false (nothing written) when no candidate
//! qualifies.

use charter_events::Metadata;

use super::gen::{pending, Followup, Gen};
use super::make;
use super::names::{self, COMPANIES};
use super::world::{role_kind, Ix, Role, Subject, Tenant};
use charter::domain::role::templates;
use charter::domain::tenant::TenantStatus;
use charter_events::streams::{role_name_scope, role_stream, tenant_stream, TENANT_SLUG_SCOPE};

impl Gen {
    /// `tenant.created` and, in the same command, its three system roles.
    pub fn create_tenant(
        &mut self,
        name: &str,
        slug: String,
        parent: Option<Ix>,
        meta: Metadata,
        weight: f64,
    ) -> Ix {
        let now = self.clock.now();
        let id = self.rng.uuid_v7(now);
        let parent_id = parent.map(|p| self.w.tenants[p].id);
        let stream = tenant_stream(id);
        let mut version = 0;
        let mut events = vec![pending(
            stream.clone(),
            &mut version,
            &make::tenant_created(id, name, &slug, parent_id),
        )];
        self.out.claim(TENANT_SLUG_SCOPE, &slug, &stream);
        self.out.set_parent(id, parent_id);
        let t = self.w.tenants.len();
        let mut tenant = Tenant {
            id,
            name: name.into(),
            domain: format!("{slug}.example"),
            parent,
            status: TenantStatus::Active,
            version,
            admin: None,
            protected: false,
            weight,
            children: 0,
            workspaces: vec![],
            users: vec![],
            groups: vec![],
            roles: vec![],
            taken: Default::default(),
            counter: 0,
        };
        for (template, permissions) in templates() {
            let role_id = self.rng.uuid_v7(now);
            let role_stream = role_stream(role_id);
            let mut v = 0;
            let created = make::role_created(
                role_id,
                id,
                None,
                template,
                permissions.clone(),
                Some(template),
            );
            events.push(pending(role_stream.clone(), &mut v, &created));
            self.out
                .claim(&role_name_scope(id, None), template, &role_stream);
            tenant.take(&role_kind(None), template);
            tenant.roles.push(self.w.roles.len());
            self.w.roles.push(Role {
                id: role_id,
                tenant: t,
                workspace: None,
                name: template.into(),
                permissions: permissions.into_iter().collect(),
                template: true,
                deleted: false,
                version: v,
                holders: 0,
            });
        }
        self.w.tenants.push(tenant);
        if let Some(p) = parent {
            self.w.tenants[p].children += 1;
        }
        self.w.tenants_changed();
        self.emit(meta, events);
        t
    }

    /// A customer signs up: the platform administrator creates the tenant, its first user and
    /// makes that user the tenant's administrator.
    pub fn onboard_tenant(&mut self) -> bool {
        let k = self.customers;
        let base = COMPANIES[k % COMPANIES.len()];
        let name = match k / COMPANIES.len() {
            0 => base.to_owned(),
            round => format!("{base} {}", round + 1),
        };
        let first = self.w.tenants.iter().position(|t| t.name == COMPANIES[0]);
        let parent = match (k, first) {
            (1 | 2, Some(f)) if self.w.tenants[f].active() => Some(f),
            _ if self.rng.chance(0.12) => (self.w.pick_tenant(&mut self.rng))
                .filter(|p| Some(*p) != self.w.platform_tenant && self.w.depth(*p) < 3),
            _ => None,
        };
        let slug = self.unique_slug(&names::slug(&name));
        let weight = 1.0 / (0.04 + self.rng.unit()).powf(1.2);
        let meta = self.platform_meta();
        let t = self.create_tenant(&name, slug, parent, meta, weight);
        self.w.tenants[t].protected = k == 0;
        self.customers += 1;
        self.clock.pause(&mut self.rng, 30.0);
        let meta = self.platform_meta();
        let admin = self.create_user(t, true, meta);
        self.clock.pause(&mut self.rng, 10.0);
        let meta = self.platform_meta();
        let admin_role = self.w.tenants[t].roles[0];
        self.grant_role(t, admin_role, Subject::User(admin), None, meta);
        self.w.tenants[t].admin = Some(admin);
        true
    }

    /// A tenant that may be renamed, moved, blocked or deleted: live, not protected, and for
    /// structural changes a leaf of the hierarchy.
    fn pick_customer(&mut self, leaf: bool, status: &[TenantStatus]) -> Option<Ix> {
        let candidates: Vec<Ix> = (0..self.w.tenants.len())
            .filter(|t| {
                let tenant = &self.w.tenants[*t];
                !tenant.protected
                    && status.contains(&tenant.status)
                    && (!leaf || tenant.children == 0)
            })
            .collect();
        (!candidates.is_empty()).then(|| candidates[self.rng.below(candidates.len())])
    }

    pub fn rename_tenant(&mut self) -> bool {
        let Some(t) = self.pick_customer(false, &[TenantStatus::Active, TenantStatus::Blocked])
        else {
            return false;
        };
        let suffix = self
            .rng
            .pick(&["Inc", "Group", "GmbH", "Ltd", "SA", "Holdings", "Labs"]);
        let base = self.w.tenants[t]
            .name
            .split(" (")
            .next()
            .unwrap_or_default()
            .to_owned();
        let name = format!("{base} ({suffix})");
        if name == self.w.tenants[t].name {
            return false;
        }
        let tenant = &mut self.w.tenants[t];
        tenant.name = name.clone();
        let (id, stream) = (tenant.id, tenant_stream(tenant.id));
        let event = pending(
            stream,
            &mut tenant.version,
            &make::tenant_renamed(id, &name),
        );
        let meta = self.platform_meta();
        self.emit(meta, vec![event]);
        true
    }

    /// A leaf tenant moves to the root, or below another active tenant.
    pub fn move_tenant(&mut self) -> bool {
        let Some(t) = self.pick_customer(true, &[TenantStatus::Active, TenantStatus::Blocked])
        else {
            return false;
        };
        let previous = self.w.tenants[t].parent;
        let parent = match previous {
            Some(_) if self.rng.chance(0.5) => None,
            _ => match self.w.pick_tenant(&mut self.rng) {
                Some(p)
                    if p != t
                        && Some(p) != previous
                        && Some(p) != self.w.platform_tenant
                        && self.w.depth(p) < 4 =>
                {
                    Some(p)
                }
                _ => return false,
            },
        };
        if parent == previous {
            return false;
        }
        let ids = |p: Option<Ix>| p.map(|p| self.w.tenants[p].id);
        let (parent_id, previous_id) = (ids(parent), ids(previous));
        if let Some(p) = previous {
            self.w.tenants[p].children -= 1;
        }
        if let Some(p) = parent {
            self.w.tenants[p].children += 1;
        }
        let tenant = &mut self.w.tenants[t];
        tenant.parent = parent;
        let (id, stream) = (tenant.id, tenant_stream(tenant.id));
        let event = pending(
            stream,
            &mut tenant.version,
            &make::tenant_moved(id, parent_id, previous_id),
        );
        self.out.set_parent(id, parent_id);
        let meta = self.platform_meta();
        self.emit(meta, vec![event]);
        true
    }

    /// Blocked for a while (unblocked by a follow-up later in the history).
    pub fn block_tenant(&mut self) -> bool {
        let Some(t) = self.pick_customer(false, &[TenantStatus::Active]) else {
            return false;
        };
        let reason = *self
            .rng
            .pick(&[Some("payment overdue"), Some("security review"), None]);
        let tenant = &mut self.w.tenants[t];
        tenant.status = TenantStatus::Blocked;
        let (id, stream) = (tenant.id, tenant_stream(tenant.id));
        let event = pending(
            stream,
            &mut tenant.version,
            &make::tenant_blocked(id, reason),
        );
        self.w.tenants_changed();
        let meta = self.platform_meta();
        self.emit(meta, vec![event]);
        let due = self.progress() + 0.005 + 0.025 * self.rng.unit();
        self.followups.push((due, Followup::Unblock(t)));
        true
    }

    pub fn unblock_tenant(&mut self, t: Ix) -> bool {
        let tenant = &mut self.w.tenants[t];
        if tenant.status != TenantStatus::Blocked {
            return false;
        }
        tenant.status = TenantStatus::Active;
        let (id, stream) = (tenant.id, tenant_stream(tenant.id));
        let event = pending(stream, &mut tenant.version, &make::tenant_unblocked(id));
        self.w.tenants_changed();
        let meta = self.platform_meta();
        self.emit(meta, vec![event]);
        true
    }

    /// A churned customer: the smallest leaf tenant goes (its slug stays reserved).
    pub fn delete_tenant(&mut self) -> bool {
        let candidates: Vec<Ix> = (0..self.w.tenants.len())
            .filter(|t| {
                let tenant = &self.w.tenants[*t];
                !tenant.protected && tenant.children == 0 && tenant.status != TenantStatus::Deleted
            })
            .collect();
        let Some(&t) = candidates
            .iter()
            .min_by_key(|t| self.w.tenants[**t].users.len())
        else {
            return false;
        };
        let tenant = &mut self.w.tenants[t];
        tenant.status = TenantStatus::Deleted;
        let (id, stream) = (tenant.id, tenant_stream(tenant.id));
        let event = pending(stream, &mut tenant.version, &make::tenant_deleted(id));
        self.w.tenants_changed();
        let meta = self.platform_meta();
        self.emit(meta, vec![event]);
        true
    }
}
