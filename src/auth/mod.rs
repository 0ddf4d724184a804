//! Authentication building blocks: password hashing, opaque secrets and sealing, TOTP.

pub mod bootstrap;
pub mod flows;
pub mod password;
pub mod rate_limit;
pub mod secrets;
pub mod totp;
