//! jsonwebtoken's cryptography, on ring (feature `jwt`), shared by Charter and the
//! `charter-client` SDK. Since version 10 jsonwebtoken takes its signing and
//! verification from a process-wide [`CryptoProvider`]; its own are aws-lc-rs (a large C build)
//! and RustCrypto (about half ring's ES256 speed here). Charter signs and verifies ES256 only,
//! and ring, which it uses already, is the fastest of the three: this provider keeps
//! verification at raw-ring speed (the `token-verify` bar). HMAC is here so that tests can
//! forge the HS256 tokens the verifier must refuse; everything else is refused.
//!
//! [`install`] runs before any key is built or token verified (Charter's key store and
//! verifier, and the SDK's verifier, call it). [`verify_access_token`] is the one check of an
//! access token's signature and static claims that both verifiers run.

use jsonwebtoken::crypto::{CryptoProvider, JwkUtils, JwtSigner, JwtVerifier};
use jsonwebtoken::errors::{Error, ErrorKind};
use jsonwebtoken::jwk::{EllipticCurve, ThumbprintHash};
use jsonwebtoken::signature::{Error as SignatureError, Signer, Verifier};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, EncodingKey};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, UnparsedPublicKey};
use ring::{digest, hmac};

/// Why [`verify_access_token`] refused a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StaticRefusal {
    #[error("the token is not a well-formed JWT")]
    Malformed,
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
}

/// Verifies an access token's ES256 signature with `key` (jsonwebtoken, over the exact
/// bytes), then parses its claims once and holds them to `validation`'s issuer set, audience
/// set and leeway: `exp` not past, `nbf` not ahead. The header's `alg` and `kid` are the
/// caller's to check first, since it chose `key` by the kid. (`jsonwebtoken::decode` does the
/// same work with the header parsed twice more and the payload twice: a tenth of the cost of
/// the one ES256 verification.) Claims missing a required field do not parse.
pub fn verify_access_token(
    token: &str,
    key: &DecodingKey,
    validation: &jsonwebtoken::Validation,
) -> Result<crate::access_token::Claims, StaticRefusal> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let (message, signature) = token.rsplit_once('.').ok_or(StaticRefusal::Malformed)?;
    let (_, payload) = message.split_once('.').ok_or(StaticRefusal::Malformed)?;
    let signed = jsonwebtoken::crypto::verify(signature, message.as_bytes(), key, Algorithm::ES256)
        .map_err(|_| StaticRefusal::Signature)?;
    if !signed {
        return Err(StaticRefusal::Signature);
    }
    let payload = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| StaticRefusal::Malformed)?;
    let claims: crate::access_token::Claims =
        serde_json::from_slice(&payload).map_err(|_| StaticRefusal::Claims)?;
    let now = jsonwebtoken::get_current_timestamp() as i64;
    let leeway = validation.leeway as i64;
    if claims.exp < now.saturating_sub(leeway) {
        return Err(StaticRefusal::Expired);
    }
    if claims.nbf > now.saturating_add(leeway) {
        return Err(StaticRefusal::NotYetValid);
    }
    let issuer = validation
        .iss
        .as_ref()
        .is_some_and(|iss| iss.contains(&claims.iss));
    let audience = validation
        .aud
        .as_ref()
        .is_some_and(|aud| aud.contains(&claims.aud));
    if !(issuer && audience) {
        return Err(StaticRefusal::WrongIssuerOrAudience);
    }
    Ok(claims)
}

static RING: CryptoProvider = CryptoProvider {
    signer_factory: signer,
    verifier_factory: verifier,
    jwk_utils: JwkUtils {
        extract_rsa_public_key_components: |_| {
            Err(ErrorKind::InvalidRsaKey("RSA keys are not supported".into()).into())
        },
        extract_ec_public_key_coordinates: ec_coordinates,
        compute_digest,
    },
};

/// Makes ring jsonwebtoken's provider for this process (idempotent). A provider installed
/// by someone else first is kept: the answer is then `false`, for the caller to report.
pub fn install() -> bool {
    static OURS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *OURS.get_or_init(|| match RING.install_default() {
        Ok(()) => true,
        Err(other) => std::ptr::eq(other, &RING),
    })
}

fn signer(algorithm: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>, Error> {
    Ok(match algorithm {
        Algorithm::ES256 => {
            if key.family() != AlgorithmFamily::Ec {
                return Err(ErrorKind::InvalidKeyFormat.into());
            }
            let pair = EcdsaKeyPair::from_pkcs8(
                &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                key.inner(),
                &SystemRandom::new(),
            )
            .map_err(|_| ErrorKind::InvalidEcdsaKey)?;
            Box::new(Es256Signer(pair))
        }
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
            Box::new(Hmac::new(*algorithm, key.try_get_hmac_secret()?))
        }
        _ => return Err(ErrorKind::InvalidAlgorithm.into()),
    })
}

fn verifier(algorithm: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>, Error> {
    Ok(match algorithm {
        Algorithm::ES256 => {
            if key.family() != AlgorithmFamily::Ec {
                return Err(ErrorKind::InvalidKeyFormat.into());
            }
            Box::new(Es256Verifier(key.as_bytes().to_vec()))
        }
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
            Box::new(Hmac::new(*algorithm, key.try_get_hmac_secret()?))
        }
        _ => return Err(ErrorKind::InvalidAlgorithm.into()),
    })
}

