//! TOTP second factor (RFC 6238: HMAC-SHA-1, 30-second steps, 6 digits, ±1 step of skew),
//! on the `totp-rs` crate, and the single-use recovery codes that can stand in for it.

use totp_rs::{Algorithm, Secret, TOTP};

use crate::crypto::secrets::{self, SecretError};

pub const DIGITS: usize = 6;
pub const STEP_SECONDS: u64 = 30;
/// Steps accepted either side of the current one.
pub const SKEW: u8 = 1;
pub const RECOVERY_CODES: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum TotpError {
    #[error("invalid TOTP secret: {0}")]
    Secret(String),
    #[error(transparent)]
    Random(#[from] SecretError),
}

/// A user's TOTP generator.
pub struct Totp(TOTP);

impl Totp {
    /// A fresh 160-bit secret, base32 (as authenticator apps expect it).
    pub fn generate_secret() -> Result<String, TotpError> {
        Ok(Secret::Raw(secrets::random_bytes::<20>()?.to_vec())
            .to_encoded()
            .to_string())
    }

    /// `secret` is base32; `issuer` and `account` label the entry in an authenticator app.
    pub fn new(secret: &str, issuer: &str, account: &str) -> Result<Self, TotpError> {
        let bytes = Secret::Encoded(secret.to_owned())
            .to_bytes()
            .map_err(|e| TotpError::Secret(format!("{e:?}")))?;
        // totp-rs refuses ':' in the labels of an otpauth URI.
        let clean = |s: &str| s.replace(':', "_");
        TOTP::new(
            Algorithm::SHA1,
            DIGITS,
            SKEW,
            STEP_SECONDS,
            bytes,
            Some(clean(issuer)),
            clean(account),
        )
        .map(Totp)
        .map_err(|e| TotpError::Secret(e.to_string()))
    }

    /// The `otpauth://totp/...` URI to show as a QR code.
    pub fn uri(&self) -> String {
        self.0.get_url()
    }

    /// The code of time step `step`.
    pub fn code_at_step(&self, step: u64) -> String {
        self.0.generate(step * STEP_SECONDS)
    }

    /// The time step `code` belongs to, searched within the skew window around `unix_time`
    /// and compared in constant time; `None` when it matches none.
    pub fn matching_step(&self, code: &str, unix_time: u64) -> Option<u64> {
        if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let now = unix_time / STEP_SECONDS;
        let skew = u64::from(SKEW);
        let mut found = None;
        for step in now.saturating_sub(skew)..=now + skew {
            let expected = self.code_at_step(step);
            if secrets::digest_eq(&expected, code) {
                found = Some(step);
            }
        }
        found
    }
}

/// Ten fresh recovery codes (`xxxx-xxxx-xxxx-xxxx`, 80 random bits each) and their digests.
pub fn recovery_codes() -> Result<(Vec<String>, Vec<String>), SecretError> {
    let mut codes = Vec::with_capacity(RECOVERY_CODES);
    for _ in 0..RECOVERY_CODES {
        let raw = Secret::Raw(secrets::random_bytes::<10>()?.to_vec())
            .to_encoded()
            .to_string()
            .to_lowercase();
        let grouped: Vec<&str> = (0..4).map(|i| &raw[i * 4..i * 4 + 4]).collect();
        codes.push(grouped.join("-"));
    }
    let digests = codes.iter().map(|c| recovery_digest(c)).collect();
    Ok((codes, digests))
}

/// The digest of a recovery code as typed: case, spaces and dashes do not matter.
pub fn recovery_digest(code: &str) -> String {
    let normal: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    secrets::digest(&normal)
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 6238 appendix B's SHA-1 seed, "12345678901234567890", in base32.
    const RFC_SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

    #[test]
    fn matches_the_rfc_6238_test_vectors() {
        let totp = Totp::new(RFC_SECRET, "Charter", "alice").unwrap();
        // T = 59 s -> 94287082 (8 digits); the 6-digit code is its last six digits.
        assert_eq!(totp.code_at_step(59 / STEP_SECONDS), "287082");
        assert_eq!(totp.code_at_step(1_111_111_109 / STEP_SECONDS), "081804");
        assert_eq!(totp.code_at_step(2_000_000_000 / STEP_SECONDS), "279037");
    }

    #[test]
    fn accepts_one_step_of_skew_and_names_the_step() {
        let totp = Totp::new(RFC_SECRET, "Charter", "alice").unwrap();
        let now = 1_700_000_000;
        let step = now / STEP_SECONDS;
        for delta in [-1i64, 0, 1] {
            let s = (step as i64 + delta) as u64;
            assert_eq!(totp.matching_step(&totp.code_at_step(s), now), Some(s));
        }
        assert_eq!(totp.matching_step(&totp.code_at_step(step + 2), now), None);
        assert_eq!(totp.matching_step("12345", now), None);
        assert_eq!(totp.matching_step("abcdef", now), None);
    }

    #[test]
    fn uris_and_recovery_codes() {
        let secret = Totp::generate_secret().unwrap();
        let totp = Totp::new(&secret, "Charter", "acme:alice").unwrap();
        assert!(totp.uri().starts_with("otpauth://totp/"), "{}", totp.uri());
        let (codes, digests) = recovery_codes().unwrap();
        assert_eq!(codes.len(), RECOVERY_CODES);
        assert_eq!(
            digests[3],
            recovery_digest(&codes[3].to_uppercase().replace('-', " "))
        );
        let unique: std::collections::BTreeSet<_> = codes.iter().collect();
        assert_eq!(unique.len(), RECOVERY_CODES);
    }
}
