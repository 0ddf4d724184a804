//! Events of the `user` aggregate: a human principal of one tenant.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A user was created. Usernames and emails are unique within the tenant, ignoring case.
///
/// Version 2 records the person's given and family names apart from the display name, as
/// OpenID Connect's `given_name`/`family_name` and SCIM's `name.givenName`/`name.familyName`
/// need them, and neither can be recovered reliably from a free-form display name. Version 1
/// rows stay in the log; they upcast with both names unknown (see [`UserCreatedV1`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserCreated {
    pub user_id: Uuid,
    pub tenant_id: Uuid,
    pub username: String,
    pub email: String,
    pub display_name: Option<String>,
    /// Given (first) name; `null` when not given. Required (if null): a version 1 row
    /// never parses as version 2.
    #[serde(deserialize_with = "Option::deserialize")]
    #[schemars(schema_with = "required_nullable_string")]
    pub given_name: Option<String>,
    /// Family (last) name; `null` when not given.
    #[serde(deserialize_with = "Option::deserialize")]
    #[schemars(schema_with = "required_nullable_string")]
    pub family_name: Option<String>,
    /// Whether a password was set at creation (the hash itself is never published).
    pub has_password: bool,
}

/// A name that must be present, possibly `null`.
fn required_nullable_string(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": ["string", "null"]})
}

// `user.created` version 1, as written before version 2: a display name only. Its schema
// (title and description included) is the v1 contract and stays as it was published.
/// A user was created. Usernames and emails are unique within the tenant, ignoring case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "UserCreated")]
pub struct UserCreatedV1 {
    pub user_id: Uuid,
    pub tenant_id: Uuid,
    pub username: String,
    pub email: String,
    pub display_name: Option<String>,
    /// Whether a password was set at creation (the hash itself is never published).
    pub has_password: bool,
}

/// The upcaster: a version 1 row reads as version 2 with the structured names unknown. It
/// does not split the display name: "Mary Ann de la Cruz" has no reliable split, and an
/// invented family name would be worse than none.
impl From<UserCreatedV1> for UserEvent {
    fn from(v1: UserCreatedV1) -> Self {
        UserEvent::Created(UserCreated {
            user_id: v1.user_id,
            tenant_id: v1.tenant_id,
            username: v1.username,
            email: v1.email,
            display_name: v1.display_name,
            given_name: None,
            family_name: None,
            has_password: v1.has_password,
        })
    }
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

/// An administrator removed the user's second factor (a lost authenticator), and with it
/// every session and access token: `account_version` is now this value. The user can enroll
/// again after logging in with the password alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserMfaReset {
    pub user_id: Uuid,
    pub tenant_id: Uuid,
    pub account_version: i64,
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
        Created(UserCreated) = "user.created" v 2,
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
        MfaReset(UserMfaReset) = "user.mfa_reset" v 1,
        PlatformAccessGranted(UserPlatformAccessGranted) = "user.platform_access_granted" v 1,
    }
    upcast {
        "user.created" v 1 => UserCreatedV1,
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
            MfaReset,
            PlatformAccessGranted
        )
    }
}

#[cfg(test)]
mod upcasting {
    use super::*;
    use crate::catalog::{DecodeError, DomainEvent};
    use serde_json::json;

    fn v1_row() -> serde_json::Value {
        json!({
            "user_id": "01890000-0000-7000-8000-000000000001",
            "tenant_id": "01890000-0000-7000-8000-000000000002",
            "username": "ada",
            "email": "ada@example.com",
            "display_name": "Ada Lovelace",
            "has_password": true
        })
    }

    #[test]
    fn a_v1_row_decodes_as_v2_with_the_names_unknown() {
        let event = UserEvent::decode("user.created", 1, v1_row()).unwrap();
        let UserEvent::Created(created) = &event else {
            panic!("{event:?}")
        };
        assert_eq!(created.display_name.as_deref(), Some("Ada Lovelace"));
        assert_eq!((&created.given_name, &created.family_name), (&None, &None));
        assert_eq!(
            (event.event_type(), event.schema_version()),
            ("user.created", 2)
        );
        // Written again, it is a v2 event: the upcast never reaches the log by itself.
        let data = event.to_data();
        assert!(data["given_name"].is_null() && data.get("given_name").is_some());
        assert_eq!(UserEvent::decode("user.created", 2, data).unwrap(), event);
    }

    #[test]
    fn each_version_reads_only_its_own_shape() {
        let err = UserEvent::decode("user.created", 2, v1_row()).unwrap_err();
        assert!(
            matches!(
                err,
                DecodeError::InvalidData {
                    schema_version: 2,
                    ..
                }
            ),
            "{err}"
        );
        let mut v2 = v1_row();
        v2["given_name"] = json!("Ada");
        v2["family_name"] = json!("Lovelace");
        let err = UserEvent::decode("user.created", 1, v2.clone()).unwrap_err();
        assert!(
            matches!(
                err,
                DecodeError::InvalidData {
                    schema_version: 1,
                    ..
                }
            ),
            "{err}"
        );
        assert!(UserEvent::decode("user.created", 2, v2.clone()).is_ok());
        let err = UserEvent::decode("user.created", 3, v2).unwrap_err();
        assert!(
            matches!(
                err,
                DecodeError::UnknownType {
                    schema_version: 3,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn both_versions_have_a_schema_and_only_v2_is_current() {
        let versions: Vec<(u32, bool)> = UserEvent::schemas()
            .iter()
            .filter(|s| s.event_type == "user.created")
            .map(|s| (s.schema_version, s.current))
            .collect();
        assert_eq!(versions, [(2, true), (1, false)]);
    }
}
