//! Credentials, the bulk of a real log: logins (each starts a session), typos, brute-force
//! bursts that lock accounts, MFA, password changes, refresh-token rotation and logouts.
//! The lockout rules are the service's defaults (`auth.lockout_*`), applied exactly as
//! `UserState::decide_login` applies them.

use charter_events::session::SessionEndReason;
use charter_events::user::LoginFailure;
use charter_events::Metadata;

use super::gen::{pending, Gen};
use super::make;
use super::world::{Ix, Session, World};
use charter::domain::user::UserStatus;
use charter_events::streams::{session_stream, user_stream};

impl Gen {
    fn ids(&self, u: Ix) -> (uuid::Uuid, uuid::Uuid, String) {
        let user = &self.w.users[u];
        (
            user.id,
            self.w.tenants[user.tenant].id,
            user_stream(user.id),
        )
    }

    /// A refused attempt: `user.login_failed`, and `user.account_locked` when it reaches the
    /// threshold. Failures for a disabled account do not count toward the lock.
    fn fail(&mut self, u: Ix, reason: LoginFailure, meta: Metadata) {
        let now = self.clock.now();
        let (user_id, tenant_id, stream) = self.ids(u);
        let (threshold, lock) = (self.policy.threshold, self.policy.lock);
        let user = &mut self.w.users[u];
        let previous = match user.locked_until {
            Some(_) if !user.locked_at(now) => 0,
            _ => user.failed,
        };
        let counts = !matches!(reason, LoginFailure::Locked | LoginFailure::Disabled);
        let consecutive = previous + u32::from(counts);
        let failed = make::user_login_failed(user_id, tenant_id, reason, consecutive);
        let mut events = vec![pending(stream.clone(), &mut user.version, &failed)];
        user.failed = consecutive;
        if counts {
            user.locked_until = None;
            if consecutive >= threshold {
                let until = now + lock;
                user.locked_until = Some(until);
                events.push(pending(
                    stream,
                    &mut user.version,
                    &make::user_account_locked(user_id, tenant_id, until),
                ));
            }
        }
        self.w.troubled.push(u);
        self.emit(meta, events);
    }

    /// `user.login_succeeded` and, in the same command, `session.started`. A user with MFA
    /// proves a TOTP code of a step newer than the last one used.
    fn succeed(&mut self, u: Ix) -> bool {
        let now = self.clock.now();
        let step = now.timestamp().max(0) as u64 / charter::auth::totp::STEP_SECONDS;
        let user = &self.w.users[u];
        let totp = user.mfa_active.is_some().then_some(step);
        if totp.is_some_and(|s| s <= user.last_step) || !user.can_log_in(now) {
            return false;
        }
        let t = user.tenant;
        let workspace = match self.rng.chance(0.1) {
            true => self.w.pick_workspace(&mut self.rng, t),
            false => None,
        };
        let ip = self.w.users[u].ip.clone();
        let meta = self.anonymous_meta(ip);
        let session_id = self.rng.uuid_v7(now);
        let hash = self.rng.hex(32);
        let (user_id, tenant_id, stream) = self.ids(u);
        let expires_at = now + self.policy.refresh_ttl;
        let user = &mut self.w.users[u];
        let succeeded = make::user_login_succeeded(user_id, tenant_id, session_id, totp);
        let mut events = vec![pending(stream, &mut user.version, &succeeded)];
        user.failed = 0;
        user.locked_until = None;
        if let Some(step) = totp {
            user.last_step = user.last_step.max(step);
        }
        let account_version = user.account_version;
        let workspace_id = workspace.map(|w| self.w.workspaces[w].id);
        let mut version = 0;
        let started = make::session_started(
            session_id,
            tenant_id,
            user_id,
            workspace_id,
            account_version,
            hash,
            expires_at,
        );
        events.push(pending(session_stream(session_id), &mut version, &started));
        self.w.open_sessions.push(self.w.sessions.len());
        self.w.sessions.push(Session {
            id: session_id,
            user: u,
            version,
            generation: 0,
            account_version,
            expires_at,
            ended: false,
        });
        self.emit(meta, events);
        true
    }

    pub fn login(&mut self) -> bool {
        let now = self.clock.now();
        match self.w.pick_user(&mut self.rng, |u| u.can_log_in(now)) {
            Some(u) => self.succeed(u),
            None => false,
        }
    }

    /// A mistyped password, then the right one a few seconds later.
    pub fn login_after_typo(&mut self) -> bool {
        let now = self.clock.now();
        let threshold = self.policy.threshold;
        let ok = |u: &super::world::User| {
            u.can_log_in(now) && u.mfa_active.is_none() && u.failed + 1 < threshold
        };
        let Some(u) = self.w.pick_user(&mut self.rng, ok) else {
            return false;
        };
        let meta = self.anonymous_meta(self.w.users[u].ip.clone());
        self.fail(u, LoginFailure::BadPassword, meta);
        self.clock.pause(&mut self.rng, 8.0);
        self.succeed(u);
        true
    }

