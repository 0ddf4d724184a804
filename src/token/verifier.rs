//! Access-token verification: the one function behind the HTTP extractor, RFC 7662
//! introspection and the `token-verify` benchmark.
//!
//! Static checks (signature, `alg`, `kid`, `iss`, `aud`, `exp`, `nbf`) run on the first call
//! with a token; the same token text again is not verified again (the result cannot differ),
//! but its expiry and its key's presence in the keyring are checked on every call.
//! Dynamic checks (revocation, the session's end, `policy_version`, `account_version`,
//! principal and tenant status) read the read models in one round trip. A token that passed
//! them is remembered until PostgreSQL announces, on channel `charter_auth`, a change that
//! could invalidate any token (migration V10's triggers), and for at most
//! `auth.verify_cache_max_age_ms` in any case. While that LISTEN is down nothing is
//! remembered, and a heartbeat on it finds a connection that died silently (half-open TCP)
//! within two `database.listen_heartbeat_ms`. A change therefore takes effect once it is
//! projected: within the projection lag, and never later than the age cap.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use deadpool_postgres::Pool;
use jsonwebtoken::{Algorithm, Validation};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use charter_log::listener::Heartbeat;

use super::claims::{Claims, PrincipalKind};
use super::keys::KeyStore;
use crate::config::AuthConfig;

/// The channel migration V10's triggers notify.
pub const AUTH_CHANNEL: &str = "charter_auth";

/// Seconds of clock skew tolerated on `exp` and `nbf`.
const LEEWAY_S: u64 = 5;

/// Why a token was refused. The HTTP edge answers 401 for all but `Unavailable`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("only ES256 tokens are accepted")]
    Algorithm,
    #[error("the token's signing key is unknown")]
    UnknownKey,
    #[error("the token's signature is invalid")]
    Signature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token's issuer or audience is wrong")]
    WrongIssuerOrAudience,
    #[error("the token's claims are invalid")]
    Claims,
    #[error("the token was revoked")]
    Revoked,
    #[error("the token's session has ended (logout, or a reused refresh token)")]
    SessionEnded,
    #[error("the token is stale: its policy version is older than the current one")]
    Stale,
    #[error("the token was issued before the account's sessions were ended")]
    AccountVersion,
    #[error(
        "the token was issued before the service account's secret was rotated or its platform access changed"
    )]
    ServiceAccountVersion,
    #[error("the principal or its tenant is disabled, blocked or deleted")]
    Inactive,
    #[error("token verification is unavailable: {0}")]
    Unavailable(String),
}

impl From<charter_events::jwt::StaticRefusal> for TokenError {
    fn from(e: charter_events::jwt::StaticRefusal) -> Self {
        use charter_events::jwt::StaticRefusal as R;
        match e {
            R::Malformed => TokenError::Malformed,
            R::Signature => TokenError::Signature,
            R::Expired => TokenError::Expired,
            R::NotYetValid => TokenError::NotYetValid,
            R::WrongIssuerOrAudience => TokenError::WrongIssuerOrAudience,
            R::Claims => TokenError::Claims,
        }
    }
}

/// Remembers tokens whose dynamic checks passed, until the next invalidation, for at most
/// `max_age`.
#[derive(Default)]
struct PassedCache {
    /// jti → (exp, when the checks passed).
    entries: Mutex<HashMap<Uuid, (i64, Instant)>>,
    /// Bumped by every invalidation; an answer computed across one is not remembered.
    generation: AtomicU64,
    /// Whether invalidations can currently be heard.
    listening: AtomicBool,
    capacity: usize,
    /// An entry older than this is checked again, whatever was (or was not) heard.
    max_age: Duration,
}

impl PassedCache {
    fn hit(&self, jti: Uuid) -> bool {
        if !self.listening.load(Ordering::Acquire) {
            return false;
        }
        let entries = self.entries.lock().expect("cache lock");
        entries
            .get(&jti)
            .is_some_and(|(_, at)| at.elapsed() < self.max_age)
    }

