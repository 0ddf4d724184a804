//! Role assignments: a live, assignable role of the tenant to a live user or group of the
//! same tenant, tenant-wide or in a live workspace (a workspace role in its own), never twice
//! for the same role, subject and scope; and their removal.

use charter_events::assignment::SubjectType;
use charter_events::Metadata;

use super::gen::{pending, Gen};
use super::make;
use super::world::{Assignment, Ix, Subject, World};
use charter::domain::user::UserStatus;
use charter_events::streams::{assignment_claim, assignment_stream};

impl Gen {
    /// The claim of an assignment, as `AssignmentHandler::claims` takes it.
    fn grant_key(&self, a: &Assignment) -> (String, String) {
        let (tenant_id, workspace_id, role_id, subject_type, subject_id) = self.grant(a);
        assignment_claim(tenant_id, role_id, subject_type, subject_id, workspace_id)
    }

    fn grant(&self, a: &Assignment) -> make::Grant {
        let (subject_type, subject_id) = match a.subject {
            Subject::User(u) => (SubjectType::User, self.w.users[u].id),
            Subject::Group(g) => (SubjectType::Group, self.w.groups[g].id),
        };
        let workspace_id = a.workspace.map(|w| self.w.workspaces[w].id);
        (
            self.w.tenants[a.tenant].id,
            workspace_id,
            self.w.roles[a.role].id,
            subject_type,
            subject_id,
        )
    }

    /// `assignment.created`: the role (live, of this tenant, its workspace live) to a live
    /// subject of this tenant, tenant-wide or in a live workspace (a workspace role only in
    /// its own).
    pub fn grant_role(
        &mut self,
        t: Ix,
        role: Ix,
        subject: Subject,
        workspace: Option<Ix>,
        meta: Metadata,
    ) {
        let id = self.rng.uuid_v7(self.clock.now());
        let a = Assignment {
            id,
            tenant: t,
            workspace,
            role,
            subject,
            deleted: false,
        };
        let stream = assignment_stream(id);
        let mut version = 0;
        let event = pending(
            stream.clone(),
            &mut version,
            &make::assignment_created(id, self.grant(&a)),
        );
        let (scope, key) = self.grant_key(&a);
        self.out.claim(&scope, &key, &stream);
        self.w.grants.insert((role, subject, workspace));
        self.w.roles[role].holders += 1;
        self.w.live_assignments.push(self.w.assignments.len());
        self.w.assignments.push(a);
        self.emit(meta, vec![event]);
    }

    pub fn assign(&mut self) -> bool {
        let Some(t) = self.w.pick_tenant(&mut self.rng) else {
            return false;
        };
        let Some(role) = self.w.assignable_role(&mut self.rng, t) else {
            return false;
        };
        let subject = if self.rng.chance(0.3) {
            self.w.pick_group(&mut self.rng, t).map(Subject::Group)
        } else {
            let users = &self.w.tenants[t].users;
            (0..4)
                .filter(|_| !users.is_empty())
                .map(|_| users[self.rng.below(users.len())])
                .find(|u| self.w.users[*u].status != UserStatus::Deleted)
                .map(Subject::User)
        };
        let Some(subject) = subject else {
            return false;
        };
        let workspace = match self.w.roles[role].workspace {
            Some(w) => Some(w),
            None if self.rng.chance(0.5) => self.w.pick_workspace(&mut self.rng, t),
            None => None,
        };
        if self.w.grants.contains(&(role, subject, workspace)) {
            return false;
        }
        let meta = self.admin_meta(t);
        self.grant_role(t, role, subject, workspace, meta);
        true
    }

    pub fn unassign(&mut self) -> bool {
        let (assignments, tenants) = (&self.w.assignments, &self.w.tenants);
        let ok = |a: Ix| !assignments[a].deleted && tenants[assignments[a].tenant].active();
        let Some(a) = World::draw(&mut self.rng, &mut self.w.live_assignments, ok) else {
            return false;
        };
        let assignment = &self.w.assignments[a];
        let (t, role, subject, workspace) = (
            assignment.tenant,
            assignment.role,
            assignment.subject,
            assignment.workspace,
        );
        let grant = self.grant(assignment);
        let (scope, key) = self.grant_key(assignment);
        let stream = assignment_stream(assignment.id);
        let mut version = 1;
        let event = pending(
            stream.clone(),
            &mut version,
            &make::assignment_deleted(assignment.id, grant),
        );
        self.out.release(&scope, &key, &stream);
        self.w.assignments[a].deleted = true;
        self.w.grants.remove(&(role, subject, workspace));
        self.w.roles[role].holders -= 1;
        let meta = self.admin_meta(t);
        self.emit(meta, vec![event]);
        true
    }
}
