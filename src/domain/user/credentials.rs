//! The credential half of the `user` aggregate: login attempts with lockout, the TOTP second
//! factor and its recovery codes, sessions ended all at once, password changes.
//!
//! Everything expensive or keyed (PBKDF2, unsealing the TOTP secret) happens before the
//! decision, against the state the caller read; the command says what was verified against
//! what, and the decision accepts it only if that is still the current credential. A
//! concurrent password change or MFA reset therefore turns a stale "verified" into a failure.

use charter_events::user::{
    LoginFailure, SecondFactor, UserAccountLocked, UserAccountUnlocked, UserEvent, UserLoginFailed,
    UserLoginSucceeded, UserMfaActivated, UserMfaDisabled, UserMfaEnrolled, UserMfaReset,
    UserPasswordSet, UserPlatformAccessGranted, UserSessionsRevoked,
};
use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use super::{UserError, UserState, UserStatus};

/// When repeated failures lock an account, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    pub threshold: u32,
    pub duration: Duration,
}

/// The TOTP state of a user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mfa {
    /// Enrolled but not yet activated (sealed base32 secret).
    pub pending_secret: Option<String>,
    /// The active secret, when MFA is on.
    pub active_secret: Option<String>,
    /// Digests of the recovery codes; `None` once used.
    pub recovery_codes: Vec<Option<String>>,
    /// The newest TOTP step accepted: a code of this step or older is a replay.
    pub last_step: u64,
}

/// What the caller proved besides the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecondFactorProof {
    None,
    /// A TOTP code, checked against `secret` (sealed, as read): the step it matched, if any.
    Totp {
        secret: String,
        step: Option<u64>,
    },
    /// The digest of a recovery code as typed.
    RecoveryCode {
        digest: String,
    },
}

/// A signed-in user proving the password again (password change, turning MFA off). A wrong
/// password counts toward the lockout exactly like a failed login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reauth {
    pub now: DateTime<Utc>,
    /// The current hash the presented password matched, if any.
    pub matched: Option<String>,
    pub policy: LockoutPolicy,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginAttempt {
    pub now: DateTime<Utc>,
    pub session_id: Uuid,
    /// The password hash the presented password matched, or `None` when it matched nothing.
    pub password_matched: Option<String>,
    pub second_factor: SecondFactorProof,
    pub policy: LockoutPolicy,
}

impl UserState {
    /// Whether the account is locked at `now`.
    pub fn locked_at(&self, now: DateTime<Utc>) -> bool {
        self.locked_until.is_some_and(|until| now < until)
    }

    pub fn mfa_active(&self) -> bool {
        self.mfa.active_secret.is_some()
    }

    fn failed(&self, reason: LoginFailure, attempt: &LoginAttempt) -> Vec<UserEvent> {
        self.failure(reason, attempt.now, attempt.policy)
    }

    /// A failed proof of the password (or second factor), counted toward the lockout.
    fn failure(
        &self,
        reason: LoginFailure,
        now: DateTime<Utc>,
        policy: LockoutPolicy,
    ) -> Vec<UserEvent> {
        let (user_id, tenant_id) = (self.id, self.tenant_id);
        // An expired lock starts the count again.
        let previous = if self.locked_until.is_some() && !self.locked_at(now) {
            0
        } else {
            self.failed_logins
        };
        let counts = !matches!(reason, LoginFailure::Locked | LoginFailure::Disabled);
        let consecutive_failures = previous + u32::from(counts);
        let mut events = vec![UserLoginFailed {
            user_id,
            tenant_id,
            reason,
            consecutive_failures,
        }
        .into()];
        if counts && consecutive_failures >= policy.threshold {
            events.push(
                UserAccountLocked {
                    user_id,
                    tenant_id,
                    locked_until: now + policy.duration,
                }
                .into(),
            );
        }
        events
    }

