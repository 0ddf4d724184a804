//! The generator: sets the stage (the registry, a platform administrator), then runs the mix
//! command by command against its [`World`], handing every command to [`Out`].

use std::collections::HashSet;

use charter_events::{DomainEvent, Metadata, Scoped};
use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use super::mix::{Kind, Schedule};
use super::out::{Out, Pending};
use super::rng::{Clock, Rng};
use super::world::{Ix, World};
use super::Existing;

/// The credential rules of the service's default configuration.
pub struct Policy {
    pub pbkdf2_iterations: u32,
    pub threshold: u32,
    pub lock: Duration,
    pub refresh_ttl: Duration,
}

impl Policy {
    pub fn service_default() -> Self {
        let auth = charter::config::Config::default().auth;
        Policy {
            pbkdf2_iterations: auth.pbkdf2_iterations.get(),
            threshold: auth.lockout_threshold.max(1),
            lock: Duration::seconds(auth.lockout_duration_s as i64),
            refresh_ttl: Duration::seconds(auth.refresh_token_ttl_s as i64),
        }
    }
}

/// Something that happens a while after another command (a blocked tenant is unblocked).
pub enum Followup {
    Unblock(Ix),
}

pub struct Gen {
    pub rng: Rng,
    pub clock: Clock,
    pub w: World,
    pub out: Out,
    pub schedule: Schedule,
    pub policy: Policy,
    pub target: u64,
    /// Tenant slugs taken, ours and the database's.
    pub slugs: HashSet<String>,
    /// Customer tenants created so far.
    pub customers: usize,
    pub followups: Vec<(f64, Followup)>,
    pub platform_ip: String,
}

impl Gen {
    pub fn new(target: u64, seed: u64, start: DateTime<Utc>, end: DateTime<Utc>, out: Out) -> Self {
        let mut rng = Rng::new(seed);
        let schedule = Schedule::new(target, &mut rng);
        Gen {
            clock: Clock::new(start, end),
            rng,
            w: World::default(),
            out,
            schedule,
            policy: Policy::service_default(),
            target,
            slugs: HashSet::new(),
            customers: 0,
            followups: Vec::new(),
            platform_ip: "10.0.0.10".into(),
        }
    }

    pub fn progress(&self) -> f64 {
        self.out.events as f64 / self.target as f64
    }

    /// Generates the whole history. `Err` when the in-process domain check failed or nothing
    /// the domain would accept is left to do.
    pub fn run(&mut self, existing: &Existing) -> Result<(), String> {
        self.setup(existing);
        while self.out.events < self.target && !self.out.closed {
            if let Some(e) = &self.out.check_error {
                return Err(e.clone());
            }
            let room = self.target - self.out.events;
            let progress = self.progress();
            // About 1.35 events per command.
            self.clock.tick(&mut self.rng, room * 100 / 135);
            if self.followup(progress) {
                continue;
            }
            let mut ran = false;
            for kind in self.schedule.due(room) {
                if self.act(kind) {
                    self.schedule.done(kind, self.progress(), &mut self.rng);
                    ran = true;
                    break;
                }
                self.schedule.postpone(kind, progress);
            }
            if !ran && !self.filler() {
                return Err("no command the domain would accept is left".into());
            }
        }
        self.out.end_batch();
        match self.out.finish_check() {
            Some(Err(e)) => Err(e),
            _ => Ok(()),
        }
    }

