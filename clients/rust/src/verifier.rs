//! Local verification of Charter's access tokens.
//!
//! The [`Verifier`] finds Charter's JWKS through OpenID Connect discovery
//! (`<issuer>/.well-known/openid-configuration`), keeps the keys in memory, and verifies
//! each token with the static checks Charter itself applies: `alg` pinned to ES256, `kid`
//! required, `iss`, `aud`, `exp` and `nbf` with a small leeway, and the policy-version
//! contract. A token signed with a key it does not know makes it fetch the JWKS again, at
//! most once per [`VerifierConfig::min_refetch_interval`], so a flood of forged `kid`s
//! cannot hammer Charter; the keys are also refreshed every
//! [`VerifierConfig::refresh_interval`], so a key Charter dropped stops verifying.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use charter_events::jwt::StaticRefusal;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use charter_events::access_token::Claims;

/// How to reach and trust a Charter issuer.
#[derive(Debug, Clone)]
pub struct VerifierConfig {
    /// Charter's issuer URL (`auth.issuer`), e.g. `https://iam.example.com`. Discovery is
    /// fetched from under it, and its `issuer` must equal it.
    pub issuer: String,
    /// The audience tokens must carry (`auth.audience`).
    pub audience: String,
    /// Clock skew tolerated on `exp` and `nbf`.
    pub leeway: Duration,
    /// The least time between two JWKS fetches caused by unknown key ids.
    pub min_refetch_interval: Duration,
    /// How long fetched keys are used before they are fetched again (Charter serves the
    /// JWKS with `max-age=60`).
    pub refresh_interval: Duration,
    /// The timeout of each HTTP request to Charter.
    pub http_timeout: Duration,
    /// Allows a plain `http://` issuer on a host other than loopback. Off by default: the
    /// keys, and the client secret [`crate::register`] sends, must not cross a network in
    /// the clear.
    pub allow_insecure_http: bool,
    /// How many verified tokens are remembered (by their full text), so that a client's
    /// next request with the same token skips the signature check; 0 turns it off. A hit is
    /// still checked for `exp`/`nbf` and for its key still being in the JWKS.
    pub verified_cache: usize,
}

impl VerifierConfig {
    /// The defaults for an issuer and audience: 5 s leeway, unknown-kid refetches at most
    /// every 10 s, keys refreshed every 60 s, 5 s HTTP timeout.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            audience: audience.into(),
            leeway: Duration::from_secs(5),
            min_refetch_interval: Duration::from_secs(10),
            refresh_interval: Duration::from_secs(60),
            http_timeout: Duration::from_secs(5),
            allow_insecure_http: false,
            verified_cache: 10_000,
        }
    }
}

/// Why a token was refused, or could not be checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not three base64url parts with a JSON header.
    #[error("the token is not a well-formed JWT")]
    Malformed,
    /// `alg` is not ES256 (`none`, HS256 and the rest are refused before any key is used).
    #[error("only ES256 tokens are accepted")]
    Algorithm,
    /// The header has no `kid`.
    #[error("the token's header names no key (kid)")]
    MissingKeyId,
    /// No key of the issuer's JWKS has the token's `kid`, even after a refetch (or a refetch
    /// was not allowed yet).
    #[error("the token's signing key is unknown")]
    UnknownKey,
    /// The signature does not verify.
    #[error("the token's signature is invalid")]
    Signature,
    /// `exp` is past (beyond the leeway).
    #[error("the token has expired")]
    Expired,
    /// `nbf` is ahead (beyond the leeway).
    #[error("the token is not valid yet")]
    NotYetValid,
    /// `iss` or `aud` is not the configured one.
    #[error("the token's issuer or audience is wrong")]
    WrongIssuerOrAudience,
    /// The claims are missing or are not Charter's.
    #[error("the token's claims are invalid")]
    Claims,
    /// The token's `policy_contract` is not the one this SDK compares versions under.
    #[error("the token's policy contract is {0}, not the current one")]
    Contract(u32),
    /// The JWKS could not be fetched (the token could not be checked: not a refusal).
    #[error("the issuer's keys are unavailable: {0}")]
    KeysUnavailable(String),
}

