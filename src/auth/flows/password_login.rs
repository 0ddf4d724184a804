//! Password login: the user found by tenant and username (throttled first), the password,
//! then TOTP or a recovery code, under the lockout policy; it opens a session.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::auth::totp::{self, Totp};
use crate::command::login::{self, LoginHandler};
use crate::command::{self, CommandError, CommandRequest};
use crate::crypto::secrets;
use crate::domain::user::{LoginAttempt, SecondFactorProof, User, UserState, UserStatus};
use crate::domain::workspace::Workspace;
use crate::domain::RejectionKind;
use crate::store::{claims, events};
use charter_events::streams::{user_stream, username_scope, workspace_stream, TENANT_SLUG_SCOPE};

use super::{refresh_token, AuthError, Authenticator, LoginRequest, TokenPair, TOTP_SEAL_CONTEXT};

impl Authenticator {
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
}