    /// Decides a login attempt. A refusal is not an error: it is recorded, and the caller
    /// learns only that the login failed.
    pub fn decide_login(&self, attempt: &LoginAttempt) -> Vec<UserEvent> {
        if self.status == UserStatus::Disabled {
            return self.failed(LoginFailure::Disabled, attempt);
        }
        if self.locked_at(attempt.now) {
            // Already recorded as locked: attempts during the lock append nothing, so a
            // brute force cannot grow the stream.
            return vec![];
        }
        let password_ok = matches!(
            (&attempt.password_matched, &self.password_hash),
            (Some(matched), Some(current)) if matched == current
        );
        if !password_ok {
            return self.failed(LoginFailure::BadPassword, attempt);
        }
        let (second_factor, totp_step, recovery_code) = match &self.mfa.active_secret {
            None => (SecondFactor::None, None, None),
            Some(active) => match &attempt.second_factor {
                SecondFactorProof::None => {
                    return self.failed(LoginFailure::MissingSecondFactor, attempt)
                }
                SecondFactorProof::Totp {
                    secret,
                    step: Some(step),
                } if secret == active && *step > self.mfa.last_step => {
                    (SecondFactor::Totp, Some(*step), None)
                }
                SecondFactorProof::RecoveryCode { digest } => {
                    let index = self
                        .mfa
                        .recovery_codes
                        .iter()
                        .position(|c| c.as_deref() == Some(digest.as_str()));
                    match index {
                        Some(i) => (SecondFactor::RecoveryCode, None, Some(i as u32)),
                        None => return self.failed(LoginFailure::BadSecondFactor, attempt),
                    }
                }
                SecondFactorProof::Totp { .. } => {
                    return self.failed(LoginFailure::BadSecondFactor, attempt)
                }
            },
        };
        vec![UserLoginSucceeded {
            user_id: self.id,
            tenant_id: self.tenant_id,
            session_id: attempt.session_id,
            second_factor,
            totp_step,
            recovery_code,
        }
        .into()]
    }

    pub fn decide_unlock(&self, now: DateTime<Utc>) -> Vec<UserEvent> {
        if self.locked_at(now) || self.failed_logins > 0 {
            vec![UserAccountUnlocked {
                user_id: self.id,
                tenant_id: self.tenant_id,
            }
            .into()]
        } else {
            vec![]
        }
    }

    /// Logout-all: every session and access token of the user ends.
    pub fn revoke_sessions(&self) -> UserEvent {
        UserSessionsRevoked {
            user_id: self.id,
            tenant_id: self.tenant_id,
            account_version: self.account_version + 1,
        }
        .into()
    }

    /// Checks a re-authentication: `Ok(None)` when it holds, `Ok(Some(failure events))` when
    /// the password is wrong (the caller answers "wrong password" once they are recorded).
    fn reauthenticate(&self, proof: &Reauth) -> Result<Option<Vec<UserEvent>>, UserError> {
        if self.locked_at(proof.now) {
            return Err(UserError::AccountLocked);
        }
        match (&proof.matched, &self.password_hash) {
            (Some(matched), Some(current)) if matched == current => Ok(None),
            _ => Ok(Some(self.failure(
                LoginFailure::BadPassword,
                proof.now,
                proof.policy,
            ))),
        }
    }

    /// A password change, proven with the current password; it ends every session.
    pub fn decide_password_change(
        &self,
        proof: &Reauth,
        new_hash: &str,
    ) -> Result<Vec<UserEvent>, UserError> {
        if let Some(failure) = self.reauthenticate(proof)? {
            return Ok(failure);
        }
        Ok(vec![
            UserPasswordSet {
                user_id: self.id,
                tenant_id: self.tenant_id,
                password_hash: new_hash.to_owned(),
            }
            .into(),
            self.revoke_sessions(),
        ])
    }

    /// Enrollment is proven with the current password (a wrong one counts toward the
    /// lockout): a bearer token alone, stolen from a service, must not be able to put a
    /// second factor of the thief's on an account that has none.
    pub fn decide_mfa_enroll(
        &self,
        proof: &Reauth,
        sealed_secret: &str,
    ) -> Result<Vec<UserEvent>, UserError> {
        if let Some(failure) = self.reauthenticate(proof)? {
            return Ok(failure);
        }
        if self.mfa_active() {
            return Err(UserError::MfaAlreadyActive);
        }
        Ok(vec![UserMfaEnrolled {
            user_id: self.id,
            tenant_id: self.tenant_id,
            sealed_secret: sealed_secret.to_owned(),
        }
        .into()])
    }