impl From<StaticRefusal> for TokenError {
    fn from(e: StaticRefusal) -> Self {
        match e {
            StaticRefusal::Malformed => TokenError::Malformed,
            StaticRefusal::Signature => TokenError::Signature,
            StaticRefusal::Expired => TokenError::Expired,
            StaticRefusal::NotYetValid => TokenError::NotYetValid,
            StaticRefusal::WrongIssuerOrAudience => TokenError::WrongIssuerOrAudience,
            StaticRefusal::Claims => TokenError::Claims,
        }
    }
}

/// Why a [`Verifier`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// Discovery or the JWKS could not be fetched or parsed.
    #[error("fetching {url}: {cause}")]
    Fetch {
        /// The URL that failed.
        url: String,
        /// What failed.
        cause: String,
    },
    /// The discovery document names another issuer than the configured one.
    #[error("the discovery document names issuer {found}, expected {expected}")]
    IssuerMismatch {
        /// The configured issuer.
        expected: String,
        /// The document's.
        found: String,
    },
    /// The issuer is not `https://` (nor plain `http://` on loopback), or the document
    /// points an endpoint at another origin than the issuer's.
    #[error("{0}")]
    Insecure(String),
}

/// `(scheme, host, port)` of a URL.
fn origin(url: &str) -> Option<(String, String, u16)> {
    let url = reqwest::Url::parse(url).ok()?;
    Some((
        url.scheme().to_owned(),
        url.host_str()?.to_owned(),
        url.port_or_known_default()?,
    ))
}

/// The issuer is HTTPS, or HTTP on a loopback host, or HTTP allowed explicitly.
fn check_issuer(issuer: &str, allow_http: bool) -> Result<(), DiscoveryError> {
    let Some((scheme, host, _)) = origin(issuer) else {
        return Err(DiscoveryError::Insecure(format!(
            "the issuer {issuer} is not a URL"
        )));
    };
    let loopback = host == "localhost"
        || host
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match scheme.as_str() {
        "https" => Ok(()),
        "http" if loopback || allow_http => Ok(()),
        _ => Err(DiscoveryError::Insecure(format!(
            "the issuer {issuer} is not https:// (set allow_insecure_http to allow plain HTTP)"
        ))),
    }
}

/// Every endpoint the SDK calls is on the issuer's own origin.
fn check_endpoints(issuer: &str, discovery: &Discovery) -> Result<(), DiscoveryError> {
    let expected = origin(issuer);
    for (name, url) in [
        ("jwks_uri", &discovery.jwks_uri),
        ("token_endpoint", &discovery.token_endpoint),
        ("introspection_endpoint", &discovery.introspection_endpoint),
    ] {
        if origin(url) != expected {
            return Err(DiscoveryError::Insecure(format!(
                "{name} {url} is not on the issuer's origin {issuer}"
            )));
        }
    }
    Ok(())
}

/// The part of Charter's discovery document the SDK uses.
#[derive(Debug, Clone, Deserialize)]
pub struct Discovery {
    /// The issuer, equal to `iss` of every token.
    pub issuer: String,
    /// Where the signing keys are.
    pub jwks_uri: String,
    /// The OAuth token endpoint (client credentials).
    pub token_endpoint: String,
    /// RFC 7662 introspection, for checks that need Charter (revocation).
    pub introspection_endpoint: String,
}

struct KeySet {
    by_kid: HashMap<String, DecodingKey>,
    fetched_at: Instant,
}

struct Inner {
    config: VerifierConfig,
    discovery: Discovery,
    http: reqwest::Client,
    validation: Validation,
    keys: RwLock<Arc<KeySet>>,
    /// Held while fetching: concurrent misses wait for one fetch instead of starting many.
    fetching: tokio::sync::Mutex<()>,
    /// When the last fetch started, whatever its outcome.
    last_fetch: Mutex<Instant>,
    fetches: AtomicU64,
    /// Tokens verified already, by their text: the claims and the key's id.
    verified: RwLock<HashMap<String, (Arc<Claims>, String)>>,
}

/// Verifies Charter's access tokens locally. Cheap to clone.
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

