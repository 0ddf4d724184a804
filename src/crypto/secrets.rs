//! Opaque secrets: random bytes, random tokens and their digests, and the error of everything
//! in [`crate::crypto`].
//!
//! Refresh tokens, client secrets and recovery codes carry at least 80 random bits, so a
//! plain SHA-256 digest stores them safely (a slow hash only helps low-entropy passwords).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};

/// Why a secret could not be made, sealed or opened.
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

#[cfg(test)]
mod tests {
    use super::*;

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