    /// A wrong password (or a user without one trying anyway), and nothing more.
    pub fn failed_login(&mut self) -> bool {
        let now = self.clock.now();
        let ok = |u: &super::world::User| u.status == UserStatus::Active && !u.locked_at(now);
        let Some(u) = self.w.pick_user(&mut self.rng, ok) else {
            return false;
        };
        let meta = self.anonymous_meta(self.w.users[u].ip.clone());
        self.fail(u, LoginFailure::BadPassword, meta);
        true
    }

    /// Someone guessing passwords from one address until the account locks.
    pub fn brute_force(&mut self) -> bool {
        if self.target - self.out.events <= self.policy.threshold as u64 {
            return false;
        }
        let now = self.clock.now();
        let ok = |u: &super::world::User| u.can_log_in(now) && u.failed == 0;
        let Some(u) = self.w.pick_user(&mut self.rng, ok) else {
            return false;
        };
        let ip = self.new_ip();
        while !self.w.users[u].locked_at(self.clock.now()) {
            let meta = self.anonymous_meta(ip.clone());
            self.fail(u, LoginFailure::BadPassword, meta);
            self.clock.pause(&mut self.rng, 3.0);
        }
        true
    }

    /// An administrator lifts a lock (or clears a failure count) early.
    pub fn unlock_account(&mut self) -> bool {
        let now = self.clock.now();
        let (users, tenants) = (&self.w.users, &self.w.tenants);
        let ok = |u: Ix| {
            let user = &users[u];
            user.status != UserStatus::Deleted
                && tenants[user.tenant].active()
                && (user.locked_at(now) || user.failed > 0)
        };
        let Some(u) = World::draw(&mut self.rng, &mut self.w.troubled, ok) else {
            return false;
        };
        let (user_id, tenant_id, stream) = self.ids(u);
        let user = &mut self.w.users[u];
        user.failed = 0;
        user.locked_until = None;
        let event = pending(
            stream,
            &mut user.version,
            &make::user_account_unlocked(user_id, tenant_id),
        );
        let meta = self.admin_meta(self.w.users[u].tenant);
        self.emit(meta, vec![event]);
        true
    }

    /// A disabled user still trying to sign in.
    pub fn disabled_login(&mut self) -> bool {
        let (users, tenants) = (&self.w.users, &self.w.tenants);
        let ok =
            |u: Ix| users[u].status == UserStatus::Disabled && tenants[users[u].tenant].active();
        let Some(u) = World::draw(&mut self.rng, &mut self.w.disabled, ok) else {
            return false;
        };
        let meta = self.anonymous_meta(self.w.users[u].ip.clone());
        self.fail(u, LoginFailure::Disabled, meta);
        true
    }

