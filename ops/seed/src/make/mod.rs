//! One small constructor per event kind, from the typed structs of `charter_events`: the
//! generator never writes an event type name, a schema version or a JSON field by hand.
//! When a payload gains a version (e.g. `user.created` v2 splitting the display name), only
//! its constructor here changes.

mod directory;
mod principal;

pub use directory::*;
pub use principal::*;

/// A person's name as the generator invents it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Person {
    pub given: &'static str,
    pub family: &'static str,
}

impl Person {
    /// What `user.created`'s `display_name` and `user.display_name_changed` carry.
    pub fn display_name(&self) -> String {
        format!("{} {}", self.given, self.family)
    }
}
