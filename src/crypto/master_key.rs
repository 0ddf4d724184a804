//! The master key: AES-256-GCM sealing of secrets at rest (signing keys' private halves, TOTP
//! secrets), each sealed for a purpose bound as associated data.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};

use super::secrets::{random_bytes, SecretError};

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

    /// Opens what [`Self::seal`] sealed for the same `context`; anything else is refused.
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
}