    fn remember(&self, jti: Uuid, exp: i64, generation: u64) {
        let mut entries = self.entries.lock().expect("cache lock");
        if !self.listening.load(Ordering::Acquire)
            || self.generation.load(Ordering::Acquire) != generation
        {
            return;
        }
        if entries.len() >= self.capacity {
            let now = chrono::Utc::now().timestamp();
            let max_age = self.max_age;
            entries.retain(|_, (exp, at)| *exp > now && at.elapsed() < max_age);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(jti, (exp, Instant::now()));
    }

    fn invalidate(&self, listening: bool) {
        let mut entries = self.entries.lock().expect("cache lock");
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.listening.store(listening, Ordering::Release);
        entries.clear();
    }
}

/// Tokens whose signature and claims verified, by their exact text: a request presenting
/// the same bytes again skips the ES256 verification (the result cannot differ), not the
/// checks that can: the validity period and the key's presence in the keyring are checked on
/// every hit. Bounded by `auth.verify_cache_entries`.
#[derive(Default)]
struct VerifiedTokens {
    entries: Mutex<HashMap<Box<str>, (Claims, String)>>,
    capacity: usize,
}

impl VerifiedTokens {
    /// The remembered claims of `token`, if it verified before: refused when its key has left
    /// the keyring (`has_key`) or it has expired since.
    fn get(
        &self,
        token: &str,
        has_key: impl Fn(&str) -> bool,
    ) -> Option<Result<Claims, TokenError>> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let (claims, kid) = entries.get(token)?;
        if !has_key(kid) {
            return Some(Err(TokenError::UnknownKey));
        }
        let now = chrono::Utc::now().timestamp();
        if now > claims.exp + LEEWAY_S as i64 {
            return Some(Err(TokenError::Expired));
        }
        Some(Ok(claims.clone()))
    }

    fn insert(&self, token: &str, claims: &Claims, kid: String) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= self.capacity {
            let now = chrono::Utc::now().timestamp();
            entries.retain(|_, (c, _)| c.exp + LEEWAY_S as i64 >= now);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(token.into(), (claims.clone(), kid));
    }
}

/// Verifies access tokens. Cheap to clone.
#[derive(Clone)]
pub struct Verifier {
    keys: KeyStore,
    pool: Pool,
    validation: Arc<Validation>,
    cache: Arc<PassedCache>,
    verified: Arc<VerifiedTokens>,
}

