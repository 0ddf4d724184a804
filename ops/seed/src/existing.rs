//! What the database already holds that a generated history must fit around.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};

use crate::world::Platform;

/// What the database already holds that the history must fit around.
#[derive(Debug, Default, Clone)]
pub struct Existing {
    /// The administrator granted platform access (the bootstrap's), if any.
    pub platform: Option<Platform>,
    /// Registry streams by service: name → label, and the stream's version.
    pub registries: HashMap<String, (BTreeMap<String, String>, i64)>,
    /// `permission.name` claims: name → holding stream.
    pub permission_holders: HashMap<String, String>,
    pub slugs: HashSet<String>,
    pub last_recorded_at: Option<DateTime<Utc>>,
}

impl Existing {
    pub fn registry(&self, service: &str) -> (BTreeMap<String, String>, i64) {
        self.registries.get(service).cloned().unwrap_or_default()
    }
}
