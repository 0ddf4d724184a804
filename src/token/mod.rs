//! Tokens: ES256 signing keys (ring, sealed at rest), access-token claims, minting, and the
//! one verification function the HTTP extractor, introspection and the benchmark all use.

pub mod claims;
pub mod crypto;
pub mod keys;
pub mod mint;
pub mod verifier;

pub use claims::{Claims, PrincipalKind};
pub use keys::KeyStore;
pub use verifier::{TokenError, Verifier};