impl Verifier {
    pub fn new(keys: KeyStore, pool: Pool, config: &AuthConfig) -> Self {
        if !charter_events::jwt::install() {
            tracing::warn!("another jsonwebtoken CryptoProvider was installed first");
        }
        let mut validation = Validation::new(Algorithm::ES256);
        validation.algorithms = vec![Algorithm::ES256];
        validation.set_issuer(&[&config.issuer]);
        validation.set_audience(&[&config.audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_S;
        Self {
            keys,
            pool,
            validation: Arc::new(validation),
            cache: Arc::new(PassedCache {
                capacity: config.verify_cache_entries.max(1),
                max_age: Duration::from_millis(config.verify_cache_max_age_ms),
                ..PassedCache::default()
            }),
            verified: Arc::new(VerifiedTokens {
                capacity: config.verify_cache_entries.max(1),
                ..VerifiedTokens::default()
            }),
        }
    }

    pub fn keys(&self) -> &KeyStore {
        &self.keys
    }

    /// Keeps the cache's invalidation channel open until shutdown.
    pub fn spawn_invalidation(
        &self,
        config: charter_log::pg::PgConnect,
        heartbeat: Heartbeat,
        shutdown: CancellationToken,
    ) {
        use charter_log::listener::{listen_forever, ListenEvent};
        let cache = self.cache.clone();
        tokio::spawn(listen_forever(
            config,
            AUTH_CHANNEL,
            heartbeat,
            shutdown,
            move |event| cache.invalidate(event != ListenEvent::Lost),
        ));
    }

    /// Whether invalidations can currently be heard (tokens are remembered only then).
    pub fn listening(&self) -> bool {
        self.cache.listening.load(Ordering::Acquire)
    }

    /// Every check, static and dynamic. `Ok` means the token may be trusted right now.
    pub async fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let claims = self.verify_static(token).await?;
        if self.cache.hit(claims.jti) {
            return Ok(claims);
        }
        let generation = self.cache.generation.load(Ordering::Acquire);
        self.check_dynamic(&claims).await?;
        self.cache.remember(claims.jti, claims.exp, generation);
        Ok(claims)
    }

    /// [`Verifier::verify`], verifying the signature on every call, as for a token never seen
    /// before (what the `token-verify` benchmark compares with raw ring).
    pub async fn verify_uncached(&self, token: &str) -> Result<Claims, TokenError> {
        let (claims, _) = self.verify_signature(token).await?;
        if self.cache.hit(claims.jti) {
            return Ok(claims);
        }
        let generation = self.cache.generation.load(Ordering::Acquire);
        self.check_dynamic(&claims).await?;
        self.cache.remember(claims.jti, claims.exp, generation);
        Ok(claims)
    }

    /// Signature, algorithm, key, issuer, audience and validity period. A token whose exact
    /// text verified before is not verified again (see `VerifiedTokens`).
    pub async fn verify_static(&self, token: &str) -> Result<Claims, TokenError> {
        let keys = self.keys.current();
        if let Some(known) = self
            .verified
            .get(token, |kid| keys.verifying.contains_key(kid))
        {
            return known;
        }
        let (claims, kid) = self.verify_signature(token).await?;
        self.verified.insert(token, &claims, kid);
        Ok(claims)
    }

    /// [`Verifier::verify_static`] without the cache of verified tokens: every call verifies
    /// the ES256 signature (what the `token-verify` benchmark measures). Returns the claims
    /// and the key id.
    pub async fn verify_signature(&self, token: &str) -> Result<(Claims, String), TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::Json(_) => TokenError::Algorithm,
            _ => TokenError::Malformed,
        })?;
        if header.alg != Algorithm::ES256 {
            return Err(TokenError::Algorithm);
        }
        let kid = header.kid.ok_or(TokenError::UnknownKey)?;
        let mut keys = self.keys.current();
        if !keys.verifying.contains_key(&kid) && self.keys.may_reload(Duration::from_secs(1)) {
            let client = self.pool.get().await.map_err(unavailable)?;
            if let Err(e) = self.keys.reload(&client).await {
                tracing::warn!(error = %e, "reloading the keyring failed");
            }
            keys = self.keys.current();
        }
        let key = keys.verifying.get(&kid).ok_or(TokenError::UnknownKey)?;
        let claims = charter_events::jwt::verify_access_token(token, key, &self.validation)?;
        // A policy version of another contract cannot be compared with today's counters.
        if claims.policy_contract != charter_projections::policy_versions::CONTRACT {
            return Err(TokenError::Stale);
        }
        Ok((claims, kid))
    }

    async fn check_dynamic(&self, claims: &Claims) -> Result<(), TokenError> {
        let client = self.pool.get().await.map_err(unavailable)?;
        let statement = client
            .prepare_cached(
                "SELECT
                   (SELECT COALESCE(sum(version), 0)::bigint FROM projections.policy_versions
                    WHERE tenant_id = $1
                      AND workspace_id IN ('00000000-0000-0000-0000-000000000000'::uuid, $2)),
                   (SELECT status FROM projections.tenants WHERE tenant_id = $1),
                   CASE WHEN $5 THEN
                     (SELECT status FROM projections.users WHERE user_id = $3 AND tenant_id = $1)
                   ELSE
                     (SELECT status FROM projections.service_accounts
                      WHERE service_account_id = $3 AND tenant_id = $1)
                   END,
                   CASE WHEN $5 THEN
                     (SELECT account_version FROM projections.users
                      WHERE user_id = $3 AND tenant_id = $1)
                   ELSE
                     (SELECT account_version FROM projections.service_accounts
                      WHERE service_account_id = $3 AND tenant_id = $1)
                   END,
                   EXISTS (SELECT 1 FROM events WHERE stream_id = $4),
                   EXISTS (SELECT 1 FROM events WHERE stream_id = $6
                           AND event_type = 'session.ended')",
            )
            .await
            .map_err(unavailable)?;
        let scope = claims
            .workspace_id
            .unwrap_or(charter_projections::entitlements::TENANT_SCOPE);
        let is_user = claims.principal == PrincipalKind::User;
        let revocation = charter_events::streams::token_stream(claims.jti);
        // Tokens without a session (client credentials) name a stream that never exists.
        let session = claims
            .sid
            .map_or_else(String::new, charter_events::streams::session_stream);
        let row = client
            .query_one(
                &statement,
                &[
                    &claims.tenant_id,
                    &scope,
                    &claims.sub,
                    &revocation,
                    &is_user,
                    &session,
                ],
            )
            .await
            .map_err(unavailable)?;
        let policy_version: i64 = row.get(0);
        let tenant_status: Option<String> = row.get(1);
        let principal_status: Option<String> = row.get(2);
        let account_version: Option<i64> = row.get(3);
        let revoked: bool = row.get(4);
        let session_ended: bool = row.get(5);
        if revoked {
            return Err(TokenError::Revoked);
        }
        if session_ended {
            return Err(TokenError::SessionEnded);
        }
        if tenant_status.as_deref() != Some("active")
            || principal_status.as_deref() != Some("active")
        {
            return Err(TokenError::Inactive);
        }
        if claims.policy_version < policy_version {
            return Err(TokenError::Stale);
        }
        if claims.account_version < account_version.unwrap_or(i64::MAX) {
            return Err(if is_user {
                TokenError::AccountVersion
            } else {
                TokenError::ServiceAccountVersion
            });
        }
        Ok(())
    }
}

