//! Cryptography below both `auth` and `token`: the master key that seals secrets at rest, and
//! random opaque secrets with their digests.

pub mod master_key;
pub mod secrets;

pub use master_key::MasterKey;
pub use secrets::SecretError;