    /// Activation proves possession with a code of the pending secret.
    pub fn decide_mfa_activate(
        &self,
        proof: &SecondFactorProof,
        recovery_code_hashes: &[String],
    ) -> Result<Vec<UserEvent>, UserError> {
        if self.mfa_active() {
            return Err(UserError::MfaAlreadyActive);
        }
        let Some(pending) = &self.mfa.pending_secret else {
            return Err(UserError::MfaNotEnrolled);
        };
        match proof {
            SecondFactorProof::Totp {
                secret,
                step: Some(step),
            } if secret == pending => Ok(vec![UserMfaActivated {
                user_id: self.id,
                tenant_id: self.tenant_id,
                recovery_code_hashes: recovery_code_hashes.to_vec(),
                totp_step: *step,
            }
            .into()]),
            _ => Err(UserError::InvalidCode),
        }
    }

    /// Turning MFA off needs the current password.
    pub fn decide_mfa_disable(&self, proof: &Reauth) -> Result<Vec<UserEvent>, UserError> {
        if let Some(failure) = self.reauthenticate(proof)? {
            return Ok(failure);
        }
        if !self.mfa_active() && self.mfa.pending_secret.is_none() {
            return Ok(vec![]);
        }
        Ok(vec![UserMfaDisabled {
            user_id: self.id,
            tenant_id: self.tenant_id,
        }
        .into()])
    }

    /// An administrator's reset of a lost second factor: MFA off, every session over.
    pub fn decide_mfa_reset(&self) -> Vec<UserEvent> {
        if !self.mfa_active() && self.mfa.pending_secret.is_none() {
            return vec![];
        }
        vec![UserMfaReset {
            user_id: self.id,
            tenant_id: self.tenant_id,
            account_version: self.account_version + 1,
        }
        .into()]
    }

    pub fn decide_platform_access(&self, permissions: &[String]) -> Vec<UserEvent> {
        if permissions
            .iter()
            .all(|p| self.platform_permissions.contains(p))
        {
            return vec![];
        }
        let mut all = self.platform_permissions.clone();
        all.extend(
            permissions
                .iter()
                .filter(|p| !self.platform_permissions.contains(p))
                .cloned(),
        );
        vec![UserPlatformAccessGranted {
            user_id: self.id,
            tenant_id: self.tenant_id,
            permissions: all,
        }
        .into()]
    }

    /// Folds the credential events; returns `false` for events this half does not own.
    pub(super) fn apply_credentials(&mut self, event: &UserEvent) -> bool {
        match event {
            UserEvent::LoginSucceeded(e) => {
                self.failed_logins = 0;
                self.locked_until = None;
                self.last_session_id = Some(e.session_id);
                if let Some(step) = e.totp_step {
                    self.mfa.last_step = self.mfa.last_step.max(step);
                }
                if let Some(slot) = e
                    .recovery_code
                    .and_then(|i| self.mfa.recovery_codes.get_mut(i as usize))
                {
                    *slot = None;
                }
            }
            UserEvent::LoginFailed(e) => {
                self.failed_logins = e.consecutive_failures;
                // A counted failure happens only when no lock is in force: an expired lock
                // is over, and the count starts again from this failure.
                if !matches!(e.reason, LoginFailure::Locked | LoginFailure::Disabled) {
                    self.locked_until = None;
                }
            }
            UserEvent::AccountLocked(e) => self.locked_until = Some(e.locked_until),
            UserEvent::AccountUnlocked(_) => {
                self.failed_logins = 0;
                self.locked_until = None;
            }
            UserEvent::SessionsRevoked(e) => self.account_version = e.account_version,
            UserEvent::MfaEnrolled(e) => self.mfa.pending_secret = Some(e.sealed_secret.clone()),
            UserEvent::MfaActivated(e) => {
                self.mfa.active_secret = self.mfa.pending_secret.take();
                self.mfa.recovery_codes =
                    e.recovery_code_hashes.iter().cloned().map(Some).collect();
                self.mfa.last_step = self.mfa.last_step.max(e.totp_step);
            }
            UserEvent::MfaDisabled(_) => self.mfa = Mfa::default(),
            UserEvent::MfaReset(e) => {
                self.mfa = Mfa::default();
                self.account_version = e.account_version;
            }
            UserEvent::PlatformAccessGranted(e) => {
                self.platform_permissions = e.permissions.clone()
            }
            _ => return false,
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::delegation::Authority;
    use crate::domain::tenant::TenantStatus;
    use crate::domain::testing::given;
    use crate::domain::user::{User, UserAction, UserCommand, UserError};
    use charter_events::user::UserCreated;
    use charter_events::DomainEvent;

    const T: Uuid = Uuid::from_u128(1);
    const U: Uuid = Uuid::from_u128(7);
    const S: Uuid = Uuid::from_u128(9);
    const HASH: &str = "$pbkdf2-sha256$i=1$AA$AA";

    fn t(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + seconds, 0).unwrap()
    }

    fn history() -> Vec<UserEvent> {
        vec![
            UserCreated {
                user_id: U,
                tenant_id: T,
                username: "alice".into(),
                email: "alice@example.com".into(),
                display_name: None,
                given_name: None,
                family_name: None,
                has_password: true,
            }
            .into(),
            UserPasswordSet {
                user_id: U,
                tenant_id: T,
                password_hash: HASH.into(),
            }
            .into(),
        ]
    }

    fn attempt(at: i64, password_ok: bool) -> UserCommand {
        UserCommand {
            tenant_id: T,
            tenant_status: Some(TenantStatus::Active),
            action: UserAction::Login(LoginAttempt {
                now: t(at),
                session_id: S,
                password_matched: password_ok.then(|| HASH.to_owned()),
                second_factor: SecondFactorProof::None,
                policy: LockoutPolicy {
                    threshold: 3,
                    duration: Duration::seconds(60),
                },
            }),
        }
    }

    /// Folds `history` and then runs `commands`, each decided against the state so far.
    fn run(commands: &[UserCommand]) -> (User, Vec<UserEvent>) {
        use crate::domain::Aggregate;
        let mut state = User::fold(&history());
        let mut all = Vec::new();
        for c in commands {
            let events = state.decide(c).unwrap();
            for e in &events {
                state = state.apply(e);
            }
            all.extend(events);
        }
        (state, all)
    }

    fn types(events: &[UserEvent]) -> Vec<&'static str> {
        events.iter().map(|e| e.event_type()).collect()
    }

