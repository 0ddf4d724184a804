//! Tokens: ES256 signing keys (ring, sealed at rest), access-token claims, minting, and the
//! one verification function the HTTP extractor, introspection and the benchmark all use.

pub mod keys;
pub mod mint;
pub mod verifier;

/// The claims are a public contract, shared with the SDK: they live in `charter-events`.
pub use charter_events::access_token as claims;
pub use charter_events::access_token::{Claims, PrincipalKind};
pub use keys::KeyStore;
pub use verifier::{TokenError, Verifier};
