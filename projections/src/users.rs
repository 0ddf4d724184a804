//! Read model `users`: every user of every tenant, without credentials. Owns `users`.

use charter_events::user::UserEvent;
use charter_events::RecordedEvent;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde::Serialize;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::projection::{decode_own, Param, ProjectionError, Write, Writes};

/// The read model `users` (see the module's documentation).
pub struct Users;

impl Writes for Users {
    const NAME: &'static str = "users";
    const TABLES: &'static [&'static str] = &["users"];

    /// One write per user event, touching exactly that user's row.
    fn writes(&self, e: &RecordedEvent) -> Result<Vec<Write>, ProjectionError> {
        let Some(event) = decode_own::<UserEvent>(e)? else {
            return Ok(vec![]);
        };
        let (id, v, at) = (event.user_id(), e.stream_version, e.recorded_at);
        let set = |sql: &'static str, value: Option<Param>| {
            let mut params: Vec<Param> = vec![Box::new(id), Box::new(v), Box::new(at)];
            params.extend(value);
            Write::one(sql, params)
        };
        let write = match event {
            UserEvent::Created(c) => Write::one(
                "INSERT INTO users (user_id, tenant_id, username, email, display_name, given_name, \
                 family_name, status, has_password, account_version, version, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 'active', $8, 1, $9, $10, $10)",
                vec![
                    Box::new(c.user_id),
                    Box::new(c.tenant_id),
                    Box::new(c.username),
                    Box::new(c.email),
                    Box::new(c.display_name),
                    Box::new(c.given_name),
                    Box::new(c.family_name),
                    Box::new(c.has_password),
                    Box::new(v),
                    Box::new(at),
                ],
            ),
            UserEvent::EmailChanged(c) => set(
                "UPDATE users SET email = $4, version = $2, updated_at = $3 WHERE user_id = $1",
                Some(Box::new(c.email)),
            ),
            UserEvent::DisplayNameChanged(c) => set(
                "UPDATE users SET display_name = $4, version = $2, updated_at = $3 WHERE user_id = $1",
                Some(Box::new(c.display_name)),
            ),
            // The hash stays out of read models; only the fact that there is one shows.
            UserEvent::PasswordSet(_) => set(
                "UPDATE users SET has_password = true, version = $2, updated_at = $3 WHERE user_id = $1",
                None,
            ),
            UserEvent::Disabled(_) => set(STATUS, Some(Box::new("disabled"))),
            UserEvent::Enabled(_) => set(STATUS, Some(Box::new("active"))),
            UserEvent::Deleted(_) => set(STATUS, Some(Box::new("deleted"))),
            UserEvent::SessionsRevoked(c) => set(
                "UPDATE users SET account_version = $4, version = $2, updated_at = $3 WHERE user_id = $1",
                Some(Box::new(c.account_version)),
            ),
            UserEvent::AccountLocked(c) => set(
                "UPDATE users SET locked_until = $4, version = $2, updated_at = $3 WHERE user_id = $1",
                Some(Box::new(c.locked_until)),
            ),
            // A success or an unlock ends a lock early.
            UserEvent::AccountUnlocked(_) | UserEvent::LoginSucceeded(_) => set(
                "UPDATE users SET locked_until = NULL, version = $2, updated_at = $3 WHERE user_id = $1",
                None,
            ),
            UserEvent::MfaActivated(_) => set(MFA, Some(Box::new(true))),
            UserEvent::MfaDisabled(_) => set(MFA, Some(Box::new(false))),
            UserEvent::MfaReset(c) => set(
                "UPDATE users SET mfa_enabled = false, account_version = $4, version = $2, \
                 updated_at = $3 WHERE user_id = $1",
                Some(Box::new(c.account_version)),
            ),
            UserEvent::LoginFailed(_) | UserEvent::MfaEnrolled(_) | UserEvent::PlatformAccessGranted(_) => {
                set("UPDATE users SET version = $2, updated_at = $3 WHERE user_id = $1", None)
            }
        };
        Ok(vec![write])
    }
}

const STATUS: &str =
    "UPDATE users SET status = $4, version = $2, updated_at = $3 WHERE user_id = $1";
const MFA: &str =
    "UPDATE users SET mfa_enabled = $4, version = $2, updated_at = $3 WHERE user_id = $1";

/// One user as listed (never with credentials).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub username: String,
    pub email: String,
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub display_name: Option<String>,
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub given_name: Option<String>,
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub family_name: Option<String>,
    /// `active` or `disabled` (`deleted` only in the answer to the deletion).
    pub status: String,
    pub has_password: bool,
    pub account_version: i64,
    pub mfa_enabled: bool,
    /// Set while the account is locked after repeated login failures.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub locked_until: Option<DateTime<Utc>>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn row(r: &Row) -> UserRow {
    UserRow {
        id: r.get(0),
        tenant_id: r.get(1),
        username: r.get(2),
        email: r.get(3),
        display_name: r.get(4),
        status: r.get(5),
        has_password: r.get(6),
        account_version: r.get(7),
        version: r.get(8),
        created_at: r.get(9),
        updated_at: r.get(10),
        mfa_enabled: r.get(11),
        locked_until: r.get(12),
        given_name: r.get(13),
        family_name: r.get(14),
    }
}

/// Live (not deleted) users of one tenant, by id, after the keyset cursor `after`.
pub async fn list(
    client: &impl GenericClient,
    tenant_id: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<UserRow>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT user_id, tenant_id, username, email, display_name, status, has_password, \
             account_version, version, created_at, updated_at, mfa_enabled, locked_until, \
             given_name, family_name \
             FROM projections.users \
             WHERE tenant_id = $1 AND status <> 'deleted' AND ($2::uuid IS NULL OR user_id > $2) \
             ORDER BY user_id LIMIT $3",
            &[&tenant_id, &after, &limit],
        )
        .await?;
    Ok(rows.iter().map(row).collect())
}
