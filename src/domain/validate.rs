//! Value rules shared by the aggregates' inputs. The HTTP layer reports every violated rule
//! at once as a 422 with one entry per field.

/// One field that broke a rule.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// The field's path in the body (`permissions[2].name`); empty for the body as a whole.
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

pub const MAX_NAME_CHARS: usize = 200;
pub const MAX_SLUG_CHARS: usize = 63;

/// A display name: trimmed, 1..=200 characters, no control characters.
pub fn name(field: &str, raw: &str, errors: &mut Vec<FieldError>) -> String {
    let value = raw.trim();
    if value.is_empty() {
        errors.push(FieldError::new(field, "must not be empty"));
    } else if value.chars().count() > MAX_NAME_CHARS {
        errors.push(FieldError::new(
            field,
            format!("must be at most {MAX_NAME_CHARS} characters"),
        ));
    } else if value.chars().any(char::is_control) {
        errors.push(FieldError::new(
            field,
            "must not contain control characters",
        ));
    }
    value.to_owned()
}

/// Something a caller presents to be checked or looked up, never stored as given (a
/// password, a code, a token, the tenant or username of a login): only bounded, at most
/// `max` characters.
pub fn bounded(field: &str, raw: &str, max: usize, errors: &mut Vec<FieldError>) {
    if raw.chars().count() > max {
        errors.push(FieldError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
}

/// A slug: 2..=63 characters of `a-z`, `0-9` and `-`, starting with a letter, not ending in `-`.
pub fn slug(field: &str, raw: &str, errors: &mut Vec<FieldError>) -> String {
    let ok = (2..=MAX_SLUG_CHARS).contains(&raw.len())
        && raw.starts_with(|c: char| c.is_ascii_lowercase())
        && !raw.ends_with('-')
        && raw
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !ok {
        errors.push(FieldError::new(
            field,
            "must be 2-63 characters of a-z, 0-9 and '-', start with a letter and not end with '-'",
        ));
    }
    raw.to_owned()
}

/// An optional free-text reason: at most 1,000 characters.
pub fn reason(field: &str, raw: Option<&str>, errors: &mut Vec<FieldError>) -> Option<String> {
    let value = raw.map(str::trim).filter(|s| !s.is_empty())?;
    if value.chars().count() > 1000 {
        errors.push(FieldError::new(field, "must be at most 1000 characters"));
    } else if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        errors.push(FieldError::new(
            field,
            "must not contain control characters",
        ));
    }
    Some(value.to_owned())
}

/// A username: 1-64 characters of letters, digits, `.`, `_`, `-` and `@`.
pub fn username(field: &str, raw: &str, errors: &mut Vec<FieldError>) -> String {
    let ok = (1..=64).contains(&raw.chars().count())
        && raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if !ok {
        errors.push(FieldError::new(
            field,
            "must be 1-64 characters of letters, digits, '.', '_', '-' and '@'",
        ));
    }
    raw.to_owned()
}

/// An email address: `local@domain`, at most 254 characters, no spaces or control characters.
/// (Deliverability is for a verification flow to prove, not for a regular expression.)
pub fn email(field: &str, raw: &str, errors: &mut Vec<FieldError>) -> String {
    let value = raw.trim();
    let ok = value.len() <= 254
        && !value.chars().any(|c| c.is_whitespace() || c.is_control())
        && value.rsplit_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        });
    if !ok {
        errors.push(FieldError::new(field, "must be an email address"));
    }
    value.to_owned()
}

/// What [`permission_name`] accepts, as a regular expression (for the API's documentation).
pub const PERMISSION_NAME_PATTERN: &str = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$";

/// A permission name: dotted lower-case segments, e.g. `connections.create`.
pub fn permission_name(field: &str, raw: &str, errors: &mut Vec<FieldError>) -> String {
    let segment = |s: &str| {
        s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    };
    let ok = raw.len() <= 200 && raw.split('.').count() >= 2 && raw.split('.').all(segment);
    if !ok {
        errors.push(FieldError::new(
            field,
            format!("must match {PERMISSION_NAME_PATTERN}"),
        ));
    }
    raw.to_owned()
}

