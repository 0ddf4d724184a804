//! Aggregates: state + commands + a pure `decide` and `apply`. No I/O happens here; whatever
//! a decision needs from outside its own stream is loaded beforehand and passed in the command.

pub mod assignment;
pub mod delegation;
pub mod group;
pub mod keyring;
pub mod permission_registry;
pub mod role;
pub mod service_account;
pub mod session;
pub mod tenant;
pub mod token;
pub mod user;
pub mod validate;
pub mod workspace;

#[cfg(test)]
pub mod testing;

use charter_events::{DomainEvent, Scoped};

/// Why a decision refused a command, in terms every layer above understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub kind: RejectionKind,
    /// Stable, kebab-case reason (`parent-not-found`); the problem `type` is built from it.
    pub code: &'static str,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectionKind {
    /// The target does not exist (or must look as if it did not).
    NotFound,
    /// The target's current state forbids the command.
    Conflict,
    /// The command is well-formed but breaks a rule about other aggregates or values.
    Invalid,
    /// The caller may run this kind of command, but not this one: it would hand out more
    /// than the caller holds ([`delegation`]).
    Forbidden,
}

impl Rejection {
    pub fn new(kind: RejectionKind, code: &'static str, message: impl ToString) -> Self {
        Self {
            kind,
            code,
            message: message.to_string(),
        }
    }
}

/// An event-sourced aggregate. `State::default()` is the state of an empty stream.
pub trait Aggregate: Default + Clone {
    type Command;
    type Event: DomainEvent + Scoped + Clone;
    type Error: std::error::Error + Into<Rejection>;

    /// Folds one event into the state. Must accept every event `decide` can produce.
    fn apply(self, event: &Self::Event) -> Self;

    /// Decides which events a command produces against the current state.
    /// An empty vector means the command is already satisfied (an idempotent no-op).
    fn decide(&self, command: &Self::Command) -> Result<Vec<Self::Event>, Self::Error>;

    /// Folds a history into the state.
    fn fold<'a>(events: impl IntoIterator<Item = &'a Self::Event>) -> Self
    where
        Self::Event: 'a,
    {
        events.into_iter().fold(Self::default(), Self::apply)
    }
}
