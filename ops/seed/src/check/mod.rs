//! An independent check that a log is one the command side could have written, whoever wrote
//! it (the generator, or the service itself).
//!
//! It walks the log in global order, one command at a time (consecutive events of one
//! transaction with one correlation id), and for each command:
//! - checks every stream's versions run 1, 2, 3… in global order, and the row's scope
//!   columns agree with its event;
//! - rebuilds the command the service would have decided, with the facts its `prepare` would
//!   have loaded (tenant status, parent and ancestors, live workspaces, users, groups and
//!   roles, registered permissions), runs the real aggregate's `decide` and requires exactly
//!   the recorded events back;
//! - applies the uniqueness claims the real handlers' `claims()` take and release, failing on
//!   a value held by another stream, and mirrors the tenant hierarchy;
//! - validates names, slugs, usernames and emails like the HTTP layer.
//!
//! Its final claims and hierarchy can then be compared with `unique_claims` and
//! `tenant_hierarchy`. Streams of kinds the generator does not write (keys, tokens, service
//! accounts) are only version-checked.

mod principals;
mod structure;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Debug;

use charter_events::{DomainEvent, RecordedEvent, Scoped};
use uuid::Uuid;

use charter::domain::assignment::Assignment;
use charter::domain::group::Group;
use charter::domain::permission_registry::PermissionRegistry;
use charter::domain::role::Role;
use charter::domain::session::Session;
use charter::domain::tenant::{Tenant, TenantStatus};
use charter::domain::user::User;
use charter::domain::validate::FieldError;
use charter::domain::workspace::Workspace;
use charter::domain::Aggregate;
use charter::store::claims::ClaimChange;

#[derive(Debug, thiserror::Error)]
#[error("event at position {position} ({event_type} v{schema_version} on {stream_id}): {message}")]
pub struct CheckError {
    pub position: i64,
    pub event_type: String,
    pub schema_version: i32,
    pub stream_id: String,
    pub message: String,
}

/// What the checked log leaves behind on the write side.
#[derive(Debug, Default)]
pub struct CheckReport {
    pub events: u64,
    pub commands: u64,
    /// `(claim_scope, claim_value, stream_id)`, as `unique_claims` should hold them.
    pub claims: BTreeSet<(String, String, String)>,
    /// As `tenant_hierarchy` should hold it.
    pub hierarchy: BTreeMap<Uuid, Option<Uuid>>,
}

#[derive(Default)]
pub struct LogChecker {
    tenants: HashMap<Uuid, Tenant>,
    hierarchy: HashMap<Uuid, Option<Uuid>>,
    workspaces: HashMap<Uuid, Workspace>,
    users: HashMap<Uuid, User>,
    groups: HashMap<Uuid, Group>,
    roles: HashMap<Uuid, Role>,
    assignments: HashMap<Uuid, Assignment>,
    sessions: HashMap<Uuid, Session>,
    registries: HashMap<String, PermissionRegistry>,
    claims: HashMap<(String, String), String>,
    versions: HashMap<String, i64>,
    command: Vec<RecordedEvent>,
    command_key: Option<(i64, Uuid)>,
    events: u64,
    commands: u64,
}

type Checked = Result<(), String>;

