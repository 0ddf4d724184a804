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
    }
}

impl crate::Scoped for UserEvent {
    fn tenant_id(&self) -> Uuid {
        match self {
            Self::Created(e) => e.tenant_id,
            Self::EmailChanged(e) => e.tenant_id,
            Self::DisplayNameChanged(e) => e.tenant_id,
            Self::PasswordSet(e) => e.tenant_id,
            Self::Disabled(e) => e.tenant_id,
            Self::Enabled(e) => e.tenant_id,
            Self::Deleted(e) => e.tenant_id,
        }
    }
}

impl UserEvent {
    pub fn user_id(&self) -> Uuid {
        match self {
            Self::Created(e) => e.user_id,
            Self::EmailChanged(e) => e.user_id,
            Self::DisplayNameChanged(e) => e.user_id,
            Self::PasswordSet(e) => e.user_id,
            Self::Disabled(e) => e.user_id,
            Self::Enabled(e) => e.user_id,
            Self::Deleted(e) => e.user_id,
        }
    }
}