    #[test]
    fn locks_after_the_threshold_and_ignores_attempts_while_locked() {
        let (state, events) = run(&[attempt(0, false), attempt(1, false), attempt(2, false)]);
        assert_eq!(
            types(&events),
            [
                "user.login_failed",
                "user.login_failed",
                "user.login_failed",
                "user.account_locked"
            ]
        );
        let u = state.0.clone().unwrap();
        assert!(u.locked_at(t(61)) && !u.locked_at(t(62)));
        // Even the right password fails while locked, and appends nothing.
        given::<User>(history().into_iter().chain(events.clone()))
            .when(attempt(30, true))
            .then([]);
    }

    #[test]
    fn an_expired_lock_counts_again_from_zero_and_locks_again() {
        let mut commands: Vec<UserCommand> = (0..3).map(|i| attempt(i, false)).collect();
        // The lock (until t(62)) expires; three more failures lock the account again.
        commands.extend((100..103).map(|i| attempt(i, false)));
        let (state, events) = run(&commands);
        let locks = types(&events)
            .iter()
            .filter(|t| **t == "user.account_locked")
            .count();
        assert_eq!(locks, 2, "{:?}", types(&events));
        assert!(state.0.unwrap().locked_at(t(150)));
    }

    #[test]
    fn a_success_resets_the_count_and_a_stale_password_proof_fails() {
        let (state, events) = run(&[attempt(0, false), attempt(1, true)]);
        assert_eq!(
            types(&events),
            ["user.login_failed", "user.login_succeeded"]
        );
        let u = state.0.unwrap();
        assert_eq!((u.failed_logins, u.last_session_id), (0, Some(S)));
        // A password verified against a hash that is no longer current is a failure.
        let mut stale = attempt(5, true);
        if let UserAction::Login(a) = &mut stale.action {
            a.password_matched = Some("$pbkdf2-sha256$i=1$BB$BB".into());
        }
        let (_, events) = run(&[stale]);
        assert_eq!(types(&events), ["user.login_failed"]);
    }

    #[test]
    fn wrong_passwords_in_a_password_change_count_toward_the_lockout() {
        let change = |at: i64, ok: bool| UserCommand {
            tenant_id: T,
            tenant_status: Some(TenantStatus::Active),
            action: UserAction::ChangePassword {
                proof: Reauth {
                    now: t(at),
                    matched: ok.then(|| HASH.to_owned()),
                    policy: LockoutPolicy {
                        threshold: 3,
                        duration: Duration::seconds(60),
                    },
                },
                new_hash: "$pbkdf2-sha256$i=1$CC$CC".into(),
            },
        };
        let (state, events) = run(&[change(0, false), change(1, false), change(2, false)]);
        assert_eq!(
            types(&events),
            [
                "user.login_failed",
                "user.login_failed",
                "user.login_failed",
                "user.account_locked"
            ]
        );
        // Locked: even the right password cannot change it now.
        use crate::domain::Aggregate;
        assert_eq!(
            state.decide(&change(3, true)),
            Err(UserError::AccountLocked)
        );
        let (state, events) = run(&[change(0, true)]);
        assert_eq!(
            types(&events),
            ["user.password_set", "user.sessions_revoked"]
        );
        assert_eq!(state.0.unwrap().account_version, 2);
    }

