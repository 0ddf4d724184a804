//! Events of the `keyring` aggregate: the platform's JWT signing keys. One stream,
//! `keyring-00000000-0000-0000-0000-000000000000`, in the platform (nil) tenant.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A new ES256 signing key became active. Internal: carries the private key, sealed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SigningKeyActivated {
    pub kid: String,
    /// The P-256 public point, base64url (as in a JWK).
    pub x: String,
    pub y: String,
    /// The PKCS#8 private key, AES-256-GCM sealed with the master key (base64url).
    pub sealed_private_key: String,
    pub activated_at: DateTime<Utc>,
    /// The key it replaces, still published in the JWKS until this moment (when the last
    /// token it signed has expired).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_kid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_valid_until: Option<DateTime<Utc>>,
}

/// The public trace of a rotation: which key is now active.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SigningKeyRotated {
    pub kid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_kid: Option<String>,
}

crate::event_family! {
    /// Every event of the `keyring` aggregate.
    pub enum KeyringEvent for "keyring" {
        Activated(SigningKeyActivated) = "keyring.key_activated" v 1 internal,
        Rotated(SigningKeyRotated) = "keyring.key_rotated" v 1,
    }
}

impl crate::Scoped for KeyringEvent {
    fn tenant_id(&self) -> Uuid {
        Uuid::nil()
    }
}
