//! The `user` aggregate: a human principal of one tenant. Its profile and status live here;
//! its credentials (logins, lockout, MFA, sessions) in [`credentials`].

pub mod credentials;

use charter_events::user::{
    UserCreated, UserDeleted, UserDisabled, UserDisplayNameChanged, UserEmailChanged, UserEnabled,
    UserEvent, UserPasswordSet,
};
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

pub use credentials::{LockoutPolicy, LoginAttempt, Mfa, Reauth, SecondFactorProof};

use std::collections::BTreeSet;

use super::delegation::{Authority, Escalation};
use super::tenant::{require_active, TenantGate, TenantStatus};
use super::{Aggregate, Rejection, RejectionKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UserStatus {
    Active,
    Disabled,
    Deleted,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserState {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub username: String,
    pub email: String,
    pub display_name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub password_hash: Option<String>,
    pub status: UserStatus,
    /// Bumped whenever every session of the user must end (logout-all, password change).
    pub account_version: i64,
    /// Consecutive failed logins since the last success or unlock.
    pub failed_logins: u32,
    pub locked_until: Option<DateTime<Utc>>,
    pub mfa: Mfa,
    /// The session the newest successful login started.
    pub last_session_id: Option<Uuid>,
    /// Permission patterns granted in every tenant (the bootstrap administrator's `iam.*`).
    pub platform_permissions: Vec<String>,
}

/// The write model of one user stream. `None` until `user.created`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct User(pub Option<UserState>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserCommand {
    /// The tenant named in the request path.
    pub tenant_id: Uuid,
    /// That tenant's status under its shared lock; `None` when it does not exist.
    pub tenant_status: Option<TenantStatus>,
    pub action: UserAction,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserAction {
    Create {
        user_id: Uuid,
        username: String,
        email: String,
        display_name: Option<String>,
        given_name: Option<String>,
        family_name: Option<String>,
        /// Already hashed: plain passwords never reach the domain.
        password_hash: Option<String>,
    },
    Update {
        email: Option<String>,
        /// `Some(None)` clears the display name.
        display_name: Option<Option<String>>,
    },
    Disable,
    Enable,
    Delete,
    Login(LoginAttempt),
    Unlock {
        now: DateTime<Utc>,
    },
    /// Logout-all.
    RevokeSessions,
    ChangePassword {
        proof: Reauth,
        new_hash: String,
    },
    EnrollMfa {
        proof: Reauth,
        sealed_secret: String,
    },
    ActivateMfa {
        proof: SecondFactorProof,
        recovery_code_hashes: Vec<String>,
    },
    DisableMfa {
        proof: Reauth,
    },
    /// An administrator removes the second factor (and ends every session). `holds` is
    /// every permission the user holds, in any scope: resetting the second factor of an
    /// account that holds more than the caller is the first half of taking it over, so the
    /// caller must hold all of it (platform grants included).
    ResetMfa {
        authority: Authority,
        holds: BTreeSet<String>,
    },
    GrantPlatformAccess {
        permissions: Vec<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    #[error("user not found")]
    NotFound,
    #[error("user already exists")]
    AlreadyExists,
    #[error("tenant not found")]
    TenantNotFound,
    #[error("tenant is blocked")]
    TenantBlocked,
    #[error("the account is locked after too many failed attempts")]
    AccountLocked,
    #[error("multi-factor authentication is already active")]
    MfaAlreadyActive,
    #[error("no multi-factor enrollment is pending; enroll first")]
    MfaNotEnrolled,
    #[error("the code is wrong, expired or already used")]
    InvalidCode,
    #[error(transparent)]
    Escalation(#[from] Escalation),
}

impl From<UserError> for Rejection {
    fn from(e: UserError) -> Self {
        use RejectionKind::*;
        let (kind, code) = match &e {
            UserError::NotFound | UserError::TenantNotFound => (NotFound, "not-found"),
            UserError::AlreadyExists => (Conflict, "already-exists"),
            UserError::TenantBlocked => (Conflict, "tenant-blocked"),
            UserError::AccountLocked => (Conflict, "account-locked"),
            UserError::MfaAlreadyActive => (Conflict, "mfa-already-active"),
            UserError::MfaNotEnrolled => (Conflict, "mfa-not-enrolled"),
            UserError::InvalidCode => (Invalid, "invalid-code"),
            UserError::Escalation(e) => return e.clone().into(),
        };
        Rejection::new(kind, code, e)
    }
}

impl Aggregate for User {
    type Command = UserCommand;
    type Event = UserEvent;
    type Error = UserError;

    fn apply(self, event: &UserEvent) -> Self {
        let Some(mut u) = self.0 else {
            return match event {
                UserEvent::Created(e) => User(Some(UserState {
                    id: e.user_id,
                    tenant_id: e.tenant_id,
                    username: e.username.clone(),
                    email: e.email.clone(),
                    display_name: e.display_name.clone(),
                    given_name: e.given_name.clone(),
                    family_name: e.family_name.clone(),
                    password_hash: None,
                    status: UserStatus::Active,
                    account_version: 1,
                    failed_logins: 0,
                    locked_until: None,
                    mfa: Mfa::default(),
                    last_session_id: None,
                    platform_permissions: vec![],
                })),
                _ => User(None),
            };
        };
        match event {
            UserEvent::Created(_) => {}
            UserEvent::EmailChanged(e) => u.email = e.email.clone(),
            UserEvent::DisplayNameChanged(e) => u.display_name = e.display_name.clone(),
            UserEvent::PasswordSet(e) => u.password_hash = Some(e.password_hash.clone()),
            UserEvent::Disabled(_) => u.status = UserStatus::Disabled,
            UserEvent::Enabled(_) => u.status = UserStatus::Active,
            UserEvent::Deleted(_) => u.status = UserStatus::Deleted,
            other => {
                u.apply_credentials(other);
            }
        }
        User(Some(u))
    }

    fn decide(&self, command: &UserCommand) -> Result<Vec<UserEvent>, UserError> {
        require_active(command.tenant_status).map_err(|gate| match gate {
            TenantGate::NotFound => UserError::TenantNotFound,
            TenantGate::Blocked => UserError::TenantBlocked,
        })?;
        let tenant_id = command.tenant_id;
        if let UserAction::Create {
            user_id,
            username,
            email,
            display_name,
            given_name,
            family_name,
            password_hash,
        } = &command.action
        {
            if self.0.is_some() {
                return Err(UserError::AlreadyExists);
            }
            let mut events = vec![UserEvent::from(UserCreated {
                user_id: *user_id,
                tenant_id,
                username: username.clone(),
                email: email.clone(),
                display_name: display_name.clone(),
                given_name: given_name.clone(),
                family_name: family_name.clone(),
                has_password: password_hash.is_some(),
            })];
            if let Some(hash) = password_hash {
                events.push(
                    UserPasswordSet {
                        user_id: *user_id,
                        tenant_id,
                        password_hash: hash.clone(),
                    }
                    .into(),
                );
            }
            return Ok(events);
        }
        // A user of another tenant is indistinguishable from a missing one.
        let u = match &self.0 {
            Some(u) if u.status != UserStatus::Deleted && u.tenant_id == tenant_id => u,
            _ => return Err(UserError::NotFound),
        };
        let user_id = u.id;
        Ok(match &command.action {
            UserAction::Create { .. } => unreachable!("handled above"),
            UserAction::Update {
                email,
                display_name,
            } => {
                let mut events = Vec::new();
                if let Some(email) = email.as_ref().filter(|e| **e != u.email) {
                    events.push(
                        UserEmailChanged {
                            user_id,
                            tenant_id,
                            email: email.clone(),
                        }
                        .into(),
                    );
                }
                if let Some(name) = display_name.as_ref().filter(|n| **n != u.display_name) {
                    events.push(
                        UserDisplayNameChanged {
                            user_id,
                            tenant_id,
                            display_name: name.clone(),
                        }
                        .into(),
                    );
                }
                events
            }
            UserAction::Disable if u.status == UserStatus::Disabled => vec![],
            UserAction::Disable => vec![UserDisabled { user_id, tenant_id }.into()],
            UserAction::Enable if u.status == UserStatus::Active => vec![],
            UserAction::Enable => vec![UserEnabled { user_id, tenant_id }.into()],
            UserAction::Delete => vec![UserDeleted { user_id, tenant_id }.into()],
            UserAction::Login(attempt) => u.decide_login(attempt),
            UserAction::Unlock { now } => u.decide_unlock(*now),
            UserAction::RevokeSessions => vec![u.revoke_sessions()],
            UserAction::ChangePassword { proof, new_hash } => {
                u.decide_password_change(proof, new_hash)?
            }
            UserAction::EnrollMfa {
                proof,
                sealed_secret,
            } => u.decide_mfa_enroll(proof, sealed_secret)?,
            UserAction::ActivateMfa {
                proof,
                recovery_code_hashes,
            } => u.decide_mfa_activate(proof, recovery_code_hashes)?,
            UserAction::DisableMfa { proof } => u.decide_mfa_disable(proof)?,
            UserAction::ResetMfa { authority, holds } => {
                let platform = u.platform_permissions.iter();
                authority.may_hand_out(
                    || format!("resetting the second factor of user {user_id}"),
                    holds.iter().chain(platform),
                )?;
                u.decide_mfa_reset()
            }
            UserAction::GrantPlatformAccess { permissions } => {
                u.decide_platform_access(permissions)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testing::given;

    const T: Uuid = Uuid::from_u128(1);
    const U: Uuid = Uuid::from_u128(7);

    fn cmd(action: UserAction) -> UserCommand {
        UserCommand {
            tenant_id: T,
            tenant_status: Some(TenantStatus::Active),
            action,
        }
    }

    fn create(password_hash: Option<&str>) -> UserAction {
        UserAction::Create {
            user_id: U,
            username: "alice".into(),
            email: "alice@example.com".into(),
            display_name: None,
            given_name: Some("Alice".into()),
            family_name: None,
            password_hash: password_hash.map(str::to_owned),
        }
    }

    fn created(has_password: bool) -> UserEvent {
        UserCreated {
            user_id: U,
            tenant_id: T,
            username: "alice".into(),
            email: "alice@example.com".into(),
            display_name: None,
            given_name: Some("Alice".into()),
            family_name: None,
            has_password,
        }
        .into()
    }

    #[test]
    fn creates_a_user_and_keeps_the_hash_in_an_internal_event() {
        let state = given::<User>([])
            .when(cmd(create(Some("$pbkdf2-sha256$i=1$AA$AA"))))
            .then([
                created(true),
                UserPasswordSet {
                    user_id: U,
                    tenant_id: T,
                    password_hash: "$pbkdf2-sha256$i=1$AA$AA".into(),
                }
                .into(),
            ]);
        let u = state.0.unwrap();
        assert_eq!(u.account_version, 1);
        assert!(u.password_hash.is_some());
        use charter_events::DomainEvent;
        assert!(created(true).published());
        assert!(!UserEvent::from(UserPasswordSet {
            user_id: U,
            tenant_id: T,
            password_hash: "x".into()
        })
        .published());
    }

    #[test]
    fn updates_only_what_changed() {
        given::<User>([created(false)])
            .when(cmd(UserAction::Update {
                email: Some("alice@example.com".into()),
                display_name: Some(Some("Alice".into())),
            }))
            .then([UserDisplayNameChanged {
                user_id: U,
                tenant_id: T,
                display_name: Some("Alice".into()),
            }
            .into()]);
    }

    #[test]
    fn disables_and_enables_idempotently() {
        let disabled: UserEvent = UserDisabled {
            user_id: U,
            tenant_id: T,
        }
        .into();
        given::<User>([created(false)])
            .when(cmd(UserAction::Disable))
            .then([disabled.clone()]);
        given::<User>([created(false), disabled.clone()])
            .when(cmd(UserAction::Disable))
            .then([]);
        given::<User>([created(false), disabled])
            .when(cmd(UserAction::Enable))
            .then([UserEnabled {
                user_id: U,
                tenant_id: T,
            }
            .into()]);
    }

    #[test]
    fn a_deleted_user_or_one_of_another_tenant_is_not_found() {
        let deleted: UserEvent = UserDeleted {
            user_id: U,
            tenant_id: T,
        }
        .into();
        given::<User>([created(false), deleted])
            .when(cmd(UserAction::Enable))
            .then_error(UserError::NotFound);
        given::<User>([created(false)])
            .when(UserCommand {
                tenant_id: Uuid::from_u128(2),
                tenant_status: Some(TenantStatus::Active),
                action: UserAction::Disable,
            })
            .then_error(UserError::NotFound);
    }

    #[test]
    fn nothing_changes_in_a_blocked_tenant() {
        given::<User>([])
            .when(UserCommand {
                tenant_id: T,
                tenant_status: Some(TenantStatus::Blocked),
                action: create(None),
            })
            .then_error(UserError::TenantBlocked);
    }
}
