//! The `auth`, `rate_limit`, `keys` and `bootstrap` sections: credentials, tokens, throttling,
//! the master key and the first administrator.

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::redacted_opt;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// PBKDF2-HMAC-SHA256 iterations for new password hashes (existing hashes keep theirs).
    pub pbkdf2_iterations: std::num::NonZeroU32,
    /// `iss` of the tokens Charter mints, and the issuer of its OpenID configuration.
    pub issuer: String,
    /// `aud` of the tokens Charter mints and accepts.
    pub audience: String,
    pub access_token_ttl_s: u64,
    pub refresh_token_ttl_s: u64,
    /// Consecutive failed logins that lock an account.
    pub lockout_threshold: u32,
    pub lockout_duration_s: u64,
    /// The issuer label authenticator apps show next to a TOTP entry.
    pub totp_issuer: String,
    /// Tokens whose dynamic checks passed are remembered (until a change that could
    /// invalidate any token is projected). At most this many.
    pub verify_cache_entries: usize,
    /// ...and for at most this long each, however quiet the invalidation channel is.
    pub verify_cache_max_age_ms: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            pbkdf2_iterations: std::num::NonZeroU32::new(600_000).expect("non-zero"),
            issuer: "http://127.0.0.1:8080".into(),
            audience: "charter".into(),
            access_token_ttl_s: 900,
            refresh_token_ttl_s: 30 * 24 * 3600,
            lockout_threshold: 5,
            lockout_duration_s: 900,
            totp_issuer: "Charter".into(),
            verify_cache_entries: 100_000,
            verify_cache_max_age_ms: 5_000,
        }
    }
}

/// Throttling of the credential endpoints, `/v1/auth/login` and `/v1/oauth/token`: a refused
/// attempt is a `429` with `Retry-After`, and costs neither a password hash nor a step toward
/// the lockout. Each limit is a GCRA bucket (governor): `burst` attempts at once, then one more
/// every `60 / per_minute` seconds.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    pub enabled: bool,
    /// Per client address, for each of the two endpoints separately.
    pub per_ip: LimitConfig,
    /// Per `(tenant, username)` on login (the username ignoring case, the tenant by id whether
    /// it was given by id or by slug).
    pub per_user: LimitConfig,
    /// Per `client_id` on the token endpoint.
    pub per_client: LimitConfig,
    /// Peers whose `X-Forwarded-For` is believed: the client address is then the rightmost
    /// entry that is not itself one of them. Empty (the default): the peer address, always.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// How often keys whose bucket has refilled are forgotten (bounds the memory).
    pub prune_interval_s: u64,
}

/// One bucket's size and refill rate.
#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LimitConfig {
    pub per_minute: std::num::NonZeroU32,
    pub burst: std::num::NonZeroU32,
}

impl LimitConfig {
    pub fn new(per_minute: u32, burst: u32) -> Self {
        let non_zero = |n: u32| std::num::NonZeroU32::new(n.max(1)).expect("at least 1");
        Self {
            per_minute: non_zero(per_minute),
            burst: non_zero(burst),
        }
    }
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            per_ip: LimitConfig::new(60, 30),
            per_user: LimitConfig::new(10, 10),
            per_client: LimitConfig::new(60, 30),
            trusted_proxies: Vec::new(),
            prune_interval_s: 60,
        }
    }
}

/// Signing keys: created on first start, their private halves sealed with the master key.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeysConfig {
    /// 32 bytes, base64 or hex (`openssl rand -base64 32`). Required to serve.
    #[serde(serialize_with = "redacted_opt")]
    pub master_key: Option<SecretString>,
}

/// The first administrator, created (idempotently) at start-up when `tenant` is set.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct BootstrapConfig {
    /// Slug of the root tenant.
    pub tenant: Option<String>,
    pub username: Option<String>,
    pub email: Option<String>,
    #[serde(serialize_with = "redacted_opt")]
    pub password: Option<SecretString>,
}
