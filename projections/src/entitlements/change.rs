//! What an event changes in the entitlement model: [`changes`], the pure function that both
//! the SQL writes and the in-process index apply.

use charter_events::assignment::{AssignmentEvent, SubjectType};
use charter_events::group::GroupEvent;
use charter_events::role::RoleEvent;
use charter_events::service_account::ServiceAccountEvent;
use charter_events::tenant::TenantEvent;
use charter_events::user::UserEvent;
use charter_events::workspace::WorkspaceEvent;
use charter_events::RecordedEvent;
use uuid::Uuid;

use crate::projection::{decode, ProjectionError};

/// One change to the entitlement model, in the tenant of the event that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    TenantCreated(Uuid),
    TenantActive(bool),
    WorkspaceCreated(Uuid),
    WorkspaceDeleted(Uuid),
    /// A user or a service account (principals share one id space).
    PrincipalCreated(Uuid),
    PrincipalActive(Uuid, bool),
    PrincipalDeleted(Uuid),
    GroupCreated(Uuid),
    /// The group and all its memberships go.
    GroupDeleted(Uuid),
    MemberAdded {
        group: Uuid,
        user: Uuid,
    },
    MemberRemoved {
        group: Uuid,
        user: Uuid,
    },
    RoleCreated {
        role: Uuid,
        workspace: Option<Uuid>,
        permissions: Vec<String>,
    },
    PermissionsGranted {
        role: Uuid,
        permissions: Vec<String>,
    },
    PermissionsRevoked {
        role: Uuid,
        permissions: Vec<String>,
    },
    RoleDeleted(Uuid),
    Bound(Binding),
    Unbound {
        assignment: Uuid,
        subject: Uuid,
    },
}

/// A subject's role in a scope (`workspace: None` is tenant-wide).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Binding {
    pub assignment: Uuid,
    pub subject: Uuid,
    pub subject_kind: SubjectKind,
    pub role: Uuid,
    pub workspace: Option<Uuid>,
}

/// Service accounts are principals like users: their bindings are stored as user bindings
/// (ids never collide).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SubjectKind {
    Principal,
    Group,
}

impl SubjectKind {
    pub fn of(t: SubjectType) -> Self {
        match t {
            SubjectType::User | SubjectType::ServiceAccount => SubjectKind::Principal,
            SubjectType::Group => SubjectKind::Group,
        }
    }

    /// How `ent_assignments.subject_type` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            SubjectKind::Principal => "user",
            SubjectKind::Group => "group",
        }
    }
}

/// What `e` changes in the entitlement model (nothing, for events it does not depend on).
pub fn changes(e: &RecordedEvent) -> Result<Vec<Change>, ProjectionError> {
    use Change as C;
    let change = match e.stream_type.as_str() {
        "tenant" => match decode::<TenantEvent>(e)? {
            TenantEvent::Created(c) => C::TenantCreated(c.tenant_id),
            TenantEvent::Blocked(_) | TenantEvent::Deleted(_) => C::TenantActive(false),
            TenantEvent::Unblocked(_) => C::TenantActive(true),
            TenantEvent::Renamed(_) | TenantEvent::Moved(_) => return Ok(vec![]),
        },
        "workspace" => match decode::<WorkspaceEvent>(e)? {
            WorkspaceEvent::Created(c) => C::WorkspaceCreated(c.workspace_id),
            WorkspaceEvent::Deleted(d) => C::WorkspaceDeleted(d.workspace_id),
            WorkspaceEvent::Renamed(_) => return Ok(vec![]),
        },
        "user" => {
            let event = decode::<UserEvent>(e)?;
            let u = event.user_id();
            match event {
                UserEvent::Created(_) => C::PrincipalCreated(u),
                UserEvent::Disabled(_) => C::PrincipalActive(u, false),
                UserEvent::Enabled(_) => C::PrincipalActive(u, true),
                UserEvent::Deleted(_) => C::PrincipalDeleted(u),
                _ => return Ok(vec![]),
            }
        }
        "service_account" => {
            let event = decode::<ServiceAccountEvent>(e)?;
            let (u, _) = event.ids();
            match event {
                ServiceAccountEvent::Created(_) => C::PrincipalCreated(u),
                ServiceAccountEvent::Disabled(_) => C::PrincipalActive(u, false),
                ServiceAccountEvent::Enabled(_) => C::PrincipalActive(u, true),
                ServiceAccountEvent::Deleted(_) => C::PrincipalDeleted(u),
                _ => return Ok(vec![]),
            }
        }
        "group" => match decode::<GroupEvent>(e)? {
            GroupEvent::Created(c) => C::GroupCreated(c.group_id),
            GroupEvent::MemberAdded(m) => C::MemberAdded {
                group: m.group_id,
                user: m.user_id,
            },
            GroupEvent::MemberRemoved(m) => C::MemberRemoved {
                group: m.group_id,
                user: m.user_id,
            },
            GroupEvent::Deleted(d) => C::GroupDeleted(d.group_id),
        },
        "role" => match decode::<RoleEvent>(e)? {
            RoleEvent::Created(c) => C::RoleCreated {
                role: c.role_id,
                workspace: c.workspace_id,
                permissions: c.permissions,
            },
            RoleEvent::PermissionsGranted(g) => C::PermissionsGranted {
                role: g.role_id,
                permissions: g.permissions,
            },
            RoleEvent::PermissionsRevoked(r) => C::PermissionsRevoked {
                role: r.role_id,
                permissions: r.permissions,
            },
            RoleEvent::Deleted(d) => C::RoleDeleted(d.role_id),
            RoleEvent::Renamed(_) => return Ok(vec![]),
        },
        "assignment" => match decode::<AssignmentEvent>(e)? {
            AssignmentEvent::Created(c) => C::Bound(Binding {
                assignment: c.assignment_id,
                subject: c.subject_id,
                subject_kind: SubjectKind::of(c.subject_type),
                role: c.role_id,
                workspace: c.workspace_id,
            }),
            AssignmentEvent::Deleted(d) => C::Unbound {
                assignment: d.assignment_id,
                subject: d.subject_id,
            },
        },
        _ => return Ok(vec![]),
    };
    Ok(vec![change])
}
