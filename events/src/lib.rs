//! Charter's public contracts: the event catalogue, the policy topic, and the access token.
//!
//! Every state change in Charter is one of the past-tense, versioned events defined here.
//! The crate has no web or database dependencies so that consuming services can decode
//! the CloudEvents Charter publishes, the policy topic's counters and the tokens Charter
//! mints with the same types Charter writes. Feature `jwt` adds the ring-backed
//! cryptography jsonwebtoken verifies Charter's ES256 tokens with.
#![forbid(unsafe_code)]

pub mod access_token;
pub mod assignment;
pub mod catalog;
pub mod cloudevent;
pub mod envelope;
pub mod group;
pub mod iam;
#[cfg(feature = "jwt")]
pub mod jwt;
pub mod keyring;
pub mod permission;
pub mod policy;
pub mod role;
pub mod schemas;
pub mod service_account;
pub mod session;
pub mod streams;
pub mod tenant;
pub mod token;
pub mod user;
pub mod workspace;

pub use catalog::{DecodeError, DomainEvent, EventSchema, Scoped};
pub use envelope::{Metadata, RecordedEvent};
pub use iam::IamEvent;
