//! Tenants, workspaces, the permission registry, roles, groups and assignments.

use std::collections::BTreeSet;

use charter_events::assignment::{
    AssignmentCreated, AssignmentDeleted, AssignmentEvent, SubjectType,
};
use charter_events::group::{
    GroupCreated, GroupDeleted, GroupEvent, GroupMemberAdded, GroupMemberRemoved,
};
use charter_events::permission::{PermissionEvent, PermissionLabelChanged, PermissionRegistered};
use charter_events::role::{
    RoleCreated, RoleDeleted, RoleEvent, RolePermissionsGranted, RolePermissionsRevoked,
    RoleRenamed,
};
use charter_events::tenant::{
    TenantBlocked, TenantCreated, TenantDeleted, TenantEvent, TenantMoved, TenantRenamed,
    TenantUnblocked,
};
use charter_events::workspace::{
    WorkspaceCreated, WorkspaceDeleted, WorkspaceEvent, WorkspaceRenamed,
};
use uuid::Uuid;

pub fn tenant_created(
    tenant_id: Uuid,
    name: &str,
    slug: &str,
    parent_id: Option<Uuid>,
) -> TenantEvent {
    TenantCreated {
        tenant_id,
        name: name.into(),
        slug: slug.into(),
        parent_id,
    }
    .into()
}

pub fn tenant_renamed(tenant_id: Uuid, name: &str) -> TenantEvent {
    TenantRenamed {
        tenant_id,
        name: name.into(),
    }
    .into()
}

pub fn tenant_moved(
    tenant_id: Uuid,
    parent_id: Option<Uuid>,
    previous_parent_id: Option<Uuid>,
) -> TenantEvent {
    TenantMoved {
        tenant_id,
        parent_id,
        previous_parent_id,
    }
    .into()
}

pub fn tenant_blocked(tenant_id: Uuid, reason: Option<&str>) -> TenantEvent {
    TenantBlocked {
        tenant_id,
        reason: reason.map(str::to_owned),
    }
    .into()
}

pub fn tenant_unblocked(tenant_id: Uuid) -> TenantEvent {
    TenantUnblocked { tenant_id }.into()
}

pub fn tenant_deleted(tenant_id: Uuid) -> TenantEvent {
    TenantDeleted { tenant_id }.into()
}

pub fn workspace_created(workspace_id: Uuid, tenant_id: Uuid, name: &str) -> WorkspaceEvent {
    WorkspaceCreated {
        workspace_id,
        tenant_id,
        name: name.into(),
    }
    .into()
}

pub fn workspace_renamed(workspace_id: Uuid, tenant_id: Uuid, name: &str) -> WorkspaceEvent {
    WorkspaceRenamed {
        workspace_id,
        tenant_id,
        name: name.into(),
    }
    .into()
}

pub fn workspace_deleted(workspace_id: Uuid, tenant_id: Uuid) -> WorkspaceEvent {
    WorkspaceDeleted {
        workspace_id,
        tenant_id,
    }
    .into()
}

pub fn permission_registered(service: &str, name: &str, label: &str) -> PermissionEvent {
    PermissionRegistered {
        service: service.into(),
        name: name.into(),
        label: label.into(),
    }
    .into()
}

pub fn permission_label_changed(
    service: &str,
    name: &str,
    label: &str,
    previous: &str,
) -> PermissionEvent {
    PermissionLabelChanged {
        service: service.into(),
        name: name.into(),
        label: label.into(),
        previous_label: previous.into(),
    }
    .into()
}

/// A custom role (permissions in the order the domain emits them: sorted) or a system role
/// seeded from a template (permissions in the template's order).
pub fn role_created(
    role_id: Uuid,
    tenant_id: Uuid,
    workspace_id: Option<Uuid>,
    name: &str,
    permissions: Vec<String>,
    template: Option<&str>,
) -> RoleEvent {
    RoleCreated {
        role_id,
        tenant_id,
        workspace_id,
        name: name.into(),
        permissions,
        template: template.map(str::to_owned),
    }
    .into()
}

pub fn role_renamed(
    role_id: Uuid,
    tenant_id: Uuid,
    workspace_id: Option<Uuid>,
    name: &str,
) -> RoleEvent {
    RoleRenamed {
        role_id,
        tenant_id,
        workspace_id,
        name: name.into(),
    }
    .into()
}

pub fn role_permissions_granted(
    role_id: Uuid,
    tenant_id: Uuid,
    workspace_id: Option<Uuid>,
    permissions: &BTreeSet<String>,
) -> RoleEvent {
    let permissions = permissions.iter().cloned().collect();
    RolePermissionsGranted {
        role_id,
        tenant_id,
        workspace_id,
        permissions,
    }
    .into()
}

pub fn role_permissions_revoked(
    role_id: Uuid,
    tenant_id: Uuid,
    workspace_id: Option<Uuid>,
    permissions: &BTreeSet<String>,
) -> RoleEvent {
    let permissions = permissions.iter().cloned().collect();
    RolePermissionsRevoked {
        role_id,
        tenant_id,
        workspace_id,
        permissions,
    }
    .into()
}

pub fn role_deleted(role_id: Uuid, tenant_id: Uuid, workspace_id: Option<Uuid>) -> RoleEvent {
    RoleDeleted {
        role_id,
        tenant_id,
        workspace_id,
    }
    .into()
}

pub fn group_created(group_id: Uuid, tenant_id: Uuid, name: &str) -> GroupEvent {
    GroupCreated {
        group_id,
        tenant_id,
        name: name.into(),
    }
    .into()
}

pub fn group_member_added(group_id: Uuid, tenant_id: Uuid, user_id: Uuid) -> GroupEvent {
    GroupMemberAdded {
        group_id,
        tenant_id,
        user_id,
    }
    .into()
}

pub fn group_member_removed(group_id: Uuid, tenant_id: Uuid, user_id: Uuid) -> GroupEvent {
    GroupMemberRemoved {
        group_id,
        tenant_id,
        user_id,
    }
    .into()
}

pub fn group_deleted(group_id: Uuid, tenant_id: Uuid) -> GroupEvent {
    GroupDeleted {
        group_id,
        tenant_id,
    }
    .into()
}

/// What an assignment is: (tenant, workspace, role, subject type, subject).
pub type Grant = (Uuid, Option<Uuid>, Uuid, SubjectType, Uuid);

pub fn assignment_created(assignment_id: Uuid, grant: Grant) -> AssignmentEvent {
    let (tenant_id, workspace_id, role_id, subject_type, subject_id) = grant;
    AssignmentCreated {
        assignment_id,
        tenant_id,
        workspace_id,
        role_id,
        subject_type,
        subject_id,
    }
    .into()
}

pub fn assignment_deleted(assignment_id: Uuid, grant: Grant) -> AssignmentEvent {
    let (tenant_id, workspace_id, role_id, subject_type, subject_id) = grant;
    AssignmentDeleted {
        assignment_id,
        tenant_id,
        workspace_id,
        role_id,
        subject_type,
        subject_id,
    }
    .into()
}
