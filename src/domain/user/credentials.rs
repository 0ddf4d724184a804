//! The credential half of the `user` aggregate: login attempts with lockout, the TOTP second
//! factor and its recovery codes, sessions ended all at once, password changes.
//!
//! Everything expensive or keyed (PBKDF2, unsealing the TOTP secret) happens before the
//! decision, against the state the caller read; the command says what was verified against
//! what, and the decision accepts it only if that is still the current credential. A
//! concurrent password change or MFA reset therefore turns a stale "verified" into a failure.

use charter_events::user::{
    LoginFailure, SecondFactor, UserAccountLocked, UserAccountUnlocked, UserEvent, UserLoginFailed,
    UserLoginSucceeded, UserMfaActivated, UserMfaDisabled, UserMfaEnrolled, UserPasswordSet,
    UserPlatformAccessGranted, UserSessionsRevoked,
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
        let (user_id, tenant_id) = (self.id, self.tenant_id);
        // An expired lock starts the count again.
        let previous = if self.locked_until.is_some() && !self.locked_at(attempt.now) {
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
        if counts && consecutive_failures >= attempt.policy.threshold {
            events.push(
                UserAccountLocked {
                    user_id,
                    tenant_id,
                    locked_until: attempt.now + attempt.policy.duration,
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
            return self.failed(LoginFailure::Locked, attempt);
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

    /// A password change, proven with the current password; it ends every session.
    pub fn decide_password_change(
        &self,
        old_matched: Option<&str>,
        new_hash: &str,
    ) -> Result<Vec<UserEvent>, UserError> {
        if old_matched.is_none() || old_matched != self.password_hash.as_deref() {
            return Err(UserError::WrongPassword);
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

    pub fn decide_mfa_enroll(&self, sealed_secret: &str) -> Result<Vec<UserEvent>, UserError> {
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
    pub fn decide_mfa_disable(
        &self,
        password_matched: Option<&str>,
    ) -> Result<Vec<UserEvent>, UserError> {
        if password_matched.is_none() || password_matched != self.password_hash.as_deref() {
            return Err(UserError::WrongPassword);
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
            UserEvent::LoginFailed(e) => self.failed_logins = e.consecutive_failures,
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
            UserEvent::PlatformAccessGranted(e) => {
                self.platform_permissions = e.permissions.clone()
            }
            _ => return false,
        }
        true
    }
}
