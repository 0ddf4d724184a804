//! Users (profile and credentials) and sessions.

use charter_events::session::{
    SessionEndReason, SessionEnded, SessionEvent, SessionRefreshed, SessionStarted,
};
use charter_events::user::*;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Person;

pub fn user_created(
    user_id: Uuid,
    tenant_id: Uuid,
    username: &str,
    email: &str,
    person: Option<Person>,
    has_password: bool,
) -> UserEvent {
    UserCreated {
        user_id,
        tenant_id,
        username: username.into(),
        email: email.into(),
        display_name: person.map(|p| p.display_name()),
        given_name: person.map(|p| p.given.to_owned()),
        family_name: person.map(|p| p.family.to_owned()),
        has_password,
    }
    .into()
}

pub fn user_password_set(user_id: Uuid, tenant_id: Uuid, password_hash: &str) -> UserEvent {
    UserPasswordSet {
        user_id,
        tenant_id,
        password_hash: password_hash.into(),
    }
    .into()
}

pub fn user_email_changed(user_id: Uuid, tenant_id: Uuid, email: &str) -> UserEvent {
    UserEmailChanged {
        user_id,
        tenant_id,
        email: email.into(),
    }
    .into()
}

pub fn user_display_name_changed(
    user_id: Uuid,
    tenant_id: Uuid,
    display_name: Option<String>,
) -> UserEvent {
    UserDisplayNameChanged {
        user_id,
        tenant_id,
        display_name,
    }
    .into()
}

pub fn user_disabled(user_id: Uuid, tenant_id: Uuid) -> UserEvent {
    UserDisabled { user_id, tenant_id }.into()
}

pub fn user_enabled(user_id: Uuid, tenant_id: Uuid) -> UserEvent {
    UserEnabled { user_id, tenant_id }.into()
}

pub fn user_deleted(user_id: Uuid, tenant_id: Uuid) -> UserEvent {
    UserDeleted { user_id, tenant_id }.into()
}

pub fn user_login_succeeded(
    user_id: Uuid,
    tenant_id: Uuid,
    session_id: Uuid,
    totp_step: Option<u64>,
) -> UserEvent {
    let second_factor = if totp_step.is_some() {
        SecondFactor::Totp
    } else {
        SecondFactor::None
    };
    UserLoginSucceeded {
        user_id,
        tenant_id,
        session_id,
        second_factor,
        totp_step,
        recovery_code: None,
    }
    .into()
}

pub fn user_login_failed(
    user_id: Uuid,
    tenant_id: Uuid,
    reason: LoginFailure,
    consecutive_failures: u32,
) -> UserEvent {
    UserLoginFailed {
        user_id,
        tenant_id,
        reason,
        consecutive_failures,
    }
    .into()
}

pub fn user_account_locked(
    user_id: Uuid,
    tenant_id: Uuid,
    locked_until: DateTime<Utc>,
) -> UserEvent {
    UserAccountLocked {
        user_id,
        tenant_id,
        locked_until,
    }
    .into()
}

pub fn user_account_unlocked(user_id: Uuid, tenant_id: Uuid) -> UserEvent {
    UserAccountUnlocked { user_id, tenant_id }.into()
}

pub fn user_sessions_revoked(user_id: Uuid, tenant_id: Uuid, account_version: i64) -> UserEvent {
    UserSessionsRevoked {
        user_id,
        tenant_id,
        account_version,
    }
    .into()
}

pub fn user_mfa_enrolled(user_id: Uuid, tenant_id: Uuid, sealed_secret: &str) -> UserEvent {
    UserMfaEnrolled {
        user_id,
        tenant_id,
        sealed_secret: sealed_secret.into(),
    }
    .into()
}

pub fn user_mfa_activated(
    user_id: Uuid,
    tenant_id: Uuid,
    recovery_code_hashes: Vec<String>,
    totp_step: u64,
) -> UserEvent {
    UserMfaActivated {
        user_id,
        tenant_id,
        recovery_code_hashes,
        totp_step,
    }
    .into()
}

pub fn user_mfa_disabled(user_id: Uuid, tenant_id: Uuid) -> UserEvent {
    UserMfaDisabled { user_id, tenant_id }.into()
}

pub fn user_platform_access_granted(
    user_id: Uuid,
    tenant_id: Uuid,
    permissions: Vec<String>,
) -> UserEvent {
    UserPlatformAccessGranted {
        user_id,
        tenant_id,
        permissions,
    }
    .into()
}

pub fn session_started(
    session_id: Uuid,
    tenant_id: Uuid,
    user_id: Uuid,
    workspace_id: Option<Uuid>,
    account_version: i64,
    refresh_token_hash: String,
    expires_at: DateTime<Utc>,
) -> SessionEvent {
    SessionStarted {
        session_id,
        tenant_id,
        user_id,
        workspace_id,
        account_version,
        refresh_token_hash,
        expires_at,
    }
    .into()
}

pub fn session_refreshed(
    session_id: Uuid,
    tenant_id: Uuid,
    generation: u32,
    refresh_token_hash: String,
) -> SessionEvent {
    SessionRefreshed {
        session_id,
        tenant_id,
        generation,
        refresh_token_hash,
    }
    .into()
}

pub fn session_ended(
    session_id: Uuid,
    tenant_id: Uuid,
    user_id: Uuid,
    reason: SessionEndReason,
) -> SessionEvent {
    SessionEnded {
        session_id,
        tenant_id,
        user_id,
        reason,
    }
    .into()
}
