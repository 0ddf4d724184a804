//! Opaque secrets: random tokens, their digests, and sealing with the master key.
//!
//! Refresh tokens, client secrets and recovery codes carry at least 80 random bits, so a
//! plain SHA-256 digest stores them safely (a slow hash only helps low-entropy passwords).
//! Private keys and TOTP secrets are sealed with AES-256-GCM under the configured master key.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("the master key must be 32 bytes, base64 or hex encoded")]
    BadMasterKey,
    #[error("a sealed value could not be opened: wrong master key or tampered data")]
    Unseal,
    #[error("the system random generator failed")]
    Random,
}

/// `n` random bytes from the operating system.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], SecretError> {
    let mut bytes = [0u8; N];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| SecretError::Random)?;
    Ok(bytes)
}

/// A fresh opaque token: `prefix` + 256 random bits, base64url.
pub fn token(prefix: &str) -> Result<String, SecretError> {
    Ok(format!(
        "{prefix}{}",
        URL_SAFE_NO_PAD.encode(random_bytes::<32>()?)
    ))
}

/// The SHA-256 digest of a secret, hex encoded: what is stored instead of it.
pub fn digest(secret: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, secret.as_bytes());
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares two digests in constant time.
pub fn digest_eq(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The master key that seals secrets at rest.
#[derive(Clone)]
pub struct MasterKey(std::sync::Arc<LessSafeKey>);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey([REDACTED])")
    }
}

impl MasterKey {
    /// Parses 32 bytes given as base64 (standard or url-safe) or 64 hex digits.
    pub fn parse(encoded: &str) -> Result<Self, SecretError> {
        let encoded = encoded.trim();
        let bytes = if encoded.len() == 64 && encoded.bytes().all(|b| b.is_ascii_hexdigit()) {
            (0..32)
                .map(|i| u8::from_str_radix(&encoded[2 * i..2 * i + 2], 16))
                .collect::<Result<Vec<u8>, _>>()
                .map_err(|_| SecretError::BadMasterKey)?
        } else {
            base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .or_else(|_| URL_SAFE_NO_PAD.decode(encoded.trim_end_matches('=')))
                .map_err(|_| SecretError::BadMasterKey)?
        };
        let key = UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| SecretError::BadMasterKey)?;
        Ok(Self(std::sync::Arc::new(LessSafeKey::new(key))))
    }

    /// Seals `plain` for the purpose `context` (bound as associated data, so a value sealed
    /// for one purpose cannot be opened as another): base64url(nonce ‖ ciphertext ‖ tag).
    pub fn seal(&self, context: &str, plain: &[u8]) -> Result<String, SecretError> {
        let nonce = random_bytes::<NONCE_LEN>()?;
        let mut buffer = plain.to_vec();
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context.as_bytes()),
                &mut buffer,
            )
            .map_err(|_| SecretError::Random)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buffer);
        Ok(URL_SAFE_NO_PAD.encode(out))
    }

    pub fn open(&self, context: &str, sealed: &str) -> Result<Vec<u8>, SecretError> {
        let raw = URL_SAFE_NO_PAD
            .decode(sealed)
            .map_err(|_| SecretError::Unseal)?;
        if raw.len() < NONCE_LEN {
            return Err(SecretError::Unseal);
        }
        let (nonce, rest) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SecretError::Unseal)?;
        let mut buffer = rest.to_vec();
        let plain = self
            .0
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut buffer)
            .map_err(|_| SecretError::Unseal)?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    #[test]
    fn sealing_round_trips_and_binds_the_context() {
        let key = MasterKey::parse(KEY).unwrap();
        let sealed = key.seal("totp", b"secret").unwrap();
        assert_eq!(key.open("totp", &sealed).unwrap(), b"secret");
        assert_eq!(key.open("signing-key", &sealed), Err(SecretError::Unseal));
        let other = MasterKey::parse(&"ab".repeat(32)).unwrap();
        assert_eq!(other.open("totp", &sealed), Err(SecretError::Unseal));
        assert_ne!(key.seal("totp", b"secret").unwrap(), sealed, "fresh nonce");
    }

    #[test]
    fn master_keys_must_be_256_bits() {
        assert!(MasterKey::parse("c2hvcnQ=").is_err());
        assert!(MasterKey::parse("not base64 at all!").is_err());
        let b64 = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        assert!(MasterKey::parse(&b64).is_ok());
    }

    #[test]
    fn tokens_are_random_and_digests_stable() {
        let a = token("rt_").unwrap();
        assert!(a.starts_with("rt_") && a.len() == 3 + 43);
        assert_ne!(a, token("rt_").unwrap());
        assert_eq!(digest("x"), digest("x"));
        assert!(digest_eq(&digest("x"), &digest("x")));
        assert!(!digest_eq(&digest("x"), &digest("y")));
    }
}
