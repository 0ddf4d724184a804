//! The mix: how many of each kind of command a history of N events holds, and when in the
//! history each happens.
//!
//! Each kind has a rate per million events and a pace: the i-th of its T commands is due when
//! the history is `((i + u) / T)^(1 / pace)` of the way through (u random). A pace below 1
//! front-loads the kind (tenants sign up early), above 1 back-loads it (activity grows with
//! the population). The generator always runs the kind that is due first; one that cannot run
//! yet (no candidate) is retried a little later.

use super::rng::Rng;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    CreateTenant,
    RenameTenant,
    MoveTenant,
    BlockTenant,
    DeleteTenant,
    CreateWorkspace,
    RenameWorkspace,
    DeleteWorkspace,
    RelabelPermission,
    CreateRole,
    GrantPermissions,
    RevokePermissions,
    RenameRole,
    DeleteRole,
    CreateUser,
    ChangeEmail,
    ChangeDisplayName,
    DisableUser,
    EnableUser,
    DeleteUser,
    CreateGroup,
    DeleteGroup,
    AddMember,
    RemoveMember,
    Assign,
    Unassign,
    Login,
    LoginAfterTypo,
    FailedLogin,
    BruteForce,
    UnlockAccount,
    DisabledLogin,
    SetUpMfa,
    MissingSecondFactor,
    DisableMfa,
    ChangePassword,
    LogoutEverywhere,
    Refresh,
    Logout,
    RefreshTokenReuse,
}

/// (kind, commands per million events, events per command (expected), pace, minimum).
/// Minimums make small histories (the tests') still exercise every kind.
pub const MIX: &[(Kind, f64, f64, f64, u64)] = &[
    // Tenants: created (with their 3 system roles, a first admin and its assignment), renamed,
    // moved in the hierarchy, blocked for a while (unblocked later), rarely deleted.
    (Kind::CreateTenant, 40.0, 7.0, 0.6, 4),
    (Kind::RenameTenant, 8.0, 1.0, 1.0, 1),
    (Kind::MoveTenant, 2.0, 1.0, 1.0, 1),
    (Kind::BlockTenant, 3.0, 2.0, 1.0, 1),
    (Kind::DeleteTenant, 1.0, 1.0, 1.0, 1),
    (Kind::CreateWorkspace, 320.0, 1.0, 0.8, 6),
    (Kind::RenameWorkspace, 30.0, 1.0, 1.2, 1),
    (Kind::DeleteWorkspace, 15.0, 1.0, 1.2, 1),
    (Kind::RelabelPermission, 5.0, 1.0, 1.0, 1),
    // Custom roles (every tenant also has 3 system roles).
    (Kind::CreateRole, 300.0, 1.0, 0.9, 4),
    (Kind::GrantPermissions, 250.0, 1.0, 1.2, 1),
    (Kind::RevokePermissions, 80.0, 1.0, 1.2, 1),
    (Kind::RenameRole, 40.0, 1.0, 1.2, 1),
    (Kind::DeleteRole, 25.0, 1.0, 1.3, 1),
    // The directory: 92 % of users get a password (user.password_set), the rest sign in
    // elsewhere.
    (Kind::CreateUser, 100_000.0, 1.92, 0.9, 0),
    (Kind::ChangeEmail, 8_000.0, 1.0, 1.4, 1),
    (Kind::ChangeDisplayName, 12_000.0, 1.0, 1.4, 1),
    (Kind::DisableUser, 4_000.0, 1.0, 1.3, 1),
    (Kind::EnableUser, 1_200.0, 1.0, 1.4, 1),
    (Kind::DeleteUser, 2_500.0, 1.0, 1.4, 1),
    (Kind::CreateGroup, 10_000.0, 1.0, 0.9, 0),
    (Kind::DeleteGroup, 150.0, 1.0, 1.3, 1),
    (Kind::AddMember, 200_000.0, 1.0, 1.0, 0),
    (Kind::RemoveMember, 12_000.0, 1.0, 1.4, 1),
    (Kind::Assign, 50_000.0, 1.0, 1.0, 0),
    (Kind::Unassign, 4_000.0, 1.0, 1.4, 1),
    // Credentials, the bulk of a real log: a login is user.login_succeeded + session.started.
    (Kind::Login, 145_000.0, 2.0, 1.6, 0),
    (Kind::LoginAfterTypo, 20_000.0, 3.0, 1.6, 1),
    (Kind::FailedLogin, 15_000.0, 1.0, 1.6, 1),
    (Kind::BruteForce, 600.0, 6.0, 1.5, 1),
    (Kind::UnlockAccount, 300.0, 1.0, 1.5, 1),
    (Kind::DisabledLogin, 1_000.0, 1.0, 1.5, 1),
    (Kind::SetUpMfa, 6_000.0, 1.85, 1.3, 1),
    (Kind::MissingSecondFactor, 500.0, 1.0, 1.5, 1),
    (Kind::DisableMfa, 300.0, 1.0, 1.5, 1),
    (Kind::ChangePassword, 3_000.0, 2.0, 1.5, 1),
    (Kind::LogoutEverywhere, 2_000.0, 1.0, 1.5, 1),
    (Kind::Refresh, 110_000.0, 1.0, 1.7, 0),
    (Kind::Logout, 35_000.0, 1.0, 1.7, 1),
    (Kind::RefreshTokenReuse, 50.0, 1.0, 1.7, 1),
];