struct Es256Signer(EcdsaKeyPair);

impl Signer<Vec<u8>> for Es256Signer {
    fn try_sign(&self, message: &[u8]) -> Result<Vec<u8>, SignatureError> {
        let signature = self
            .0
            .sign(&SystemRandom::new(), message)
            .map_err(|_| SignatureError::new())?;
        Ok(signature.as_ref().to_vec())
    }
}

impl JwtSigner for Es256Signer {
    fn algorithm(&self) -> Algorithm {
        Algorithm::ES256
    }
}

/// The uncompressed P-256 point.
struct Es256Verifier(Vec<u8>);

impl Verifier<Vec<u8>> for Es256Verifier {
    fn verify(&self, message: &[u8], signature: &Vec<u8>) -> Result<(), SignatureError> {
        UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, &self.0)
            .verify(message, signature)
            .map_err(|_| SignatureError::new())
    }
}

impl JwtVerifier for Es256Verifier {
    fn algorithm(&self) -> Algorithm {
        Algorithm::ES256
    }
}

struct Hmac {
    key: hmac::Key,
    algorithm: Algorithm,
}

impl Signer<Vec<u8>> for Hmac {
    fn try_sign(&self, message: &[u8]) -> Result<Vec<u8>, SignatureError> {
        Ok(hmac::sign(&self.key, message).as_ref().to_vec())
    }
}

impl Verifier<Vec<u8>> for Hmac {
    fn verify(&self, message: &[u8], signature: &Vec<u8>) -> Result<(), SignatureError> {
        hmac::verify(&self.key, message, signature).map_err(|_| SignatureError::new())
    }
}

impl JwtSigner for Hmac {
    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

impl JwtVerifier for Hmac {
    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

impl Hmac {
    /// `algorithm` is one of HS256, HS384, HS512 (the factories match on it first).
    fn new(algorithm: Algorithm, secret: &[u8]) -> Self {
        let digest = match algorithm {
            Algorithm::HS384 => hmac::HMAC_SHA384,
            Algorithm::HS512 => hmac::HMAC_SHA512,
            _ => hmac::HMAC_SHA256,
        };
        Hmac {
            key: hmac::Key::new(digest, secret),
            algorithm,
        }
    }
}

fn ec_coordinates(
    pkcs8: &[u8],
    algorithm: Algorithm,
) -> Result<(EllipticCurve, Vec<u8>, Vec<u8>), Error> {
    if algorithm != Algorithm::ES256 {
        return Err(ErrorKind::InvalidEcdsaKey.into());
    }
    let pair = EcdsaKeyPair::from_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        pkcs8,
        &SystemRandom::new(),
    )
    .map_err(|_| ErrorKind::InvalidEcdsaKey)?;
    let point = pair.public_key().as_ref();
    if point.len() != 65 || point[0] != 4 {
        return Err(ErrorKind::InvalidEcdsaKey.into());
    }
    let (x, y) = point[1..].split_at(32);
    Ok((EllipticCurve::P256, x.to_vec(), y.to_vec()))
}

fn compute_digest(data: &[u8], hash: ThumbprintHash) -> Vec<u8> {
    let algorithm = match hash {
        ThumbprintHash::SHA256 => &digest::SHA256,
        ThumbprintHash::SHA384 => &digest::SHA384,
        ThumbprintHash::SHA512 => &digest::SHA512,
    };
    digest::digest(algorithm, data).as_ref().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn es256_round_trips_and_other_algorithms_are_refused() {
        install();
        let rng = SystemRandom::new();
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                .unwrap();
        let (_, x, y) = ec_coordinates(pkcs8.as_ref(), Algorithm::ES256).unwrap();
        use base64::Engine;
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let encoding = EncodingKey::from_ec_der(pkcs8.as_ref());
        let decoding = DecodingKey::from_ec_components(&b64(&x), &b64(&y)).unwrap();
        let header = jsonwebtoken::Header::new(Algorithm::ES256);
        let claims = serde_json::json!({"sub": "x", "exp": 4_000_000_000u64});
        let token = jsonwebtoken::encode(&header, &claims, &encoding).unwrap();
        let mut validation = jsonwebtoken::Validation::new(Algorithm::ES256);
        validation.required_spec_claims.clear();
        let decoded =
            jsonwebtoken::decode::<serde_json::Value>(&token, &decoding, &validation).unwrap();
        assert_eq!(decoded.claims["sub"], "x");
        // A flipped signature byte fails.
        let mut forged = token.clone().into_bytes();
        let last = forged.len() - 2;
        forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
        let forged = String::from_utf8(forged).unwrap();
        assert!(
            jsonwebtoken::decode::<serde_json::Value>(&forged, &decoding, &validation).is_err()
        );
        assert!(signer(&Algorithm::RS256, &encoding).is_err());
        assert!(verifier(&Algorithm::EdDSA, &decoding).is_err());
    }
}