fn unavailable(e: impl std::fmt::Display) -> TokenError {
    TokenError::Unavailable(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> Claims {
        Claims {
            iss: "https://charter.test".into(),
            aud: "charter".into(),
            sub: Uuid::now_v7(),
            principal: PrincipalKind::User,
            tenant_id: Uuid::now_v7(),
            workspace_id: None,
            roles: vec![],
            permissions: vec!["iam.users.read".into()],
            platform_permissions: vec![],
            policy_version: 1,
            policy_contract: charter_projections::policy_versions::CONTRACT,
            account_version: 1,
            sid: None,
            jti: Uuid::now_v7(),
            iat: exp - 900,
            nbf: exp - 900,
            exp,
        }
    }

    /// A remembered token is answered from memory only while its key is in the keyring and
    /// it has not expired; anything else is refused, never served from the cache.
    #[test]
    fn remembered_tokens_still_expire_and_lose_their_key() {
        let cache = VerifiedTokens {
            capacity: 2,
            ..VerifiedTokens::default()
        };
        let now = chrono::Utc::now().timestamp();
        let live = claims(now + 600);
        cache.insert("live", &live, "k1".into());
        assert_eq!(cache.get("live", |k| k == "k1"), Some(Ok(live.clone())));
        assert_eq!(
            cache.get("live", |_| false),
            Some(Err(TokenError::UnknownKey))
        );
        assert_eq!(
            cache.get("unknown", |_| true),
            None,
            "never seen: verify it"
        );
        cache.insert("old", &claims(now - LEEWAY_S as i64 - 1), "k1".into());
        assert_eq!(cache.get("old", |_| true), Some(Err(TokenError::Expired)));
        // Full: the expired entry makes room; bounded whatever comes.
        cache.insert("third", &claims(now + 600), "k1".into());
        assert!(cache.entries.lock().unwrap().len() <= 2);
        assert!(cache.get("old", |_| true).is_none());
    }
}