impl Verifier {
    /// Fetches the issuer's discovery document and JWKS.
    pub async fn discover(config: VerifierConfig) -> Result<Self, DiscoveryError> {
        if !charter_events::jwt::install() {
            tracing::debug!("jsonwebtoken's crypto provider was installed already");
        }
        check_issuer(&config.issuer, config.allow_insecure_http)?;
        let http = reqwest::Client::builder()
            .timeout(config.http_timeout)
            // A redirect could take the keys, or the client secret, elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| DiscoveryError::Fetch {
                url: config.issuer.clone(),
                cause: e.to_string(),
            })?;
        let issuer = config.issuer.trim_end_matches('/').to_owned();
        let url = format!("{issuer}/.well-known/openid-configuration");
        let discovery: Discovery = get_json(&http, &url)
            .await
            .map_err(|cause| DiscoveryError::Fetch { url, cause })?;
        if discovery.issuer.trim_end_matches('/') != issuer {
            return Err(DiscoveryError::IssuerMismatch {
                expected: issuer,
                found: discovery.issuer,
            });
        }
        check_endpoints(&issuer, &discovery)?;
        let validation = validation(&issuer, &config);
        let keys = fetch_keys(&http, &discovery.jwks_uri)
            .await
            .map_err(|cause| DiscoveryError::Fetch {
                url: discovery.jwks_uri.clone(),
                cause,
            })?;
        metrics::counter!("charter_client_jwks_fetches_total").increment(1);
        Ok(Self::assemble(config, discovery, http, validation, keys))
    }

    fn assemble(
        config: VerifierConfig,
        discovery: Discovery,
        http: reqwest::Client,
        validation: Validation,
        keys: KeySet,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                config,
                discovery,
                http,
                validation,
                keys: RwLock::new(Arc::new(keys)),
                fetching: tokio::sync::Mutex::new(()),
                last_fetch: Mutex::new(Instant::now()),
                fetches: AtomicU64::new(1),
                verified: RwLock::default(),
            }),
        }
    }

    /// The issuer's discovery document, as fetched.
    pub fn discovery(&self) -> &Discovery {
        &self.inner.discovery
    }

    /// How many times the JWKS has been fetched (the first fetch included).
    pub fn jwks_fetches(&self) -> u64 {
        self.inner.fetches.load(Ordering::Relaxed)
    }

    /// Verifies `token` and returns its claims. Only an unknown key id, or keys older than
    /// the refresh interval, make it wait on the network. A token verified before (the same
    /// text) is not checked for its signature again while it is valid and its key is
    /// published; see [`VerifierConfig::verified_cache`].
    pub async fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        if let Some(claims) = self.remembered(token) {
            return Ok(claims);
        }
        let (claims, kid) = self.verify_signed(token).await?;
        self.remember(token, &claims, kid);
        Ok(claims)
    }

    /// A remembered token's claims, if it is still within its times and its key is still
    /// published.
    fn remembered(&self, token: &str) -> Option<Claims> {
        if self.inner.config.verified_cache == 0 {
            return None;
        }
        let (claims, kid) = self
            .inner
            .verified
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(token)
            .cloned()?;
        let now = jsonwebtoken::get_current_timestamp() as i64;
        let leeway = self.inner.validation.leeway as i64;
        let in_time = now < claims.exp.saturating_add(leeway) && now >= claims.nbf - leeway;
        (in_time && self.current().by_kid.contains_key(&kid)).then(|| (*claims).clone())
    }

    fn remember(&self, token: &str, claims: &Claims, kid: String) {
        let capacity = self.inner.config.verified_cache;
        if capacity == 0 {
            return;
        }
        let mut verified = self
            .inner
            .verified
            .write()
            .unwrap_or_else(|e| e.into_inner());
        if verified.len() >= capacity {
            // Bounded: forget everything rather than track recency on the hot path.
            verified.clear();
        }
        verified.insert(token.to_owned(), (Arc::new(claims.clone()), kid));
    }

    /// Verifies `token` from its signature up, without the cache of verified tokens (what
    /// the first request with a token costs; the benchmark measures this).
    pub async fn verify_uncached(&self, token: &str) -> Result<Claims, TokenError> {
        Ok(self.verify_signed(token).await?.0)
    }

    /// The claims and the id of the key that signed them.
    async fn verify_signed(&self, token: &str) -> Result<(Claims, String), TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| match e.kind() {
            // A header naming an algorithm jsonwebtoken does not know.
            jsonwebtoken::errors::ErrorKind::Json(_) => TokenError::Algorithm,
            _ => TokenError::Malformed,
        })?;
        if header.alg != Algorithm::ES256 {
            return Err(TokenError::Algorithm);
        }
        let kid = header.kid.ok_or(TokenError::MissingKeyId)?;
        let mut keys = self.current();
        if keys.fetched_at.elapsed() >= self.inner.config.refresh_interval {
            self.spawn_refresh();
        }
        if !keys.by_kid.contains_key(&kid) {
            keys = self.refetch_for(&kid).await?;
        }
        let key = keys.by_kid.get(&kid).ok_or(TokenError::UnknownKey)?;
        let claims = charter_events::jwt::verify_access_token(token, key, &self.inner.validation)?;
        if claims.policy_contract != charter_events::policy::CONTRACT {
            return Err(TokenError::Contract(claims.policy_contract));
        }
        Ok((claims, kid))
    }

    fn current(&self) -> Arc<KeySet> {
        self.inner
            .keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Fetches the JWKS again for an unknown `kid`, unless a fetch started less than the
    /// minimum interval ago: then the key is unknown.
    async fn refetch_for(&self, kid: &str) -> Result<Arc<KeySet>, TokenError> {
        let _one = self.inner.fetching.lock().await;
        // Another request may have fetched it while this one waited.
        let keys = self.current();
        if keys.by_kid.contains_key(kid) {
            return Ok(keys);
        }
        if !self.may_fetch() {
            metrics::counter!("charter_client_jwks_refetches_refused_total").increment(1);
            return Err(TokenError::UnknownKey);
        }
        self.fetch().await.map_err(TokenError::KeysUnavailable)
    }

    /// Whether a fetch may start now; if so, records that it does.
    fn may_fetch(&self) -> bool {
        let mut last = self
            .inner
            .last_fetch
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if last.elapsed() < self.inner.config.min_refetch_interval {
            return false;
        }
        *last = Instant::now();
        true
    }

    async fn fetch(&self) -> Result<Arc<KeySet>, String> {
        self.inner.fetches.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("charter_client_jwks_fetches_total").increment(1);
        let keys = Arc::new(fetch_keys(&self.inner.http, &self.inner.discovery.jwks_uri).await?);
        *self.inner.keys.write().unwrap_or_else(|e| e.into_inner()) = keys.clone();
        Ok(keys)
    }

    /// Refreshes the keys in the background (one refresh at a time, rate-limited like
    /// refetches); verification goes on with the keys it has.
    fn spawn_refresh(&self) {
        // No task per request while Charter is away: only when a fetch may start now, and
        // outside a runtime not at all (the next verify in one will refresh).
        if tokio::runtime::Handle::try_current().is_err() || !self.may_fetch() {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            let Ok(_one) = this.inner.fetching.try_lock() else {
                return;
            };
            if this.current().fetched_at.elapsed() < this.inner.config.refresh_interval {
                return;
            }
            if let Err(e) = this.fetch().await {
                tracing::warn!(error = %e, "refreshing Charter's JWKS failed; keeping the keys");
            }
        });
    }
}

