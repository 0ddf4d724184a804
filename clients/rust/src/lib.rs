//! Charter's consumer SDK: a service enforces Charter's decisions locally, without calling
//! Charter on each request.
//!
//! - [`Verifier`] verifies Charter's ES256 access tokens against the JWKS it finds through
//!   OpenID Connect discovery, with the static checks Charter applies itself.
//! - [`PolicyCache`] follows the compacted `charter.iam.policy.v1` topic and refuses a token
//!   minted under an older policy version than the newest one of its scope.
//! - [`Guard`] puts the two together with the permission check; with feature `actix`,
//!   [`actix::require_permission`] protects routes with it.
//! - [`register`] registers the service's permissions at start-up with its service
//!   account's client credentials, and [`events`] consumes `charter.iam.events.v1` for
//!   services that keep their own copies of directory data.
//!
//! What stays with Charter: whatever moves a principal's `account_version` or a tenant's
//! state rather than a policy version is not on the policy topic, so a local check honours it
//! only when the token expires (`auth.access_token_ttl_s`, 15 minutes by default): one token's
//! revocation, logout and logout-all, a password change, an MFA reset, a disabled user, a
//! service account's secret rotation (a leaked secret's tokens live on until they expire) or
//! platform-access change, a blocked tenant. A route that must see those at once calls
//! Charter's introspection endpoint. The cache's staleness is measured against the broker: a
//! Charter whose relay is stalled while the broker is healthy looks current (watch Charter's
//! `charter_relay_lag_seconds`).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "actix")]
pub mod actix;
pub mod events;
pub mod guard;
pub mod policy;
pub mod register;
pub mod verifier;

pub use charter_events::access_token::{Claims, PrincipalKind};
pub use events::{Delivery, EventConsumer, EventConsumerConfig};
pub use guard::{Guard, Refusal};
pub use policy::{OnStale, PolicyCache, PolicyCacheConfig, PolicyHealth};
pub use verifier::{TokenError, Verifier, VerifierConfig};

/// The README's example compiles (`cargo test --doc`).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
