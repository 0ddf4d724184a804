//! One tenant's part of the in-process entitlement index: an immutable value. Every map is a
//! persistent (structurally shared) map, so deriving the next snapshot from this one copies
//! only the paths a change touches, and readers of the old one are never disturbed.

use std::collections::BTreeSet;
use std::sync::Arc;

use uuid::Uuid;

use crate::entitlements::{Binding, Change, ScopeEntitlements, SubjectKind, TENANT_SCOPE};

/// A permission name, interned: each name is stored once per index.
pub type Permission = Arc<str>;

/// A subject's binding, without the subject (the map's key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bound {
    pub assignment: Uuid,
    pub role: Uuid,
    /// `None`: tenant-wide.
    pub workspace: Option<Uuid>,
}

/// A live user or service account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub active: bool,
    /// Groups it was added to (a deleted group among them is ignored on read).
    pub groups: Arc<[Uuid]>,
}

#[derive(Debug, Clone, Default)]
pub struct TenantIndex {
    pub(crate) active: bool,
    /// The tenant's own policy-version counter.
    pub(crate) counter: i64,
    pub(crate) workspaces: imbl::HashSet<Uuid>,
    /// Workspace counters (deleted workspaces keep theirs).
    pub(crate) counters: imbl::HashMap<Uuid, i64>,
    pub(crate) principals: imbl::HashMap<Uuid, Principal>,
    pub(crate) groups: imbl::HashSet<Uuid>,
    /// Live roles and their sorted permissions.
    pub(crate) roles: imbl::HashMap<Uuid, Arc<[Permission]>>,
    /// Bindings by subject (principal or group).
    pub(crate) bindings: imbl::HashMap<Uuid, Arc<[Bound]>>,
}

/// Interns permission names for one index (only its writer calls it).
pub trait Intern {
    fn intern(&mut self, name: &str) -> Permission;
}

impl TenantIndex {
    /// Applies one change of the entitlement model ([`crate::entitlements::changes`]).
    pub fn apply(&mut self, change: &Change, names: &mut impl Intern) {
        match change {
            Change::TenantCreated(_) => self.active = true,
            Change::TenantActive(active) => self.active = *active,
            Change::WorkspaceCreated(w) => {
                self.workspaces.insert(*w);
            }
            Change::WorkspaceDeleted(w) => {
                self.workspaces.remove(w);
            }
            Change::PrincipalCreated(u) => {
                self.principals.insert(
                    *u,
                    Principal {
                        active: true,
                        groups: Arc::from([]),
                    },
                );
            }
            Change::PrincipalActive(u, active) => {
                if let Some(p) = self.principals.get_mut(u) {
                    p.active = *active;
                }
            }
            Change::PrincipalDeleted(u) => {
                self.principals.remove(u);
                self.bindings.remove(u);
            }
            Change::GroupCreated(g) => {
                self.groups.insert(*g);
            }
            Change::GroupDeleted(g) => {
                self.groups.remove(g);
                self.bindings.remove(g);
            }
            Change::MemberAdded { group, user } => {
                if let Some(p) = self.principals.get_mut(user) {
                    if !p.groups.contains(group) {
                        p.groups = p.groups.iter().copied().chain([*group]).collect();
                    }
                }
            }
            Change::MemberRemoved { group, user } => {
                if let Some(p) = self.principals.get_mut(user) {
                    p.groups = p.groups.iter().copied().filter(|g| g != group).collect();
                }
            }
            Change::RoleCreated {
                role, permissions, ..
            } => {
                self.roles
                    .insert(*role, sorted(permissions.iter().map(String::as_str), names));
            }
            Change::PermissionsGranted { role, permissions } => {
                if let Some(held) = self.roles.get_mut(role) {
                    *held = sorted(
                        held.iter()
                            .map(|p| &**p)
                            .chain(permissions.iter().map(|p| p.as_str())),
                        names,
                    );
                }
            }
            Change::PermissionsRevoked { role, permissions } => {
                if let Some(held) = self.roles.get_mut(role) {
                    let kept = held
                        .iter()
                        .filter(|p| !permissions.iter().any(|r| **r == ***p));
                    *held = kept.cloned().collect();
                }
            }
            Change::RoleDeleted(role) => {
                self.roles.remove(role);
            }
            Change::Bound(Binding {
                assignment,
                subject,
                subject_kind: _,
                role,
                workspace,
            }) => {
                let bound = Bound {
                    assignment: *assignment,
                    role: *role,
                    workspace: *workspace,
                };
                let held = self
                    .bindings
                    .get(subject)
                    .cloned()
                    .unwrap_or_else(|| Arc::from([]));
                self.bindings
                    .insert(*subject, held.iter().copied().chain([bound]).collect());
            }
            Change::Unbound {
                assignment,
                subject,
            } => {
                if let Some(held) = self.bindings.get(subject).cloned() {
                    let kept: Arc<[Bound]> = held
                        .iter()
                        .copied()
                        .filter(|b| b.assignment != *assignment)
                        .collect();
                    if kept.is_empty() {
                        self.bindings.remove(subject);
                    } else {
                        self.bindings.insert(*subject, kept);
                    }
                }
            }
        }
    }