impl LogChecker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the next event of the log, in `(tx_id, position)` order.
    pub fn feed(&mut self, e: RecordedEvent) -> Result<(), CheckError> {
        let key = (e.tx_id, e.metadata.correlation_id);
        if self.command_key != Some(key) {
            self.flush()?;
            self.command_key = Some(key);
        }
        let expected = self.versions.get(&e.stream_id).copied().unwrap_or(0) + 1;
        if e.stream_version != expected {
            let message = format!(
                "stream version {} where {expected} was next",
                e.stream_version
            );
            return Err(error(&e, message));
        }
        self.versions.insert(e.stream_id.clone(), expected);
        self.events += 1;
        self.command.push(e);
        Ok(())
    }

    pub fn finish(mut self) -> Result<CheckReport, CheckError> {
        self.flush()?;
        let claims = (self.claims.into_iter())
            .map(|((scope, value), stream)| (scope, value, stream))
            .collect();
        Ok(CheckReport {
            events: self.events,
            commands: self.commands,
            claims,
            hierarchy: self.hierarchy.into_iter().collect(),
        })
    }

    fn flush(&mut self) -> Result<(), CheckError> {
        let events = std::mem::take(&mut self.command);
        let Some(first) = events.first() else {
            return Ok(());
        };
        self.commands += 1;
        let checked = match first.stream_type.as_str() {
            "tenant" => self.tenant(&events),
            "workspace" => self.workspace(&events),
            "permission_registry" => self.registry(&events),
            "role" => self.role(&events),
            "user" => self.user(&events),
            "group" => self.group(&events),
            "assignment" => self.assignment(&events),
            "session" => self.session(&events),
            _ => Ok(()),
        };
        checked.map_err(|message| error(first, message))
    }

    fn tenant_status(&self, tenant_id: Uuid) -> Option<TenantStatus> {
        self.tenants
            .get(&tenant_id)
            .and_then(|t| t.0.as_ref())
            .map(|t| t.status)
    }

    /// Applies claim changes like `store::claims::apply`: claims first, then releases.
    fn claim(&mut self, stream_id: &str, changes: Vec<ClaimChange>) -> Checked {
        let (claims, releases): (Vec<ClaimChange>, Vec<ClaimChange>) = changes
            .into_iter()
            .partition(|c| matches!(c, ClaimChange::Claim { .. }));
        for change in claims.into_iter().chain(releases) {
            match change {
                ClaimChange::Claim { scope, value } => {
                    let key = (scope, value.to_lowercase());
                    if let Some(holder) = self.claims.get(&key) {
                        return Err(format!("{} {:?} is already held by {holder}", key.0, key.1));
                    }
                    self.claims.insert(key, stream_id.to_owned());
                }
                ClaimChange::Release { scope, value } => {
                    let key = (scope, value.to_lowercase());
                    if self.claims.get(&key).is_some_and(|s| s == stream_id) {
                        self.claims.remove(&key);
                    }
                }
            }
        }
        Ok(())
    }

    fn registered(&self, permissions: &BTreeSet<String>) -> Vec<String> {
        let scope = charter_events::streams::PERMISSION_NAME_SCOPE;
        (permissions.iter())
            .filter(|p| !self.claims.contains_key(&(scope.to_owned(), p.to_string())))
            .cloned()
            .collect()
    }
}

fn error(e: &RecordedEvent, message: String) -> CheckError {
    CheckError {
        position: e.position,
        event_type: e.event_type.clone(),
        schema_version: e.schema_version,
        stream_id: e.stream_id.clone(),
        message,
    }
}

/// Decodes the events of one stream, checking their rows' stream and scope columns.
fn decode<E: DomainEvent + Scoped>(
    events: &[RecordedEvent],
    stream_id: impl Fn(&E) -> String,
) -> Result<Vec<E>, String> {
    events
        .iter()
        .map(|e| {
            let event = E::decode(&e.event_type, e.schema_version as u32, e.data.clone())
                .map_err(|e| e.to_string())?;
            if e.stream_type != E::STREAM_TYPE || e.stream_id != stream_id(&event) {
                return Err(format!(
                    "belongs to stream {}, not {}",
                    stream_id(&event),
                    e.stream_id
                ));
            }
            if e.tenant_id != event.tenant_id() || e.workspace_id != event.workspace_id() {
                return Err(format!(
                    "row scope {}/{:?} differs from the event's",
                    e.tenant_id, e.workspace_id
                ));
            }
            Ok(event)
        })
        .collect()
}

/// Runs `decide` and requires exactly `recorded` back; returns the state after them.
fn decided<A: Aggregate>(
    state: &A,
    command: &A::Command,
    recorded: &[A::Event],
) -> Result<A, String>
where
    A::Event: PartialEq + Debug,
    A::Command: Debug,
{
    let events = state
        .decide(command)
        .map_err(|e| format!("decide refuses {command:?}: {e}"))?;
    if events != recorded {
        return Err(format!(
            "decide({command:?}) appends {events:?}, the log has {recorded:?}"
        ));
    }
    Ok(recorded.iter().fold(state.clone(), |s, e| s.apply(e)))
}

