//! The list of every event family, for what needs them all (the schema contract, the relay's
//! internal types). Kept apart from [`crate::catalog`], which every family builds on.

use crate::EventSchema;

/// Every event type Charter can emit, with its current schema and every superseded one. The
/// contract test keeps `schemas/events/` identical to this list.
pub fn all_schemas() -> Vec<EventSchema> {
    let mut all = crate::tenant::TenantEvent::schemas();
    all.extend(crate::workspace::WorkspaceEvent::schemas());
    all.extend(crate::permission::PermissionEvent::schemas());
    all.extend(crate::user::UserEvent::schemas());
    all.extend(crate::group::GroupEvent::schemas());
    all.extend(crate::role::RoleEvent::schemas());
    all.extend(crate::assignment::AssignmentEvent::schemas());
    all.extend(crate::service_account::ServiceAccountEvent::schemas());
    all.extend(crate::session::SessionEvent::schemas());
    all.extend(crate::keyring::KeyringEvent::schemas());
    all.extend(crate::token::TokenEvent::schemas());
    all
}
