//! The resource handlers, one file per resource of the URL tree. Each handler's
//! `#[utoipa::path]` documents it; the route table ([`super::routes`]) serves it.

pub mod account;
pub mod assignments;
pub mod audit;
pub mod auth;
pub mod entitlements;
pub mod groups;
pub mod keys;
pub mod mfa;
pub mod oauth;
pub mod ops;
pub mod permissions;
mod reads;
pub mod roles;
pub mod service_accounts;
pub mod tenants;
pub mod users;
pub mod wellknown;
pub mod workspaces;
