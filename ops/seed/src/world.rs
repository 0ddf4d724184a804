//! The generator's picture of what it created so far: the facts the command side would load
//! before deciding (statuses, names taken, memberships, versions), so that every command the
//! generator writes is one `decide` would have accepted.

use std::collections::{BTreeSet, HashSet};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::make::Person;
use super::rng::Rng;
use charter::domain::tenant::TenantStatus;
use charter::domain::user::UserStatus;

pub type Ix = usize;

/// The `taken` kind of role names in a scope (the tenant, or one workspace).
pub fn role_kind(workspace: Option<Ix>) -> String {
    workspace.map_or_else(|| "r-".to_owned(), |w| format!("r{w}"))
}

pub struct Tenant {
    pub id: Uuid,
    pub name: String,
    pub parent: Option<Ix>,
    pub status: TenantStatus,
    pub version: i64,
    /// A user holding the tenant's `tenant_admin` role: the actor of its admin commands.
    pub admin: Option<Ix>,
    /// Never blocked, moved or deleted (the platform tenant, the first customer).
    pub protected: bool,
    /// Relative size: the share of new users, groups and activity it attracts.
    pub weight: f64,
    pub domain: String,
    pub children: usize,
    pub workspaces: Vec<Ix>,
    pub users: Vec<Ix>,
    pub groups: Vec<Ix>,
    pub roles: Vec<Ix>,
    /// Lower-cased names claimed inside the tenant, by kind (`u:`, `e:`, `w:`, `g:`, `r…:`).
    pub taken: HashSet<String>,
    pub counter: u32,
}

impl Tenant {
    pub fn active(&self) -> bool {
        self.status == TenantStatus::Active
    }

    /// Takes `name` of `kind` if it is free (ignoring case).
    pub fn take(&mut self, kind: &str, name: &str) -> bool {
        self.taken.insert(format!("{kind}:{}", name.to_lowercase()))
    }

    pub fn free(&mut self, kind: &str, name: &str) {
        self.taken
            .remove(&format!("{kind}:{}", name.to_lowercase()));
    }
}

pub struct Workspace {
    pub id: Uuid,
    pub name: String,
    pub deleted: bool,
    pub version: i64,
}

pub struct User {
    pub id: Uuid,
    pub tenant: Ix,
    pub username: String,
    pub email: String,
    pub person: Person,
    pub display_name: Option<String>,
    pub password: Option<String>,
    pub status: UserStatus,
    pub account_version: i64,
    pub failed: u32,
    pub locked_until: Option<DateTime<Utc>>,
    pub mfa_pending: Option<String>,
    pub mfa_active: Option<String>,
    pub last_step: u64,
    pub version: i64,
    pub ip: String,
}

impl User {
    pub fn locked_at(&self, now: DateTime<Utc>) -> bool {
        self.locked_until.is_some_and(|until| now < until)
    }

    /// Can sign in with a password now (the tenant's status is checked separately).
    pub fn can_log_in(&self, now: DateTime<Utc>) -> bool {
        self.status == UserStatus::Active && self.password.is_some() && !self.locked_at(now)
    }
}

pub struct Group {
    pub id: Uuid,
    pub name: String,
    pub members: Vec<Ix>,
    pub deleted: bool,
    pub version: i64,
}