/// The most events one command of `kind` can append (for the last few slots of a history).
pub fn max_events(kind: Kind) -> u64 {
    match kind {
        Kind::CreateTenant => 7,
        Kind::BruteForce => 6,
        Kind::LoginAfterTypo => 3,
        Kind::CreateUser | Kind::Login | Kind::SetUpMfa | Kind::ChangePassword => 2,
        Kind::FailedLogin | Kind::MissingSecondFactor => 2,
        _ => 1,
    }
}

struct Slot {
    kind: Kind,
    target: u64,
    done: u64,
    pace: f64,
    due: f64,
}

pub struct Schedule {
    slots: Vec<Slot>,
}

impl Schedule {
    /// Targets for a history of `events` events.
    pub fn new(events: u64, rng: &mut Rng) -> Self {
        let per_million: f64 = MIX.iter().map(|(_, rate, size, _, _)| rate * size).sum();
        let scale = events as f64 / per_million;
        let mut slots: Vec<Slot> = MIX
            .iter()
            .map(|&(kind, rate, _, pace, min)| Slot {
                kind,
                target: ((rate * scale).round() as u64).max(min),
                done: 0,
                pace,
                due: 0.0,
            })
            .collect();
        for slot in &mut slots {
            slot.due = slot.next_due(rng);
        }
        Schedule { slots }
    }

    pub fn target(&self, kind: Kind) -> u64 {
        self.slots
            .iter()
            .find(|s| s.kind == kind)
            .map_or(0, |s| s.target)
    }

    /// Counts one command of `kind` as done at `progress` (also ones run outside the schedule).
    /// A kind that fell behind catches up at no more than four times its average rate.
    pub fn done(&mut self, kind: Kind, progress: f64, rng: &mut Rng) {
        if let Some(slot) = self.slots.iter_mut().find(|s| s.kind == kind) {
            slot.done += 1;
            let gap = 0.25 / slot.target.max(1) as f64;
            slot.due = slot.next_due(rng).max(progress + gap);
        }
    }

    /// The kinds with commands left that fit in `room` events, the earliest due first.
    pub fn due(&self, room: u64) -> Vec<Kind> {
        let mut due: Vec<&Slot> = (self.slots.iter())
            .filter(|s| s.done < s.target && s.due < GIVE_UP && max_events(s.kind) <= room)
            .collect();
        due.sort_by(|a, b| a.due.total_cmp(&b.due));
        due.iter().map(|s| s.kind).collect()
    }

    /// `kind` could not run at `progress`: try again a little later (and give up on it once
    /// that is well past the end).
    pub fn postpone(&mut self, kind: Kind, progress: f64) {
        if let Some(slot) = self.slots.iter_mut().find(|s| s.kind == kind) {
            slot.due = slot.due.max(progress) + 0.002;
        }
    }

    /// (kind, commands planned, commands run).
    pub fn report(&self) -> Vec<(Kind, u64, u64)> {
        self.slots
            .iter()
            .map(|s| (s.kind, s.target, s.done))
            .collect()
    }
}

/// A kind postponed beyond this point of the history is dropped.
const GIVE_UP: f64 = 1.5;

impl Slot {
    fn next_due(&self, rng: &mut Rng) -> f64 {
        if self.done >= self.target {
            return f64::INFINITY;
        }
        let q = (self.done as f64 + rng.unit()) / self.target as f64;
        q.powf(1.0 / self.pace)
    }
}
