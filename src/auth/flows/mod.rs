//! The three ways in: password login (with TOTP or a recovery code), refresh-token rotation,
//! and the client credentials grant. Each ends in a freshly minted access token.
//!
//! Anti-enumeration: an unknown tenant or user, a wrong password, a locked account and a
//! disabled user all end in the same [`AuthError::InvalidCredentials`], and every path pays
//! exactly one PBKDF2 verification (against a dummy hash when there is no real one).

mod grants;
mod password_login;

use std::sync::Arc;

use chrono::Utc;
use deadpool_postgres::Pool;
use uuid::Uuid;

use super::password;
use super::rate_limit::{Limited, RateLimits};
use crate::command::{CommandError, Writer};
use crate::config::AuthConfig;
use crate::crypto::secrets;
use crate::crypto::MasterKey;
use crate::domain::user::{LockoutPolicy, User, UserState};
use crate::store::events;
use crate::token::claims::PrincipalKind;
use crate::token::keys::KeyStore;
use crate::token::mint::{self, MintError, Minted, Subject};
use charter_events::streams::user_stream;

/// The associated data TOTP secrets are sealed under.
pub const TOTP_SEAL_CONTEXT: &str = "charter/totp-secret/v1";
const REFRESH_PREFIX: &str = "rt_";

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// One answer for every failed login, whatever the reason.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// The refresh token is unknown, expired, superseded or its session ended.
    #[error("the refresh token is invalid, expired or revoked")]
    InvalidGrant,
    #[error("client authentication failed")]
    InvalidClient,
    /// Too many attempts: refused before any credential was checked.
    #[error(transparent)]
    RateLimited(#[from] Limited),
    #[error(transparent)]
    Command(#[from] CommandError),
    #[error(transparent)]
    Mint(#[from] MintError),
}

impl From<crate::store::StoreError> for AuthError {
    fn from(e: crate::store::StoreError) -> Self {
        AuthError::Command(e.into())
    }
}

impl From<deadpool_postgres::PoolError> for AuthError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        AuthError::Command(e.into())
    }
}

/// What a successful login or refresh returns.
#[derive(Debug, Clone)]
pub struct TokenPair {
    pub access: Minted,
    pub refresh_token: String,
}

#[derive(Debug, Clone)]
pub struct LoginRequest {
    /// A tenant id or slug.
    pub tenant: String,
    pub username: String,
    pub password: String,
    pub totp_code: Option<String>,
    pub workspace_id: Option<Uuid>,
}

/// Everything the flows need; shared by every request.
#[derive(Clone)]
pub struct Authenticator {
    pub pool: Pool,
    pub writer: Writer,
    pub keys: KeyStore,
    pub config: Arc<AuthConfig>,
    /// The throttles of the credential endpoints (the HTTP edge checks the per-address ones).
    pub limits: Arc<RateLimits>,
    /// This instance's entitlement index: tokens are minted from it.
    pub index: Arc<charter_projections::index::Index>,
    /// Verified against when there is no real hash, so that every path costs one hash.
    dummy_hash: Arc<String>,
}

impl Authenticator {
    pub fn new(
        writer: Writer,
        keys: KeyStore,
        config: AuthConfig,
        limits: Arc<RateLimits>,
        index: Arc<charter_projections::index::Index>,
    ) -> Result<Self, password::PasswordError> {
        let dummy_hash = password::hash("charter-dummy-password", config.pbkdf2_iterations)?;
        Ok(Self {
            pool: writer.pool.clone(),
            writer,
            keys,
            config: Arc::new(config),
            limits,
            index,
            dummy_hash: Arc::new(dummy_hash),
        })
    }

    pub fn master(&self) -> &MasterKey {
        self.keys.master()
    }

    /// The hash `password` matched: the user's, or `None` (after paying for a dummy check).
    async fn check_password(&self, password: &str, hash: Option<String>) -> Option<String> {
        let (password, dummy) = (password.to_owned(), self.dummy_hash.clone());
        tokio::task::spawn_blocking(move || {
            let target = hash.as_deref().unwrap_or(dummy.as_str());
            let ok = password::verify(&password, target).unwrap_or(false);
            hash.filter(|_| ok)
        })
        .await
        .unwrap_or(None)
    }

    /// A re-authentication proof for a signed-in user, under the lockout policy.
    pub fn reauth(&self, matched: Option<String>) -> crate::domain::user::Reauth {
        crate::domain::user::Reauth {
            now: Utc::now(),
            matched,
            policy: self.lockout_policy(),
        }
    }

    fn lockout_policy(&self) -> LockoutPolicy {
        LockoutPolicy {
            threshold: self.config.lockout_threshold.max(1),
            duration: chrono::Duration::seconds(self.config.lockout_duration_s as i64),
        }
    }

    /// Checks `password` against the user's current hash: the hash it matched, if any.
    pub async fn password_matches(&self, user: &UserState, password: &str) -> Option<String> {
        self.check_password(password, user.password_hash.clone())
            .await
    }

    pub async fn load_user(&self, user_id: Uuid) -> Result<Option<UserState>, AuthError> {
        let client = self.pool.get().await?;
        Ok(events::load::<User>(&client, &user_stream(user_id))
            .await?
            .state
            .0)
    }

    /// Mints for `user` under `account_version`: the version its command (login, refresh)
    /// was decided against, in that command's transaction.
    pub async fn mint_user(
        &self,
        user: &UserState,
        account_version: i64,
        workspace_id: Option<Uuid>,
        session_id: Option<Uuid>,
    ) -> Result<Minted, AuthError> {
        let client = self.pool.get().await?;
        let subject = Subject {
            id: user.id,
            kind: PrincipalKind::User,
            tenant_id: user.tenant_id,
            workspace_id,
            account_version,
            platform_permissions: user.platform_permissions.clone(),
            session_id,
        };
        mint::mint(&client, &self.index, &self.keys, &self.config, &subject)
            .await
            .map_err(|e| match e {
                MintError::TenantInactive => AuthError::InvalidCredentials,
                other => other.into(),
            })
    }
}

/// `rt_<session id>_<256 random bits>`: the session id finds the stream, the rest is secret.
fn refresh_token(session_id: Uuid) -> Result<String, AuthError> {
    let secret = secrets::token("")
        .map_err(|e| AuthError::Command(CommandError::Internal(e.to_string())))?;
    Ok(format!("{REFRESH_PREFIX}{}_{secret}", session_id.simple()))
}

fn parse_refresh_token(token: &str) -> Option<Uuid> {
    let rest = token.strip_prefix(REFRESH_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    (!secret.is_empty()).then_some(())?;
    Uuid::try_parse(id).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_tokens_name_their_session() {
        let id = Uuid::now_v7();
        let token = refresh_token(id).unwrap();
        assert_eq!(parse_refresh_token(&token), Some(id));
        assert_eq!(parse_refresh_token("rt_nope_x"), None);
        assert_eq!(parse_refresh_token(&format!("rt_{}_", id.simple())), None);
        assert_eq!(parse_refresh_token("garbage"), None);
    }
}