    /// Enrolls a TOTP secret (sealed with the master key) and, most of the time, activates it
    /// with a code half a minute later.
    pub fn set_up_mfa(&mut self) -> bool {
        let now = self.clock.now();
        let ok = |u: &super::world::User| u.can_log_in(now) && u.mfa_active.is_none();
        let Some(u) = self.w.pick_user(&mut self.rng, ok) else {
            return false;
        };
        let mut sealed = [0u8; 60];
        self.rng.fill(&mut sealed);
        use base64::Engine;
        let sealed = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sealed);
        let (user_id, tenant_id, stream) = self.ids(u);
        let user = &mut self.w.users[u];
        user.mfa_pending = Some(sealed.clone());
        let event = pending(
            stream.clone(),
            &mut user.version,
            &make::user_mfa_enrolled(user_id, tenant_id, &sealed),
        );
        let meta = self.user_meta(u);
        self.emit(meta, vec![event]);
        if self.rng.chance(0.15) {
            return true;
        }
        self.clock.pause(&mut self.rng, 40.0);
        let step = self.clock.now().timestamp().max(0) as u64 / charter::auth::totp::STEP_SECONDS;
        let codes = (0..charter::auth::totp::RECOVERY_CODES)
            .map(|_| self.rng.hex(32))
            .collect();
        let user = &mut self.w.users[u];
        user.mfa_active = user.mfa_pending.take();
        user.last_step = user.last_step.max(step);
        let event = pending(
            stream,
            &mut user.version,
            &make::user_mfa_activated(user_id, tenant_id, codes, step),
        );
        let meta = self.user_meta(u);
        self.emit(meta, vec![event]);
        self.w.mfa.push(u);
        true
    }

    fn draw_mfa_user(&mut self) -> Option<Ix> {
        let now = self.clock.now();
        let (users, tenants) = (&self.w.users, &self.w.tenants);
        let ok = |u: Ix| {
            users[u].mfa_active.is_some()
                && users[u].can_log_in(now)
                && tenants[users[u].tenant].active()
        };
        World::draw(&mut self.rng, &mut self.w.mfa, ok)
    }

    /// The right password, but no second factor.
    pub fn missing_second_factor(&mut self) -> bool {
        let Some(u) = self.draw_mfa_user() else {
            return false;
        };
        let meta = self.anonymous_meta(self.w.users[u].ip.clone());
        self.fail(u, LoginFailure::MissingSecondFactor, meta);
        true
    }

    /// Turning MFA off, proven with the current password.
    pub fn disable_mfa(&mut self) -> bool {
        let Some(u) = self.draw_mfa_user() else {
            return false;
        };
        let (user_id, tenant_id, stream) = self.ids(u);
        let user = &mut self.w.users[u];
        user.mfa_active = None;
        user.mfa_pending = None;
        let event = pending(
            stream,
            &mut user.version,
            &make::user_mfa_disabled(user_id, tenant_id),
        );
        let meta = self.user_meta(u);
        self.emit(meta, vec![event]);
        true
    }

    /// A new password (proven with the old one): `user.password_set`, and every session ends.
    pub fn change_password(&mut self) -> bool {
        let now = self.clock.now();
        let Some(u) = self.w.pick_user(&mut self.rng, |u| u.can_log_in(now)) else {
            return false;
        };
        let hash = self.password_hash();
        let (user_id, tenant_id, stream) = self.ids(u);
        let user = &mut self.w.users[u];
        user.password = Some(hash.clone());
        user.account_version += 1;
        let revoked = make::user_sessions_revoked(user_id, tenant_id, user.account_version);
        let events = vec![
            pending(
                stream.clone(),
                &mut user.version,
                &make::user_password_set(user_id, tenant_id, &hash),
            ),
            pending(stream, &mut user.version, &revoked),
        ];
        let meta = self.user_meta(u);
        self.emit(meta, events);
        true
    }

    /// Logout everywhere: `account_version` moves on, every session and token ends.
    pub fn logout_everywhere(&mut self) -> bool {
        let Some(u) = self
            .w
            .pick_user(&mut self.rng, |u| u.status == UserStatus::Active)
        else {
            return false;
        };
        let (user_id, tenant_id, stream) = self.ids(u);
        let user = &mut self.w.users[u];
        user.account_version += 1;
        let revoked = make::user_sessions_revoked(user_id, tenant_id, user.account_version);
        let event = pending(stream, &mut user.version, &revoked);
        let meta = self.user_meta(u);
        self.emit(meta, vec![event]);
        true
    }

    /// An open session whose refresh token still works: not ended or expired, its user active
    /// and not logged out everywhere since, its tenant active.
    fn draw_session(&mut self, ok: impl Fn(&Session) -> bool) -> Option<Ix> {
        let now = self.clock.now();
        let (sessions, users, tenants) = (&self.w.sessions, &self.w.users, &self.w.tenants);
        let usable = |s: Ix| {
            let session = &sessions[s];
            let user = &users[session.user];
            !session.ended
                && now < session.expires_at
                && user.status == UserStatus::Active
                && user.account_version <= session.account_version
                && tenants[user.tenant].active()
                && ok(session)
        };
        World::draw(&mut self.rng, &mut self.w.open_sessions, usable)
    }

    /// The refresh token is rotated: `session.refreshed` with the next generation.
    pub fn refresh(&mut self) -> bool {
        let Some(s) = self.draw_session(|_| true) else {
            return false;
        };
        let hash = self.rng.hex(32);
        let u = self.w.sessions[s].user;
        let (_, tenant_id, _) = self.ids(u);
        let session = &mut self.w.sessions[s];
        session.generation += 1;
        let refreshed = make::session_refreshed(session.id, tenant_id, session.generation, hash);
        let event = pending(session_stream(session.id), &mut session.version, &refreshed);
        let meta = self.anonymous_meta(self.w.users[u].ip.clone());
        self.emit(meta, vec![event]);
        true
    }

    pub fn logout(&mut self) -> bool {
        let Some(s) = self.draw_session(|_| true) else {
            return false;
        };
        self.end_session(s, SessionEndReason::Logout);
        true
    }

    /// A superseded refresh token is presented: the family is presumed stolen and ends.
    pub fn reuse_refresh_token(&mut self) -> bool {
        let Some(s) = self.draw_session(|s| s.generation > 0) else {
            return false;
        };
        self.end_session(s, SessionEndReason::RefreshTokenReused);
        true
    }

    fn end_session(&mut self, s: Ix, reason: SessionEndReason) {
        let u = self.w.sessions[s].user;
        let (user_id, tenant_id, _) = self.ids(u);
        let session = &mut self.w.sessions[s];
        session.ended = true;
        let ended = make::session_ended(session.id, tenant_id, user_id, reason);
        let event = pending(session_stream(session.id), &mut session.version, &ended);
        let meta = match reason {
            SessionEndReason::Logout => self.user_meta(u),
            SessionEndReason::RefreshTokenReused => {
                let ip = self.new_ip();
                self.anonymous_meta(ip)
            }
        };
        self.emit(meta, vec![event]);
    }
}