/// A value the HTTP layer would accept unchanged.
fn valid(check: fn(&str, &str, &mut Vec<FieldError>) -> String, value: &str) -> Checked {
    let mut errors = Vec::new();
    let normalized = check("value", value, &mut errors);
    match errors.first() {
        Some(e) => Err(format!("{value:?} {}", e.message)),
        None if normalized != value => Err(format!("{value:?} is not normalized")),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use charter_events::streams::stream_id;
    use charter_events::Metadata;

    use super::*;
    use crate::make;
    use charter::domain::role::{seeded, templates};

    /// A log written one command per transaction.
    struct Log(Vec<RecordedEvent>);

    impl Log {
        fn command<E: DomainEvent + Scoped>(&mut self, events: &[(Uuid, E)]) -> &mut Self {
            let correlation_id = Uuid::now_v7();
            let tx_id = self.0.len() as i64 + 1;
            for (id, event) in events {
                let stream = stream_id(E::STREAM_TYPE, *id);
                let version = self.0.iter().filter(|e| e.stream_id == stream).count() as i64 + 1;
                self.0.push(RecordedEvent {
                    position: self.0.len() as i64 + 1,
                    tx_id,
                    event_id: Uuid::now_v7(),
                    stream_type: E::STREAM_TYPE.into(),
                    stream_id: stream,
                    stream_version: version,
                    tenant_id: event.tenant_id(),
                    workspace_id: event.workspace_id(),
                    event_type: event.event_type().into(),
                    schema_version: event.schema_version() as i32,
                    data: event.to_data(),
                    metadata: Metadata {
                        actor: "test".into(),
                        correlation_id,
                        ..Metadata::default()
                    },
                    recorded_at: chrono::Utc::now(),
                });
            }
            self
        }

        /// A tenant with its system roles, as one command.
        fn tenant(&mut self, t: Uuid) -> &mut Self {
            self.command(&[(t, make::tenant_created(t, "Acme", "acme", None))]);
            let roles = templates().into_iter().map(|(name, p)| {
                let id = Uuid::now_v7();
                (id, seeded(id, t, name, p))
            });
            let roles: Vec<_> = roles.collect();
            let n = self.0.len();
            self.command(&roles);
            let (tx_id, correlation_id) =
                (self.0[n - 1].tx_id, self.0[n - 1].metadata.correlation_id);
            for e in &mut self.0[n..] {
                e.tx_id = tx_id;
                e.metadata.correlation_id = correlation_id;
            }
            self
        }

        fn check(&self) -> Result<CheckReport, CheckError> {
            let mut checker = LogChecker::new();
            for e in &self.0 {
                checker.feed(e.clone())?;
            }
            checker.finish()
        }
    }

    fn user(t: Uuid, u: Uuid, username: &str) -> (Uuid, charter_events::user::UserEvent) {
        (
            u,
            make::user_created(u, t, username, &format!("{u}@x.example"), None, false),
        )
    }

    #[test]
    fn a_valid_log_passes_with_its_claims() {
        let t = Uuid::now_v7();
        let report = Log(vec![])
            .tenant(t)
            .command(&[user(t, Uuid::now_v7(), "alice")])
            .check()
            .unwrap();
        assert_eq!((report.events, report.commands), (5, 2));
        // The slug, three system role names, a username and an email.
        assert_eq!(report.claims.len(), 6, "{:?}", report.claims);
        assert_eq!(report.hierarchy.get(&t), Some(&None));
    }

    #[test]
    fn what_the_command_side_refuses_fails_the_check() {
        let t = Uuid::now_v7();
        let taken = Log(vec![])
            .tenant(t)
            .command(&[user(t, Uuid::now_v7(), "alice")])
            .command(&[user(t, Uuid::now_v7(), "ALICE")])
            .check()
            .unwrap_err();
        assert!(taken.message.contains("already held"), "{taken}");

        let w = Uuid::now_v7();
        let blocked = Log(vec![])
            .tenant(t)
            .command(&[(t, make::tenant_blocked(t, None))])
            .command(&[(w, make::workspace_created(w, t, "production"))])
            .check()
            .unwrap_err();
        assert!(blocked.message.contains("blocked"), "{blocked}");

        let mut log = Log(vec![]);
        log.tenant(t);
        log.0.remove(0);
        // System roles without their tenant.
        log.check().unwrap_err();

        let g = Uuid::now_v7();
        let stranger = Log(vec![])
            .tenant(t)
            .command(&[(g, make::group_created(g, t, "admins"))])
            .command(&[(g, make::group_member_added(g, t, Uuid::now_v7()))])
            .check()
            .unwrap_err();
        assert!(stranger.message.contains("not found"), "{stranger}");
    }
}