    /// Bumps the tenant's counter (`None`) or a workspace's.
    pub fn bump(&mut self, workspace: Option<Uuid>) {
        match workspace {
            None => self.counter += 1,
            Some(w) => *self.counters.entry(w).or_insert(0) += 1,
        }
    }

    /// Whether the tenant is neither blocked nor deleted.
    pub fn is_active(&self) -> bool {
        self.active
    }

    /// Whether `id` is a live workspace of the tenant.
    pub fn has_workspace(&self, id: Uuid) -> bool {
        self.workspaces.contains(&id)
    }

    /// A live user or service account of the tenant.
    pub fn principal(&self, id: Uuid) -> Option<&Principal> {
        self.principals.get(&id)
    }

    /// The effective policy version of the tenant scope (`None`) or of a workspace: the
    /// tenant's counter, plus the workspace's.
    pub fn policy_version(&self, workspace: Option<Uuid>) -> i64 {
        charter_events::policy::effective(
            self.counter,
            workspace.and_then(|w| self.counters.get(&w).copied()),
        )
    }

    /// Every (role, its permissions) that applies to `principal` in `scope`, through direct
    /// and group bindings. Roles may repeat.
    pub fn grants(
        &self,
        principal: Uuid,
        scope: Option<Uuid>,
    ) -> impl Iterator<Item = (Uuid, &Arc<[Permission]>)> + '_ {
        let p = self
            .principals
            .get(&principal)
            .filter(|p| p.active && self.active)
            .filter(|_| scope.is_none_or(|w| self.workspaces.contains(&w)));
        let groups = p
            .into_iter()
            .flat_map(|p| p.groups.iter())
            .filter(|g| self.groups.contains(*g));
        let subjects = p.map(|_| principal).into_iter().chain(groups.copied());
        subjects
            .filter_map(|s| self.bindings.get(&s))
            .flat_map(|held| held.iter())
            .filter(move |b| b.workspace.is_none() || b.workspace == scope)
            .filter_map(|b| self.roles.get(&b.role).map(|p| (b.role, p)))
    }

    /// Whether `principal` holds `permission` in `scope`. Allocates nothing.
    pub fn allows(&self, principal: Uuid, scope: Option<Uuid>, permission: &str) -> bool {
        self.grants(principal, scope)
            .any(|(_, held)| held.binary_search_by(|p| (**p).cmp(permission)).is_ok())
    }

    /// The roles and permissions of `principal` in `scope`, sorted; `None` when no role applies.
    pub fn resolve(&self, principal: Uuid, scope: Option<Uuid>) -> Option<ScopeEntitlements> {
        let mut roles = BTreeSet::new();
        let mut permissions = BTreeSet::new();
        for (role, held) in self.grants(principal, scope) {
            roles.insert(role);
            permissions.extend(held.iter().cloned());
        }
        if roles.is_empty() {
            return None;
        }
        Some(ScopeEntitlements {
            workspace_id: scope.unwrap_or(TENANT_SCOPE),
            policy_version: self.policy_version(scope),
            roles: roles.into_iter().collect(),
            permissions: permissions.iter().map(|p| p.to_string()).collect(),
        })
    }

    /// The live workspaces where a workspace binding of `principal` (direct or through a live
    /// group) may add to its tenant-wide grants, sorted.
    pub fn bound_workspaces(&self, principal: Uuid) -> Vec<Uuid> {
        let Some(p) = self.principals.get(&principal) else {
            return vec![];
        };
        let subjects =
            std::iter::once(&principal).chain(p.groups.iter().filter(|g| self.groups.contains(*g)));
        let set: BTreeSet<Uuid> = subjects
            .filter_map(|s| self.bindings.get(s))
            .flat_map(|held| held.iter())
            .filter_map(|b| b.workspace)
            .filter(|w| self.workspaces.contains(w))
            .collect();
        set.into_iter().collect()
    }

    /// Every live workspace, sorted.
    pub fn live_workspaces(&self) -> Vec<Uuid> {
        let mut all: Vec<Uuid> = self.workspaces.iter().copied().collect();
        all.sort();
        all
    }

    /// Every live principal, sorted.
    pub fn principal_ids(&self) -> Vec<Uuid> {
        let mut all: Vec<Uuid> = self.principals.keys().copied().collect();
        all.sort();
        all
    }

    /// How many bindings the tenant holds.
    pub fn binding_count(&self) -> usize {
        self.bindings.values().map(|b| b.len()).sum()
    }

    /// Whether `kind`'s subject `id` exists here (a binding names a live principal or group).
    pub fn has_subject(&self, kind: SubjectKind, id: Uuid) -> bool {
        match kind {
            SubjectKind::Principal => self.principals.contains_key(&id),
            SubjectKind::Group => self.groups.contains(&id),
        }
    }
}