/// What [`permission_pattern`] accepts, as a regular expression (for the API's documentation).
pub const PERMISSION_PATTERN_PATTERN: &str =
    r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*\.(\*|[a-z][a-z0-9_]*)$";

/// A permission pattern, as platform grants name them: a permission name, or the dotted
/// segments of a namespace followed by `.*` (`iam.*`, `iam.users.*`), which covers every
/// permission under it. A bare `*` is not one: a grant names its namespace.
pub fn permission_pattern(field: &str, raw: &str, errors: &mut Vec<FieldError>) -> String {
    let name = raw
        .strip_suffix(".*")
        .map_or(raw.to_owned(), |ns| format!("{ns}.x"));
    let mut inner = Vec::new();
    permission_name(field, &name, &mut inner);
    if !inner.is_empty() || raw.len() > 200 {
        errors.push(FieldError::new(
            field,
            format!("must match {PERMISSION_PATTERN_PATTERN}"),
        ));
    }
    raw.to_owned()
}

/// A service name: 1-63 characters of `a-z`, `0-9`, `_` and `-`, starting with a letter.
pub fn service(field: &str, raw: &str, errors: &mut Vec<FieldError>) -> String {
    let ok = (1..=63).contains(&raw.len())
        && raw.starts_with(|c: char| c.is_ascii_lowercase())
        && raw
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if !ok {
        errors.push(FieldError::new(
            field,
            "must be 1-63 characters of a-z, 0-9, '_' and '-', starting with a letter",
        ));
    }
    raw.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        for good in ["acme", "a1", "acme-eu-1"] {
            let mut e = vec![];
            slug("slug", good, &mut e);
            assert!(e.is_empty(), "{good}");
        }
        for bad in [
            "",
            "a",
            "Acme",
            "1acme",
            "acme-",
            "ac me",
            "acmé",
            &"a".repeat(64),
        ] {
            let mut e = vec![];
            slug("slug", bad, &mut e);
            assert_eq!(e.len(), 1, "{bad}");
        }
    }

    #[test]
    fn identities_and_permissions() {
        let check = |f: fn(&str, &str, &mut Vec<FieldError>) -> String, v: &str| {
            let mut e = vec![];
            f("f", v, &mut e);
            e.is_empty()
        };
        assert!(check(username, "alice.smith-1"));
        assert!(!check(username, "alice smith") && !check(username, ""));
        assert!(check(email, "alice@example.com"));
        for bad in [
            "alice",
            "@example.com",
            "alice@example",
            "a b@example.com",
            "alice@.com",
        ] {
            assert!(!check(email, bad), "{bad}");
        }
        assert!(
            check(permission_name, "connections.create")
                && check(permission_name, "iam.users.read")
        );
        for bad in [
            "connections",
            "Connections.create",
            "a..b",
            "a.1b",
            "a.b-c",
            ".a.b",
        ] {
            assert!(!check(permission_name, bad), "{bad}");
        }
        assert!(check(service, "billing-api") && !check(service, "Billing"));
        for good in [
            "iam.*",
            "iam.users.*",
            "iam.users.write",
            "connections.create",
        ] {
            assert!(check(permission_pattern, good), "{good}");
        }
        for bad in [
            "*",
            "iam",
            "iam*",
            "iam.*.write",
            ".*",
            "iam.**",
            "Iam.*",
            "iam. *",
        ] {
            assert!(!check(permission_pattern, bad), "{bad}");
        }
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        let mut e = vec![];
        assert_eq!(name("name", "  Acme  ", &mut e), "Acme");
        assert!(e.is_empty());
        name("name", "   ", &mut e);
        name("name", &"x".repeat(201), &mut e);
        name("name", "a\u{0}b", &mut e);
        assert_eq!(e.len(), 3);
        let mut e = vec![];
        name("name", "Ünïcødé 🚀 '; DROP TABLE events;--", &mut e);
        assert!(e.is_empty());
    }
}
