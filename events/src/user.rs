//! Events of the `user` aggregate: a human principal of one tenant.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A user was created. Usernames and emails are unique within the tenant, ignoring case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserCreated {
    pub user_id: Uuid,
    pub tenant_id: Uuid,
    pub username: String,
    pub email: String,
    pub display_name: Option<String>,
    /// Whether a password was set at creation (the hash itself is never published).
    pub has_password: bool,
}

/// A user's email address changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserEmailChanged {
    pub user_id: Uuid,
    pub tenant_id: Uuid,
    pub email: String,
}

/// A user's display name changed (or was cleared).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserDisplayNameChanged {
    pub user_id: Uuid,
    pub tenant_id: Uuid,
    pub display_name: Option<String>,
}

/// A user's password hash was set. Internal: kept in the log so the log rebuilds every
/// credential, but never written to the outbox, so it never reaches Kafka.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPasswordSet {
    pub user_id: Uuid,
    pub tenant_id: Uuid,
    /// PHC string: `$pbkdf2-sha256$i=<iterations>$<salt>$<hash>`.
    pub password_hash: String,
}

/// A user was disabled: it keeps its memberships but has no entitlements.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserDisabled {
    pub user_id: Uuid,
    pub tenant_id: Uuid,
}

/// A disabled user was enabled again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserEnabled {
    pub user_id: Uuid,
    pub tenant_id: Uuid,
}

/// A user was deleted; its username and email become free again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserDeleted {
    pub user_id: Uuid,
    pub tenant_id: Uuid,
}

/// Why a login attempt failed. Recorded for auditors; never revealed to the caller, who sees
/// one uniform 401 whatever the reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LoginFailure {
    BadPassword,
    BadSecondFactor,
    MissingSecondFactor,
    Locked,
    Disabled,
}

/// How the second factor of a login was satisfied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SecondFactor {
    None,
    Totp,
    RecoveryCode,
}

/// A login succeeded and started session `session_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserLoginSucceeded {
    pub user_id: Uuid,
    pub tenant_id: Uuid,
    pub session_id: Uuid,
    pub second_factor: SecondFactor,
    /// The TOTP time step consumed (a code is accepted once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totp_step: Option<u64>,
    /// The recovery code consumed, by its index in the activation's list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_code: Option<u32>,
}

/// A login attempt was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserLoginFailed {
    pub user_id: Uuid,
    pub tenant_id: Uuid,
    pub reason: LoginFailure,
    /// Consecutive failures so far (reset by a success or an unlock).
    pub consecutive_failures: u32,
}

/// The account was locked after too many consecutive failures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserAccountLocked {
    pub user_id: Uuid,
    pub tenant_id: Uuid,
    pub locked_until: chrono::DateTime<chrono::Utc>,
}

/// An administrator unlocked the account before its lock expired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserAccountUnlocked {
    pub user_id: Uuid,
    pub tenant_id: Uuid,
}

/// Every session and access token of the user ended: `account_version` is now this value
/// (logout-all, a password change).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserSessionsRevoked {
    pub user_id: Uuid,
    pub tenant_id: Uuid,
    pub account_version: i64,
}

/// A TOTP secret was generated, not yet active. Internal: the secret is sealed with the
/// master key, but it still never leaves the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserMfaEnrolled {
    pub user_id: Uuid,
    pub tenant_id: Uuid,
    /// The base32 secret, AES-256-GCM sealed with the master key (base64url).
    pub sealed_secret: String,
}

/// MFA was turned on. Internal: carries the SHA-256 hashes of the ten recovery codes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserMfaActivated {
    pub user_id: Uuid,
    pub tenant_id: Uuid,
    pub recovery_code_hashes: Vec<String>,
    /// The time step of the activation code (it cannot be used again to log in).
    pub totp_step: u64,
}

/// MFA was turned off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserMfaDisabled {
    pub user_id: Uuid,
    pub tenant_id: Uuid,
}

/// The user was granted permissions in every tenant (the bootstrap administrator).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPlatformAccessGranted {
    pub user_id: Uuid,
    pub tenant_id: Uuid,
    /// Permission patterns, e.g. `iam.*`.
    pub permissions: Vec<String>,
}

crate::event_family! {
    /// Every event of the `user` aggregate.
    pub enum UserEvent for "user" {
        Created(UserCreated) = "user.created" v 1,
        EmailChanged(UserEmailChanged) = "user.email_changed" v 1,
        DisplayNameChanged(UserDisplayNameChanged) = "user.display_name_changed" v 1,
        PasswordSet(UserPasswordSet) = "user.password_set" v 1 internal,
        Disabled(UserDisabled) = "user.disabled" v 1,
        Enabled(UserEnabled) = "user.enabled" v 1,
        Deleted(UserDeleted) = "user.deleted" v 1,
        LoginSucceeded(UserLoginSucceeded) = "user.login_succeeded" v 1,
        LoginFailed(UserLoginFailed) = "user.login_failed" v 1,
        AccountLocked(UserAccountLocked) = "user.account_locked" v 1,
        AccountUnlocked(UserAccountUnlocked) = "user.account_unlocked" v 1,
        SessionsRevoked(UserSessionsRevoked) = "user.sessions_revoked" v 1,
        MfaEnrolled(UserMfaEnrolled) = "user.mfa_enrolled" v 1 internal,
        MfaActivated(UserMfaActivated) = "user.mfa_activated" v 1 internal,
        MfaDisabled(UserMfaDisabled) = "user.mfa_disabled" v 1,
        PlatformAccessGranted(UserPlatformAccessGranted) = "user.platform_access_granted" v 1,
    }
}

impl crate::Scoped for UserEvent {
    fn tenant_id(&self) -> Uuid {
        self.ids().1
    }
}

impl UserEvent {
    pub fn user_id(&self) -> Uuid {
        self.ids().0
    }

    /// `(user_id, tenant_id)`, which every user event carries.
    fn ids(&self) -> (Uuid, Uuid) {
        macro_rules! ids {
            ($($v:ident),+) => { match self { $(Self::$v(e) => (e.user_id, e.tenant_id)),+ } };
        }
        ids!(
            Created,
            EmailChanged,
            DisplayNameChanged,
            PasswordSet,
            Disabled,
            Enabled,
            Deleted,
            LoginSucceeded,
            LoginFailed,
            AccountLocked,
            AccountUnlocked,
            SessionsRevoked,
            MfaEnrolled,
            MfaActivated,
            MfaDisabled,
            PlatformAccessGranted
        )
    }
}