async fn get_json<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    url: &str,
) -> Result<T, String> {
    let response = http.get(url).send().await.map_err(|e| e.to_string())?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("HTTP {status}"));
    }
    response.json().await.map_err(|e| e.to_string())
}

/// The ES256 keys of a JWKS, by `kid`; keys of other kinds are skipped.
async fn fetch_keys(http: &reqwest::Client, url: &str) -> Result<KeySet, String> {
    let set: JwkSet = get_json(http, url).await?;
    Ok(keys_of(&set))
}

/// The static checks, as Charter applies them: ES256 only; `exp`, `nbf`, `iss`, `aud` and
/// `sub` required; `iss` the issuer, `aud` the audience; the leeway on both times.
fn validation(issuer: &str, config: &VerifierConfig) -> Validation {
    let mut validation = Validation::new(Algorithm::ES256);
    validation.algorithms = vec![Algorithm::ES256];
    // Charter mints `iss` as configured, with or without a trailing slash.
    validation.set_issuer(&[issuer.to_owned(), format!("{issuer}/")]);
    validation.set_audience(&[&config.audience]);
    validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
    validation.validate_nbf = true;
    // Whole seconds (JWT times are), rounded up: a sub-second leeway is not none.
    validation.leeway = config.leeway.as_secs_f64().ceil() as u64;
    validation
}

