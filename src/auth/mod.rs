//! Authentication building blocks: password hashing, TOTP, bootstrap, the login and refresh
//! flows, rate limiting.

pub mod bootstrap;
pub mod flows;
pub mod password;
pub mod rate_limit;
pub mod totp;
