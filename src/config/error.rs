//! `ConfigError`: the configuration layer's error. A setting is always named by its key and
//! by both ways to set it, the `--config` file and the `CHARTER_*` variable.

/// What is wrong with the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A setting whose value is malformed or missing.
    #[error("{key}: {problem} ({})", ways_to_set(key))]
    Setting { key: String, problem: String },
    /// A setting that no layer set and that has no usable default.
    #[error("{key}: not set ({})", ways_to_set(key))]
    Missing { key: String },
    /// A key that is not a setting (a misspelling), and the layer that gave it.
    #[error("{key}: no such setting (given in {origin})")]
    Unknown { key: String, origin: String },
    /// A problem no single setting explains, such as an unreadable `--config` file.
    #[error("{0}")]
    Source(String),
    /// Several of the above, in the order figment found them.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Several(Vec<ConfigError>),
}

impl ConfigError {
    /// `key` (e.g. `database.url`) is malformed: `problem` says how.
    pub fn setting(key: &str, problem: impl std::fmt::Display) -> Self {
        ConfigError::Setting {
            key: key.to_owned(),
            problem: problem.to_string(),
        }
    }

    /// `key` was set by no layer, and is needed.
    pub fn missing(key: &str) -> Self {
        ConfigError::Missing {
            key: key.to_owned(),
        }
    }
}

/// The environment variable that sets `key`: `database.tls.mode` is
/// `CHARTER_DATABASE__TLS__MODE`.
pub fn env_var(key: &str) -> String {
    format!("CHARTER_{}", key.to_ascii_uppercase().replace('.', "__"))
}

/// `set KEY in --config FILE, or CHARTER_KEY`.
fn ways_to_set(key: &str) -> String {
    format!("set {key} in --config FILE, or {}", env_var(key))
}

impl From<figment::Error> for ConfigError {
    fn from(errors: figment::Error) -> Self {
        let mut all: Vec<ConfigError> = errors.into_iter().map(one).collect();
        match all.len() {
            1 => all.remove(0),
            _ => ConfigError::Several(all),
        }
    }
}

/// One of figment's errors, named by its key when it has one.
fn one(e: figment::Error) -> ConfigError {
    use figment::error::Kind;
    let path = e.path.join(".");
    // figment's path ends with the field for some kinds of error and not for others.
    let joined = |field: &str| match e.path.last() {
        Some(last) if last == field => path.clone(),
        Some(_) => format!("{path}.{field}"),
        None => field.to_owned(),
    };
    match &e.kind {
        Kind::UnknownField(field, _) => ConfigError::Unknown {
            key: joined(field),
            origin: match &e.metadata {
                Some(m) => match &m.source {
                    Some(source) => format!("{} {source}", m.name),
                    None => m.name.to_string(),
                },
                None => "the configuration".into(),
            },
        },
        Kind::MissingField(field) => ConfigError::missing(&joined(field)),
        kind if !path.is_empty() => ConfigError::setting(&path, kind),
        _ => ConfigError::Source(e.to_string()),
    }
}