fn keys_of(set: &JwkSet) -> KeySet {
    let by_kid = set
        .keys
        .iter()
        .filter(|jwk| {
            matches!(
                jwk.algorithm,
                jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(_)
            )
        })
        .filter_map(|jwk| Some((jwk.common.key_id.clone()?, DecodingKey::from_jwk(jwk).ok()?)))
        .collect();
    KeySet {
        by_kid,
        fetched_at: Instant::now(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_or_loopback_issuers_and_same_origin_endpoints() {
        for ok in [
            "https://iam.example.com",
            "http://127.0.0.1:8080",
            "http://localhost:8080",
            "http://[::1]:8080",
        ] {
            assert!(check_issuer(ok, false).is_ok(), "{ok}");
        }
        for bad in ["http://iam.example.com", "ftp://127.0.0.1", "not a url"] {
            assert!(check_issuer(bad, false).is_err(), "{bad}");
        }
        assert!(check_issuer("http://iam.internal", true).is_ok());
        let issuer = "https://iam.example.com";
        let doc = |jwks: &str| Discovery {
            issuer: issuer.into(),
            jwks_uri: jwks.into(),
            token_endpoint: format!("{issuer}/v1/oauth/token"),
            introspection_endpoint: format!("{issuer}/v1/tokens/introspect"),
        };
        assert!(check_endpoints(
            issuer,
            &doc("https://iam.example.com/.well-known/jwks.json")
        )
        .is_ok());
        for elsewhere in [
            "https://evil.example.com/jwks.json",
            "http://iam.example.com/jwks.json",
            "https://iam.example.com:8443/jwks.json",
        ] {
            assert!(
                check_endpoints(issuer, &doc(elsewhere)).is_err(),
                "{elsewhere}"
            );
        }
    }

    #[test]
    fn only_elliptic_keys_with_an_id_are_kept() {
        let set: JwkSet = serde_json::from_value(serde_json::json!({"keys": [
            {"kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256", "use": "sig",
             "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
             "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty": "EC", "crv": "P-256", "alg": "ES256",
             "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
             "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty": "oct", "kid": "h1", "k": "c2VjcmV0"}
        ]}))
        .unwrap();
        let keys = keys_of(&set);
        assert_eq!(keys.by_kid.keys().collect::<Vec<_>>(), vec!["k1"]);
    }

    /// A verifier of tokens signed by a key of the test's own, and a signer.
    fn local() -> (
        Verifier,
        impl Fn(&str, Option<&str>, serde_json::Value) -> String,
    ) {
        use base64::Engine;
        use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
        charter_events::jwt::install();
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let point = pair.public_key().as_ref().to_vec();
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let set: JwkSet = serde_json::from_value(serde_json::json!({"keys": [{
            "kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256", "use": "sig",
            "x": b64(&point[1..33]), "y": b64(&point[33..65]),
        }]}))
        .unwrap();
        let issuer = "https://iam.example.com";
        let config = VerifierConfig::new(issuer, "charter");
        let discovery = Discovery {
            issuer: issuer.into(),
            jwks_uri: format!("{issuer}/.well-known/jwks.json"),
            token_endpoint: format!("{issuer}/v1/oauth/token"),
            introspection_endpoint: format!("{issuer}/v1/tokens/introspect"),
        };
        let validation = validation(issuer, &config);
        let verifier = Verifier::assemble(
            config,
            discovery,
            reqwest::Client::new(),
            validation,
            keys_of(&set),
        );
        let der = pkcs8.as_ref().to_vec();
        let sign = move |alg: &str, kid: Option<&str>, claims: serde_json::Value| {
            let mut header = jsonwebtoken::Header::new(Algorithm::ES256);
            header.kid = kid.map(str::to_owned);
            let token = jsonwebtoken::encode(
                &header,
                &claims,
                &jsonwebtoken::EncodingKey::from_ec_der(&der),
            )
            .unwrap();
            if alg == "ES256" {
                return token;
            }
            // The same claims under another `alg` header (the signature no longer matters).
            let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
            let mut h: serde_json::Value = serde_json::from_slice(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(&parts[0])
                    .unwrap(),
            )
            .unwrap();
            h["alg"] = alg.into();
            parts[0] = b64(&serde_json::to_vec(&h).unwrap());
            parts.join(".")
        };
        (verifier, sign)
    }

    fn claims(overrides: serde_json::Value) -> serde_json::Value {
        let now = jsonwebtoken::get_current_timestamp() as i64;
        let mut c = serde_json::json!({
            "iss": "https://iam.example.com", "aud": "charter",
            "sub": uuid::Uuid::from_u128(9), "principal": "user",
            "tenant_id": uuid::Uuid::from_u128(1), "workspace_id": null,
            "roles": [], "permissions": ["connections.read"], "platform_permissions": [],
            "policy_version": 1, "policy_contract": charter_events::policy::CONTRACT,
            "account_version": 0, "jti": uuid::Uuid::from_u128(5),
            "iat": now, "nbf": now, "exp": now + 600,
        });
        for (k, v) in overrides.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    }

    #[tokio::test]
    async fn the_static_checks_refuse_what_charter_refuses() {
        let (v, sign) = local();
        let now = jsonwebtoken::get_current_timestamp() as i64;
        let good = sign("ES256", Some("k1"), claims(serde_json::json!({})));
        assert_eq!(
            v.verify(&good).await.unwrap().permissions,
            ["connections.read"]
        );
        // A remembered token is judged again on its times and key, not just looked up.
        assert!(v.verify(&good).await.is_ok());

        let cases = [
            (
                sign("HS256", Some("k1"), claims(serde_json::json!({}))),
                TokenError::Algorithm,
            ),
            (
                sign("none", Some("k1"), claims(serde_json::json!({}))),
                TokenError::Algorithm,
            ),
            (
                sign("ES256", None, claims(serde_json::json!({}))),
                TokenError::MissingKeyId,
            ),
            (
                sign(
                    "ES256",
                    Some("k1"),
                    claims(serde_json::json!({"exp": now - 60})),
                ),
                TokenError::Expired,
            ),
            (
                sign(
                    "ES256",
                    Some("k1"),
                    claims(serde_json::json!({"nbf": now + 60})),
                ),
                TokenError::NotYetValid,
            ),
            (
                sign(
                    "ES256",
                    Some("k1"),
                    claims(serde_json::json!({"iss": "https://evil.example.com"})),
                ),
                TokenError::WrongIssuerOrAudience,
            ),
            (
                sign(
                    "ES256",
                    Some("k1"),
                    claims(serde_json::json!({"aud": "another"})),
                ),
                TokenError::WrongIssuerOrAudience,
            ),
            (
                sign(
                    "ES256",
                    Some("k1"),
                    claims(serde_json::json!({"policy_contract": 1})),
                ),
                TokenError::Contract(1),
            ),
        ];
        for (token, want) in cases {
            assert_eq!(v.verify(&token).await.unwrap_err(), want, "{token}");
        }
        // Within the leeway: a token that expired 2 s ago still verifies.
        let late = sign(
            "ES256",
            Some("k1"),
            claims(serde_json::json!({"exp": now - 2})),
        );
        assert!(v.verify(&late).await.is_ok());
        // An altered payload under a good signature.
        let mut parts: Vec<&str> = good.split('.').collect();
        let other = sign(
            "ES256",
            Some("k1"),
            claims(serde_json::json!({"permissions": ["connections.create"]})),
        );
        parts[1] = other.split('.').nth(1).unwrap();
        assert_eq!(
            v.verify(&parts.join(".")).await.unwrap_err(),
            TokenError::Signature
        );
    }
}