pub struct Role {
    pub id: Uuid,
    pub tenant: Ix,
    pub workspace: Option<Ix>,
    pub name: String,
    pub permissions: BTreeSet<String>,
    pub template: bool,
    pub deleted: bool,
    pub version: i64,
    /// Live assignments of the role.
    pub holders: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Subject {
    User(Ix),
    Group(Ix),
}

pub struct Assignment {
    pub id: Uuid,
    pub tenant: Ix,
    pub workspace: Option<Ix>,
    pub role: Ix,
    pub subject: Subject,
    pub deleted: bool,
}

pub struct Session {
    pub id: Uuid,
    pub user: Ix,
    pub version: i64,
    pub generation: u32,
    pub account_version: i64,
    pub expires_at: DateTime<Utc>,
    pub ended: bool,
}

/// Who administers the platform (tenant creation, the registry).
#[derive(Debug, Clone, Copy)]
pub struct Platform {
    pub user_id: Uuid,
    pub tenant_id: Uuid,
}

#[derive(Default)]
pub struct World {
    pub tenants: Vec<Tenant>,
    pub workspaces: Vec<Workspace>,
    pub users: Vec<User>,
    pub groups: Vec<Group>,
    pub roles: Vec<Role>,
    pub assignments: Vec<Assignment>,
    pub sessions: Vec<Session>,
    /// `(group, user)` memberships of live groups.
    pub members: HashSet<(Ix, Ix)>,
    /// `(role, subject, workspace)` of live assignments: the assignment claim.
    pub grants: HashSet<(Ix, Subject, Option<Ix>)>,
    /// Candidates, pruned lazily when picked: sessions that may still be refreshed,
    /// assignments that may still be live, users who may be disabled, locked, or use MFA.
    pub open_sessions: Vec<Ix>,
    pub live_assignments: Vec<Ix>,
    pub disabled: Vec<Ix>,
    pub troubled: Vec<Ix>,
    pub mfa: Vec<Ix>,
    /// Permission names custom roles may grant (all registered).
    pub grantable: Vec<String>,
    /// (service, name, label) of the permissions of the seeded services.
    pub registry: Vec<(String, String, String)>,
    pub registry_versions: Vec<(String, i64)>,
    pub platform: Option<Platform>,
    /// The platform administrator's tenant, when the generator bootstrapped it.
    pub platform_tenant: Option<Ix>,
    cumulative: Vec<(Ix, f64)>,
    weights_dirty: bool,
}

impl World {
    /// The weights of active tenants changed (one was created, blocked, unblocked, deleted).
    pub fn tenants_changed(&mut self) {
        self.weights_dirty = true;
    }

    /// An active tenant, drawn by size.
    pub fn pick_tenant(&mut self, rng: &mut Rng) -> Option<Ix> {
        if self.weights_dirty {
            let mut total = 0.0;
            self.cumulative = (self.tenants.iter().enumerate())
                .filter(|(_, t)| t.active())
                .map(|(i, t)| {
                    total += t.weight;
                    (i, total)
                })
                .collect();
            self.weights_dirty = false;
        }
        let total = self.cumulative.last()?.1;
        let x = rng.unit() * total;
        let at = self.cumulative.partition_point(|(_, c)| *c <= x);
        Some(self.cumulative[at.min(self.cumulative.len() - 1)].0)
    }

    /// A user of an active tenant satisfying `ok`, after a few random tries.
    pub fn pick_user(&mut self, rng: &mut Rng, ok: impl Fn(&User) -> bool) -> Option<Ix> {
        for _ in 0..12 {
            let t = self.pick_tenant(rng)?;
            let users = &self.tenants[t].users;
            if users.is_empty() {
                continue;
            }
            let u = users[rng.below(users.len())];
            if ok(&self.users[u]) {
                return Some(u);
            }
        }
        None
    }

    /// A live (not deleted) group of tenant `t`.
    pub fn pick_group(&self, rng: &mut Rng, t: Ix) -> Option<Ix> {
        let groups = &self.tenants[t].groups;
        (0..6)
            .filter(|_| !groups.is_empty())
            .map(|_| groups[rng.below(groups.len())])
            .find(|g| !self.groups[*g].deleted)
    }

    /// A live workspace of tenant `t`.
    pub fn pick_workspace(&self, rng: &mut Rng, t: Ix) -> Option<Ix> {
        let workspaces = &self.tenants[t].workspaces;
        (0..6)
            .filter(|_| !workspaces.is_empty())
            .map(|_| workspaces[rng.below(workspaces.len())])
            .find(|w| !self.workspaces[*w].deleted)
    }

    /// Takes a random element of a lazily pruned candidate list that still satisfies `ok`.
    pub fn draw(rng: &mut Rng, list: &mut Vec<Ix>, ok: impl Fn(Ix) -> bool) -> Option<Ix> {
        for _ in 0..8 {
            if list.is_empty() {
                return None;
            }
            let at = rng.below(list.len());
            if ok(list[at]) {
                return Some(list[at]);
            }
            list.swap_remove(at);
        }
        None
    }

    /// Live roles of tenant `t` that can be assigned now (their workspace, if any, is live).
    pub fn assignable_role(&self, rng: &mut Rng, t: Ix) -> Option<Ix> {
        let roles = &self.tenants[t].roles;
        (0..6).map(|_| roles[rng.below(roles.len())]).find(|r| {
            let role = &self.roles[*r];
            !role.deleted && role.workspace.is_none_or(|w| !self.workspaces[w].deleted)
        })
    }

    pub fn depth(&self, t: Ix) -> usize {
        let mut depth = 1;
        let mut at = self.tenants[t].parent;
        while let Some(p) = at {
            depth += 1;
            at = self.tenants[p].parent;
        }
        depth
    }
}