    fn reauth(at: i64, ok: bool) -> Reauth {
        Reauth {
            now: t(at),
            matched: ok.then(|| HASH.to_owned()),
            policy: LockoutPolicy {
                threshold: 3,
                duration: Duration::seconds(60),
            },
        }
    }

    fn user(action: UserAction) -> UserCommand {
        UserCommand {
            tenant_id: T,
            tenant_status: Some(TenantStatus::Active),
            action,
        }
    }

    #[test]
    fn enrolling_a_second_factor_needs_the_password() {
        let enroll = |at: i64, ok: bool| {
            user(UserAction::EnrollMfa {
                proof: reauth(at, ok),
                sealed_secret: "sealed".into(),
            })
        };
        // A bearer token alone (a wrong or no password) enrolls nothing, and counts.
        let (state, events) = run(&[enroll(0, false), enroll(1, false), enroll(2, false)]);
        assert_eq!(
            types(&events),
            [
                "user.login_failed",
                "user.login_failed",
                "user.login_failed",
                "user.account_locked"
            ]
        );
        let u = state.clone().0.unwrap();
        assert_eq!(u.mfa.pending_secret, None);
        use crate::domain::Aggregate;
        assert_eq!(
            state.decide(&enroll(3, true)),
            Err(UserError::AccountLocked)
        );
        let (state, events) = run(&[enroll(0, true)]);
        assert_eq!(types(&events), ["user.mfa_enrolled"]);
        assert_eq!(
            state.0.unwrap().mfa.pending_secret.as_deref(),
            Some("sealed")
        );
    }

    #[test]
    fn an_administrator_resets_mfa_and_every_session_ends() {
        let mfa_on: Vec<UserEvent> = vec![
            UserMfaEnrolled {
                user_id: U,
                tenant_id: T,
                sealed_secret: "sealed".into(),
            }
            .into(),
            UserMfaActivated {
                user_id: U,
                tenant_id: T,
                recovery_code_hashes: vec!["r".into()],
                totp_step: 1,
            }
            .into(),
        ];
        let reset = |authority: Authority| {
            user(UserAction::ResetMfa {
                authority,
                holds: ["iam.users.write", "iam.roles.write"]
                    .map(String::from)
                    .into(),
            })
        };
        // A helpdesk holding less than the user cannot strip its second factor.
        given::<User>(history().into_iter().chain(mfa_on.clone()))
            .when(reset(Authority::holding(["iam.users.write"])))
            .then_error(UserError::Escalation(
                crate::domain::delegation::Escalation {
                    what: format!("resetting the second factor of user {U}"),
                    missing: vec!["iam.roles.write".into()],
                },
            ));
        let state = given::<User>(history().into_iter().chain(mfa_on))
            .when(reset(Authority::holding([
                "iam.users.write",
                "iam.roles.write",
            ])))
            .then([UserMfaReset {
                user_id: U,
                tenant_id: T,
                account_version: 2,
            }
            .into()]);
        let u = state.0.unwrap();
        assert!(!u.mfa_active() && u.mfa.recovery_codes.is_empty());
        assert_eq!(u.account_version, 2);
        // Nothing to reset: nothing happens.
        given::<User>(history())
            .when(reset(Authority::Platform))
            .then([]);
        // A platform administrator's factor is reset only by a platform administrator.
        let platform: UserEvent = UserPlatformAccessGranted {
            user_id: U,
            tenant_id: T,
            permissions: vec!["iam.*".into()],
        }
        .into();
        given::<User>(history().into_iter().chain([platform]))
            .when(reset(Authority::holding([
                "iam.users.write",
                "iam.roles.write",
            ])))
            .then_error(UserError::Escalation(
                crate::domain::delegation::Escalation {
                    what: format!("resetting the second factor of user {U}"),
                    missing: vec!["iam.*".into()],
                },
            ));
    }
}