    fn act(&mut self, kind: Kind) -> bool {
        match kind {
            Kind::CreateTenant => self.onboard_tenant(),
            Kind::RenameTenant => self.rename_tenant(),
            Kind::MoveTenant => self.move_tenant(),
            Kind::BlockTenant => self.block_tenant(),
            Kind::DeleteTenant => self.delete_tenant(),
            Kind::CreateWorkspace => self.create_workspace(),
            Kind::RenameWorkspace => self.rename_workspace(),
            Kind::DeleteWorkspace => self.delete_workspace(),
            Kind::RelabelPermission => self.relabel_permission(),
            Kind::CreateRole => self.create_role(),
            Kind::GrantPermissions => self.grant_permissions(),
            Kind::RevokePermissions => self.revoke_permissions(),
            Kind::RenameRole => self.rename_role(),
            Kind::DeleteRole => self.delete_role(),
            Kind::CreateUser => self.hire(),
            Kind::ChangeEmail => self.change_email(),
            Kind::ChangeDisplayName => self.change_display_name(),
            Kind::DisableUser => self.disable_user(),
            Kind::EnableUser => self.enable_user(),
            Kind::DeleteUser => self.delete_user(),
            Kind::CreateGroup => self.create_group(),
            Kind::DeleteGroup => self.delete_group(),
            Kind::AddMember => self.add_member(),
            Kind::RemoveMember => self.remove_member(),
            Kind::Assign => self.assign(),
            Kind::Unassign => self.unassign(),
            Kind::Login => self.login(),
            Kind::LoginAfterTypo => self.login_after_typo(),
            Kind::FailedLogin => self.failed_login(),
            Kind::BruteForce => self.brute_force(),
            Kind::UnlockAccount => self.unlock_account(),
            Kind::DisabledLogin => self.disabled_login(),
            Kind::SetUpMfa => self.set_up_mfa(),
            Kind::MissingSecondFactor => self.missing_second_factor(),
            Kind::DisableMfa => self.disable_mfa(),
            Kind::ChangePassword => self.change_password(),
            Kind::LogoutEverywhere => self.logout_everywhere(),
            Kind::Refresh => self.refresh(),
            Kind::Logout => self.logout(),
            Kind::RefreshTokenReuse => self.reuse_refresh_token(),
        }
    }

    /// Runs a follow-up that has come due.
    fn followup(&mut self, progress: f64) -> bool {
        let Some(at) = self.followups.iter().position(|(due, _)| *due <= progress) else {
            return false;
        };
        let (_, followup) = self.followups.swap_remove(at);
        match followup {
            Followup::Unblock(t) => self.unblock_tenant(t),
        }
    }

    /// One event the domain always accepts while anyone is around: a profile edit, else a
    /// tenant rename.
    fn filler(&mut self) -> bool {
        self.change_display_name() || self.rename_tenant()
    }

    /// Appends one command, recorded now.
    pub fn emit(&mut self, meta: Metadata, events: Vec<Pending>) {
        let at = self.clock.now();
        let ids: Vec<Uuid> = events.iter().map(|_| self.rng.uuid_v7(at)).collect();
        self.out.command(&meta, at, &ids, events);
    }

    fn meta(&mut self, actor: String, ip: Option<String>) -> Metadata {
        let now = self.clock.now();
        let http = ip.is_some();
        Metadata {
            actor,
            correlation_id: self.rng.uuid_v7(now),
            causation_id: None,
            request_id: http.then(|| self.rng.uuid_v4().to_string()),
            client_ip: ip,
        }
    }

    /// A command Charter issues itself (`system`, `system:bootstrap`).
    pub fn system_meta(&mut self, actor: &str) -> Metadata {
        self.meta(actor.into(), None)
    }

    /// A request of the platform administrator.
    pub fn platform_meta(&mut self) -> Metadata {
        let platform = self.w.platform.expect("a platform administrator");
        let ip = self.platform_ip.clone();
        self.meta(format!("user:{}", platform.user_id), Some(ip))
    }

    /// A request of tenant `t`'s administrator.
    pub fn admin_meta(&mut self, t: Ix) -> Metadata {
        match self.w.tenants[t].admin {
            Some(admin) => self.user_meta(admin),
            None => self.platform_meta(),
        }
    }

    /// A request of user `u`, signed in.
    pub fn user_meta(&mut self, u: Ix) -> Metadata {
        let (id, ip) = (self.w.users[u].id, self.w.users[u].ip.clone());
        self.meta(format!("user:{id}"), Some(ip))
    }

    /// An unauthenticated request (login, refresh) from `ip`.
    pub fn anonymous_meta(&mut self, ip: String) -> Metadata {
        self.meta("anonymous".into(), Some(ip))
    }

    /// A public address for a user (stable per user).
    pub fn new_ip(&mut self) -> String {
        let r = self.rng.next_u64();
        let octet = |shift: u32| (r >> shift) as u8;
        match r % 4 {
            0 => format!("10.{}.{}.{}", octet(8), octet(16), octet(24).max(1)),
            1 => format!("192.168.{}.{}", octet(8), octet(16).max(1)),
            _ => format!(
                "{}.{}.{}.{}",
                11 + octet(8) % 180,
                octet(16),
                octet(24),
                octet(32).max(1)
            ),
        }
    }
}

/// `Pending::of` for a stream version that the caller bumps.
pub fn pending<E: DomainEvent + Scoped>(
    stream_id: String,
    version: &mut i64,
    event: &E,
) -> Pending {
    *version += 1;
    Pending::of(stream_id, *version, event)
}