fn sorted<'a>(
    names: impl Iterator<Item = &'a str>,
    interner: &mut impl Intern,
) -> Arc<[Permission]> {
    let set: BTreeSet<&str> = names.collect();
    set.into_iter().map(|n| interner.intern(n)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::Names;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    const T: u128 = 1;
    const W1: u128 = 10;
    const W2: u128 = 11;
    const ADA: u128 = 20;
    const GROUP: u128 = 30;
    const READER: u128 = 40;
    const EDITOR: u128 = 41;

    /// A tenant with two workspaces, ada, a group with ada in it, and two roles.
    fn given(more: &[Change]) -> TenantIndex {
        let mut names = Names::default();
        let mut t = TenantIndex::default();
        let base = [
            Change::TenantCreated(id(T)),
            Change::WorkspaceCreated(id(W1)),
            Change::WorkspaceCreated(id(W2)),
            Change::PrincipalCreated(id(ADA)),
            Change::GroupCreated(id(GROUP)),
            Change::MemberAdded {
                group: id(GROUP),
                user: id(ADA),
            },
            Change::RoleCreated {
                role: id(READER),
                workspace: None,
                permissions: vec!["docs.read".into()],
            },
            Change::RoleCreated {
                role: id(EDITOR),
                workspace: Some(id(W1)),
                permissions: vec!["docs.edit".into(), "docs.read".into()],
            },
        ];
        for c in base.iter().chain(more) {
            t.apply(c, &mut names);
        }
        t
    }

    fn bound(
        assignment: u128,
        subject: u128,
        kind: SubjectKind,
        role: u128,
        w: Option<u128>,
    ) -> Change {
        Change::Bound(Binding {
            assignment: id(assignment),
            subject: id(subject),
            subject_kind: kind,
            role: id(role),
            workspace: w.map(id),
        })
    }

    fn perms(t: &TenantIndex, scope: Option<u128>) -> Vec<String> {
        t.resolve(id(ADA), scope.map(id))
            .map(|s| s.permissions)
            .unwrap_or_default()
    }

    #[test]
    fn a_tenant_wide_binding_through_a_group_reaches_every_live_workspace() {
        let t = given(&[bound(1, GROUP, SubjectKind::Group, READER, None)]);
        assert_eq!(perms(&t, None), ["docs.read"]);
        assert_eq!(perms(&t, Some(W1)), ["docs.read"]);
        assert_eq!(perms(&t, Some(W2)), ["docs.read"]);
        assert!(
            t.bound_workspaces(id(ADA)).is_empty(),
            "nothing is copied per workspace"
        );
        assert_eq!(t.binding_count(), 1);
    }

    #[test]
    fn a_workspace_binding_adds_in_its_workspace_only() {
        let t = given(&[
            bound(1, ADA, SubjectKind::Principal, READER, None),
            bound(2, ADA, SubjectKind::Principal, EDITOR, Some(W1)),
        ]);
        assert_eq!(perms(&t, Some(W1)), ["docs.edit", "docs.read"]);
        assert_eq!(perms(&t, Some(W2)), ["docs.read"]);
        assert_eq!(perms(&t, None), ["docs.read"]);
        assert_eq!(t.bound_workspaces(id(ADA)), [id(W1)]);
        assert!(t.allows(id(ADA), Some(id(W1)), "docs.edit"));
        assert!(!t.allows(id(ADA), Some(id(W2)), "docs.edit"));
    }

    #[test]
    fn each_way_of_losing_a_grant_takes_it_away() {
        let grant = bound(1, GROUP, SubjectKind::Group, READER, None);
        let losses: [(&str, Vec<Change>); 7] = [
            (
                "unbound",
                vec![Change::Unbound {
                    assignment: id(1),
                    subject: id(GROUP),
                }],
            ),
            (
                "left the group",
                vec![Change::MemberRemoved {
                    group: id(GROUP),
                    user: id(ADA),
                }],
            ),
            ("group deleted", vec![Change::GroupDeleted(id(GROUP))]),
            ("role deleted", vec![Change::RoleDeleted(id(READER))]),
            (
                "permission revoked",
                vec![Change::PermissionsRevoked {
                    role: id(READER),
                    permissions: vec!["docs.read".into()],
                }],
            ),
            ("disabled", vec![Change::PrincipalActive(id(ADA), false)]),
            ("tenant blocked", vec![Change::TenantActive(false)]),
        ];
        for (what, then) in losses {
            let mut changes = vec![grant.clone()];
            changes.extend(then);
            let t = given(&changes);
            assert!(!t.allows(id(ADA), None, "docs.read"), "{what}");
            assert!(!t.allows(id(ADA), Some(id(W1)), "docs.read"), "{what}");
        }
        let t = given(&[grant, Change::WorkspaceDeleted(id(W2))]);
        assert!(t.allows(id(ADA), Some(id(W1)), "docs.read"));
        assert!(
            !t.allows(id(ADA), Some(id(W2)), "docs.read"),
            "deleted workspace"
        );
    }

    #[test]
    fn a_deleted_principal_is_gone_and_a_grant_is_merged_sorted() {
        let t = given(&[
            bound(1, ADA, SubjectKind::Principal, READER, None),
            Change::PermissionsGranted {
                role: id(READER),
                permissions: vec!["docs.admin".into(), "docs.read".into()],
            },
        ]);
        assert_eq!(perms(&t, None), ["docs.admin", "docs.read"]);
        let t = given(&[
            bound(1, ADA, SubjectKind::Principal, READER, None),
            Change::PrincipalDeleted(id(ADA)),
        ]);
        assert!(t.principal(id(ADA)).is_none());
        assert_eq!(t.binding_count(), 0);
    }

    #[test]
    fn the_effective_version_adds_the_tenant_and_workspace_counters() {
        let mut t = given(&[]);
        t.bump(None);
        t.bump(None);
        t.bump(Some(id(W1)));
        assert_eq!(t.policy_version(None), 2);
        assert_eq!(t.policy_version(Some(id(W1))), 3);
        assert_eq!(t.policy_version(Some(id(W2))), 2);
    }
}
