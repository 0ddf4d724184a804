//! Password hashing: PBKDF2-HMAC-SHA256 from ring, stored as PHC strings
//! (`$pbkdf2-sha256$i=600000$<salt>$<hash>`, unpadded standard base64), and the password
//! policy.

use std::num::NonZeroU32;

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};
use ring::{digest, pbkdf2};

use crate::domain::validate::FieldError;

const ALGORITHM: pbkdf2::Algorithm = pbkdf2::PBKDF2_HMAC_SHA256;
const SALT_LEN: usize = 16;
const HASH_LEN: usize = digest::SHA256_OUTPUT_LEN;
pub const MIN_LENGTH: usize = 12;
pub const MAX_LENGTH: usize = 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasswordError {
    #[error("not a pbkdf2-sha256 PHC string")]
    Malformed,
    #[error("the system random number generator failed")]
    Random,
}

/// Hashes `password` with a fresh random salt.
pub fn hash(password: &str, iterations: NonZeroU32) -> Result<String, PasswordError> {
    let mut salt = [0u8; SALT_LEN];
    SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| PasswordError::Random)?;
    let mut out = [0u8; HASH_LEN];
    pbkdf2::derive(ALGORITHM, iterations, &salt, password.as_bytes(), &mut out);
    Ok(format!(
        "$pbkdf2-sha256$i={iterations}${}${}",
        STANDARD_NO_PAD.encode(salt),
        STANDARD_NO_PAD.encode(out)
    ))
}

/// Checks `password` against a PHC string, in constant time with respect to the hash.
pub fn verify(password: &str, phc: &str) -> Result<bool, PasswordError> {
    let mut parts = phc.split('$');
    let (Some(""), Some("pbkdf2-sha256"), Some(params), Some(salt), Some(hash), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(PasswordError::Malformed);
    };
    let iterations = params
        .strip_prefix("i=")
        .and_then(|i| i.parse::<NonZeroU32>().ok())
        .ok_or(PasswordError::Malformed)?;
    let salt = STANDARD_NO_PAD
        .decode(salt)
        .map_err(|_| PasswordError::Malformed)?;
    let hash = STANDARD_NO_PAD
        .decode(hash)
        .map_err(|_| PasswordError::Malformed)?;
    Ok(pbkdf2::verify(ALGORITHM, iterations, &salt, password.as_bytes(), &hash).is_ok())
}

/// The password policy: at least 12 characters (at most 1,024), and not the username or the
/// email address (ignoring case).
pub fn check_policy(
    field: &str,
    password: &str,
    username: &str,
    email: &str,
    errors: &mut Vec<FieldError>,
) {
    let length = password.chars().count();
    if length < MIN_LENGTH {
        errors.push(FieldError::new(
            field,
            format!("must be at least {MIN_LENGTH} characters"),
        ));
    } else if length > MAX_LENGTH {
        errors.push(FieldError::new(
            field,
            format!("must be at most {MAX_LENGTH} characters"),
        ));
    }
    let lower = password.to_lowercase();
    if lower == username.to_lowercase() || lower == email.to_lowercase() {
        errors.push(FieldError::new(
            field,
            "must not be the username or the email address",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAST: NonZeroU32 = NonZeroU32::new(1_000).unwrap();

    #[test]
    fn hashes_verify_and_are_salted() {
        let a = hash("correct horse battery", FAST).unwrap();
        let b = hash("correct horse battery", FAST).unwrap();
        assert_ne!(a, b, "fresh salt every time");
        assert!(a.starts_with("$pbkdf2-sha256$i=1000$"));
        assert!(verify("correct horse battery", &a).unwrap());
        assert!(!verify("correct horse batterz", &a).unwrap());
    }

    #[test]
    fn rejects_malformed_phc_strings() {
        for bad in [
            "",
            "$argon2id$v=19$x$y",
            "$pbkdf2-sha256$i=0$AA$AA",
            "$pbkdf2-sha256$i=1$!!$AA",
        ] {
            assert_eq!(verify("x", bad), Err(PasswordError::Malformed), "{bad}");
        }
    }

    #[test]
    fn policy() {
        let mut e = vec![];
        check_policy("password", "short", "alice", "a@x.io", &mut e);
        check_policy(
            "password",
            "AliceInWonder",
            "aliceinwonder",
            "a@x.io",
            &mut e,
        );
        check_policy(
            "password",
            "a@example.com",
            "alice",
            "A@EXAMPLE.COM",
            &mut e,
        );
        assert_eq!(e.len(), 3);
        let mut e = vec![];
        check_policy(
            "password",
            "a long enough passphrase",
            "alice",
            "a@x.io",
            &mut e,
        );
        assert!(e.is_empty());
    }
}
