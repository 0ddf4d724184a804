//! The three ways in: password login (with TOTP or a recovery code), refresh-token rotation,
//! and the client credentials grant. Each ends in a freshly minted access token.
//!
//! Anti-enumeration: an unknown tenant or user, a wrong password, a locked account and a
//! disabled user all end in the same [`AuthError::InvalidCredentials`], and every path pays
//! exactly one PBKDF2 verification (against a dummy hash when there is no real one).

use std::sync::Arc;

use charter_events::streams::{
    service_account_stream, user_stream, username_scope, workspace_stream, TENANT_SLUG_SCOPE,
};
use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use uuid::Uuid;

use super::password;
use super::rate_limit::{Limited, RateLimits};
use super::totp::{self, Totp};
use crate::command::login::{self, LoginHandler};
use crate::command::session::RefreshHandler;
use crate::command::{self, CommandError, CommandRequest, Writer};
use crate::config::AuthConfig;
use crate::crypto::secrets;
use crate::crypto::MasterKey;
use crate::domain::service_account::ServiceAccount;
use crate::domain::user::{
    LockoutPolicy, LoginAttempt, SecondFactorProof, User, UserState, UserStatus,
};
use crate::domain::workspace::Workspace;
use crate::domain::RejectionKind;
use crate::store::{claims, events};
use crate::token::claims::PrincipalKind;
use crate::token::keys::KeyStore;
use crate::token::mint::{self, MintError, Minted, Subject};

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

    /// The user `username` of `tenant` (id or slug), from the write side's uniqueness claims.
    /// Throttled per `(tenant, username)` first: a refused attempt costs no hash and cannot
    /// count toward the lockout (it never reaches the user's stream).
    /// Returns the tenant's id too, when the tenant exists.
    async fn find_user(
        &self,
        tenant: &str,
        username: &str,
    ) -> Result<(Option<Uuid>, Option<UserState>), AuthError> {
        let client = self.pool.get().await?;
        let tenant_id = match Uuid::parse_str(tenant) {
            Ok(id) => Some(id),
            Err(_) => claims::holder(&client, TENANT_SLUG_SCOPE, tenant).await?,
        };
        // By id whichever way the tenant was named, so a slug and an id share one bucket.
        let tenant_key = tenant_id.map_or_else(|| tenant.to_owned(), |id| id.to_string());
        self.limits.check_user(&tenant_key, username)?;
        // Usernames are ASCII (checked at creation). Anything else is nobody, and must not
        // reach the lookup: PostgreSQL's `lower()` folds some non-ASCII letters onto ASCII ones
        // ('İ'), which would reach a real account under another rate-limit key.
        let Some(id) = tenant_id.filter(|_| username.is_ascii()) else {
            return Ok((tenant_id, None));
        };
        let scope = username_scope(id);
        let Some(user_id) = claims::holder(&client, &scope, username).await? else {
            return Ok((tenant_id, None));
        };
        let user = events::load::<User>(&client, &user_stream(user_id))
            .await?
            .state
            .0;
        let user = user.filter(|u| u.tenant_id == id && u.status != UserStatus::Deleted);
        Ok((tenant_id, user))
    }

    /// What the caller offers in place of a second factor, checked against the state read.
    pub fn second_factor(
        &self,
        user: &UserState,
        code: Option<&str>,
        now: DateTime<Utc>,
    ) -> SecondFactorProof {
        let (Some(code), Some(secret)) = (code.map(str::trim), user.mfa.active_secret.as_ref())
        else {
            return SecondFactorProof::None;
        };
        if code.len() == totp::DIGITS && code.bytes().all(|b| b.is_ascii_digit()) {
            SecondFactorProof::Totp {
                secret: secret.clone(),
                step: self.totp_step(user, secret, code, now),
            }
        } else {
            SecondFactorProof::RecoveryCode {
                digest: totp::recovery_digest(code),
            }
        }
    }

    /// The step `code` matches for the sealed `secret`, if any.
    pub fn totp_step(
        &self,
        user: &UserState,
        sealed: &str,
        code: &str,
        now: DateTime<Utc>,
    ) -> Option<u64> {
        let secret = self.master().open(TOTP_SEAL_CONTEXT, sealed).ok()?;
        let totp = Totp::new(
            std::str::from_utf8(&secret).ok()?,
            &self.config.totp_issuer,
            &user.username,
        )
        .ok()?;
        totp.matching_step(code, now.timestamp().max(0) as u64)
    }

    pub async fn login(
        &self,
        request: &LoginRequest,
        envelope: &CommandRequest,
    ) -> Result<TokenPair, AuthError> {
        let (tenant_id, user) = self.find_user(&request.tenant, &request.username).await?;
        let Some(user) = user else {
            // One hash and one durable transaction, as a known user's failure costs.
            self.check_password(&request.password, None).await;
            login::decoy(&self.writer, tenant_id, &envelope.metadata).await?;
            return Err(AuthError::InvalidCredentials);
        };
        let password_matched = self.password_matches(&user, &request.password).await;
        let now = Utc::now();
        if let Some(workspace_id) = request.workspace_id {
            let client = self.pool.get().await?;
            let workspace =
                events::load::<Workspace>(&client, &workspace_stream(workspace_id)).await?;
            if !workspace
                .state
                .0
                .is_some_and(|w| w.tenant_id == user.tenant_id && !w.deleted)
            {
                return Err(AuthError::InvalidCredentials);
            }
        }
        let session_id = Uuid::now_v7();
        let refresh_token = refresh_token(session_id)?;
        let handler = LoginHandler {
            tenant_id: user.tenant_id,
            user_id: user.id,
            attempt: LoginAttempt {
                now,
                session_id,
                password_matched,
                second_factor: self.second_factor(&user, request.totp_code.as_deref(), now),
                policy: self.lockout_policy(),
            },
            workspace_id: request.workspace_id,
            refresh_token_hash: secrets::digest(&refresh_token),
            refresh_ttl: chrono::Duration::seconds(self.config.refresh_token_ttl_s as i64),
            account_version: user.account_version,
        };
        let envelope = CommandRequest {
            idempotency: None,
            if_match: None,
            ..envelope.clone()
        };
        // A refusal is recorded (login_failed, account_locked) and committed: it is an `Ok`
        // outcome without this session. A blocked or missing tenant is a rejection.
        let user = match command::run(&self.writer, &handler, &envelope).await {
            Ok(outcome) => outcome
                .state
                .0
                .filter(|u| u.last_session_id == Some(session_id) && !outcome.event_ids.is_empty())
                .ok_or(AuthError::InvalidCredentials)?,
            Err(CommandError::Rejected(r)) if r.kind != RejectionKind::Invalid => {
                return Err(AuthError::InvalidCredentials)
            }
            Err(e) => return Err(e.into()),
        };
        let access = self
            .mint_user(
                &user,
                user.account_version,
                request.workspace_id,
                Some(session_id),
            )
            .await?;
        Ok(TokenPair {
            access,
            refresh_token,
        })
    }

    pub async fn refresh(
        &self,
        presented: &str,
        envelope: &CommandRequest,
    ) -> Result<TokenPair, AuthError> {
        let session_id = parse_refresh_token(presented).ok_or(AuthError::InvalidGrant)?;
        let refresh_token = refresh_token(session_id)?;
        let handler = RefreshHandler {
            session_id,
            presented_hash: secrets::digest(presented),
            new_hash: secrets::digest(&refresh_token),
            now: Utc::now(),
        };
        let envelope = CommandRequest {
            idempotency: None,
            if_match: None,
            ..envelope.clone()
        };
        let state = match command::run(&self.writer, &handler, &envelope).await {
            Ok(outcome) => outcome.state.0,
            Err(CommandError::Rejected(_)) => return Err(AuthError::InvalidGrant),
            Err(e) => return Err(e.into()),
        };
        // A reused token ended the family (committed); the caller learns only "invalid".
        let Some(state) = state.filter(|s| s.ended.is_none()) else {
            return Err(AuthError::InvalidGrant);
        };
        let user = self
            .load_user(state.user_id)
            .await?
            .ok_or(AuthError::InvalidGrant)?;
        // The account version the refresh was decided against (it equals the session's), not
        // the one loaded since: a logout-all committed in between must make this token stale.
        let access = self
            .mint_user(
                &user,
                state.account_version,
                state.workspace_id,
                Some(session_id),
            )
            .await?;
        Ok(TokenPair {
            access,
            refresh_token,
        })
    }

    /// RFC 6749 §4.4. Secrets are 256 random bits, compared by digest.
    pub async fn client_credentials(
        &self,
        client_id: &str,
        client_secret: &str,
    ) -> Result<Minted, AuthError> {
        let id = Uuid::parse_str(client_id).map_err(|_| AuthError::InvalidClient)?;
        self.limits.check_client(id)?;
        let client = self.pool.get().await?;
        let account = events::load::<ServiceAccount>(&client, &service_account_stream(id))
            .await?
            .state
            .0;
        let account = account
            .filter(|a| a.active())
            .ok_or(AuthError::InvalidClient)?;
        let presented = secrets::digest(client_secret);
        let stored = account.secret_hash.as_deref().unwrap_or_default();
        if !secrets::digest_eq(&presented, stored) {
            return Err(AuthError::InvalidClient);
        }
        let subject = Subject {
            id,
            kind: PrincipalKind::ServiceAccount,
            tenant_id: account.tenant_id,
            workspace_id: None,
            // The secret's rotations, as read with the secret just checked: a rotation that
            // commits after this read makes the token stale at once.
            account_version: account.secret_version,
            platform_permissions: vec![],
            session_id: None,
        };
        mint::mint(&client, &self.index, &self.keys, &self.config, &subject)
            .await
            .map_err(|e| match e {
                MintError::TenantInactive => AuthError::InvalidClient,
                other => other.into(),
            })
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
