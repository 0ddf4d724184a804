//! The names Charter stores things under: the stream id of every aggregate instance, and the
//! scopes of the uniqueness claims the write side takes in a command's transaction.
//!
//! Stream ids are in every stored event and every published CloudEvent (`stream_id`), so
//! their formats never change. Claim scopes are the `claim_scope` column of `unique_claims`;
//! a claim's value is what is unique within its scope.

use uuid::Uuid;

use crate::assignment::{AssignmentEvent, SubjectType};
use crate::group::GroupEvent;
use crate::keyring::KeyringEvent;
use crate::permission::PermissionEvent;
use crate::role::RoleEvent;
use crate::service_account::ServiceAccountEvent;
use crate::session::SessionEvent;
use crate::tenant::TenantEvent;
use crate::token::TokenEvent;
use crate::user::UserEvent;
use crate::workspace::WorkspaceEvent;
use crate::DomainEvent;

/// The stream id of one aggregate instance: `<stream type>-<id>`, e.g. `tenant-0190…`.
pub fn stream_id(stream_type: &str, id: Uuid) -> String {
    format!("{stream_type}-{id}")
}

/// A tenant's stream: `tenant-<tenant id>`.
pub fn tenant_stream(id: Uuid) -> String {
    stream_id(TenantEvent::STREAM_TYPE, id)
}

/// A workspace's stream: `workspace-<workspace id>`.
pub fn workspace_stream(id: Uuid) -> String {
    stream_id(WorkspaceEvent::STREAM_TYPE, id)
}

/// A user's stream: `user-<user id>`.
pub fn user_stream(id: Uuid) -> String {
    stream_id(UserEvent::STREAM_TYPE, id)
}

/// A group's stream: `group-<group id>`.
pub fn group_stream(id: Uuid) -> String {
    stream_id(GroupEvent::STREAM_TYPE, id)
}

/// A role's stream: `role-<role id>`.
pub fn role_stream(id: Uuid) -> String {
    stream_id(RoleEvent::STREAM_TYPE, id)
}

/// An assignment's stream: `assignment-<assignment id>`.
pub fn assignment_stream(id: Uuid) -> String {
    stream_id(AssignmentEvent::STREAM_TYPE, id)
}

/// A service account's stream: `service_account-<service account id>`.
pub fn service_account_stream(id: Uuid) -> String {
    stream_id(ServiceAccountEvent::STREAM_TYPE, id)
}

/// A session's stream: `session-<session id>`.
pub fn session_stream(id: Uuid) -> String {
    stream_id(SessionEvent::STREAM_TYPE, id)
}

/// The stream of one access token's revocation: `token-<jti>`.
pub fn token_stream(jti: Uuid) -> String {
    stream_id(TokenEvent::STREAM_TYPE, jti)
}

/// The permission registry of one service: `permission_registry-<service>`.
pub fn registry_stream(service: &str) -> String {
    format!("{}-{service}", PermissionEvent::STREAM_TYPE)
}

/// The keyring's stream, one per deployment: `keyring-00000000-0000-0000-0000-000000000000`.
pub fn keyring_stream() -> String {
    stream_id(KeyringEvent::STREAM_TYPE, Uuid::nil())
}

/// Tenant slugs are unique across the deployment: `tenant.slug`, holding the slug.
pub const TENANT_SLUG_SCOPE: &str = "tenant.slug";

/// Permission names are global, one service owning each: `permission.name`, holding the
/// name. The claim doubles as the registry's index, consistent inside a command's transaction.
pub const PERMISSION_NAME_SCOPE: &str = "permission.name";

/// Workspace names, unique within their tenant ignoring case: `workspace.name:<tenant>`.
pub fn workspace_name_scope(tenant_id: Uuid) -> String {
    format!("workspace.name:{tenant_id}")
}

/// Usernames, unique within their tenant ignoring case: `user.username:<tenant>`.
pub fn username_scope(tenant_id: Uuid) -> String {
    format!("user.username:{tenant_id}")
}

/// Emails, unique within their tenant ignoring case: `user.email:<tenant>`.
pub fn email_scope(tenant_id: Uuid) -> String {
    format!("user.email:{tenant_id}")
}

/// Group names, unique within their tenant: `group.name:<tenant>`.
pub fn group_name_scope(tenant_id: Uuid) -> String {
    format!("group.name:{tenant_id}")
}

/// Role names, unique per tenant for tenant-wide roles (`role.name:<tenant>`) and per
/// workspace for a workspace's roles (`role.name:<tenant>:<workspace>`).
pub fn role_name_scope(tenant_id: Uuid, workspace_id: Option<Uuid>) -> String {
    match workspace_id {
        Some(w) => format!("role.name:{tenant_id}:{w}"),
        None => format!("role.name:{tenant_id}"),
    }
}

/// The groups of one user: `group.member:<tenant>:<user>`, holding each group's id. A user
/// joins a group once, so it is unique; it also lets the write side find a user's groups in
/// the command's transaction.
pub fn group_member_scope(tenant_id: Uuid, user_id: Uuid) -> String {
    format!("group.member:{tenant_id}:{user_id}")
}

/// The claim of a membership, `(scope, value)`: [`group_member_scope`] holding `<group>`.
pub fn membership_claim(tenant_id: Uuid, user_id: Uuid, group_id: Uuid) -> (String, String) {
    (group_member_scope(tenant_id, user_id), group_id.to_string())
}

/// The assignments of one subject: `assignment:<tenant>:<user|group|serviceaccount>:<subject>`,
/// holding `<role>:<workspace or "tenant">` for each. It also serves as the write side's
/// index of a subject's roles.
pub fn assignment_subject_scope(
    tenant_id: Uuid,
    subject_type: SubjectType,
    subject_id: Uuid,
) -> String {
    let kind = match subject_type {
        SubjectType::User => "user",
        SubjectType::Group => "group",
        SubjectType::ServiceAccount => "serviceaccount",
    };
    format!("assignment:{tenant_id}:{kind}:{subject_id}")
}

/// The uniqueness claim of an assignment, `(scope, value)`: one per role, subject and scope,
/// the value `<role>:<workspace or "tenant">` under [`assignment_subject_scope`].
pub fn assignment_claim(
    tenant_id: Uuid,
    role_id: Uuid,
    subject_type: SubjectType,
    subject_id: Uuid,
    workspace_id: Option<Uuid>,
) -> (String, String) {
    let ws = workspace_id.map_or_else(|| "tenant".to_owned(), |w| w.to_string());
    (
        assignment_subject_scope(tenant_id, subject_type, subject_id),
        format!("{role_id}:{ws}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "0190a000-0000-7000-8000-000000000001";
    const W: &str = "0190a000-0000-7000-8000-000000000002";
    const X: &str = "0190a000-0000-7000-8000-000000000003";

    fn id(s: &str) -> Uuid {
        Uuid::parse_str(s).unwrap()
    }

    /// These strings are in stored events and claims: they must never change.
    #[test]
    fn stream_ids_keep_their_stored_formats() {
        let x = id(X);
        assert_eq!(stream_id("thing", x), format!("thing-{X}"));
        assert_eq!(tenant_stream(x), format!("tenant-{X}"));
        assert_eq!(workspace_stream(x), format!("workspace-{X}"));
        assert_eq!(user_stream(x), format!("user-{X}"));
        assert_eq!(group_stream(x), format!("group-{X}"));
        assert_eq!(role_stream(x), format!("role-{X}"));
        assert_eq!(assignment_stream(x), format!("assignment-{X}"));
        assert_eq!(service_account_stream(x), format!("service_account-{X}"));
        assert_eq!(session_stream(x), format!("session-{X}"));
        assert_eq!(token_stream(x), format!("token-{X}"));
        assert_eq!(registry_stream("billing"), "permission_registry-billing");
        assert_eq!(
            keyring_stream(),
            "keyring-00000000-0000-0000-0000-000000000000"
        );
    }

    #[test]
    fn claim_scopes_keep_their_stored_formats() {
        let (t, w, x) = (id(T), id(W), id(X));
        assert_eq!(TENANT_SLUG_SCOPE, "tenant.slug");
        assert_eq!(PERMISSION_NAME_SCOPE, "permission.name");
        assert_eq!(workspace_name_scope(t), format!("workspace.name:{T}"));
        assert_eq!(username_scope(t), format!("user.username:{T}"));
        assert_eq!(email_scope(t), format!("user.email:{T}"));
        assert_eq!(group_name_scope(t), format!("group.name:{T}"));
        assert_eq!(role_name_scope(t, None), format!("role.name:{T}"));
        assert_eq!(role_name_scope(t, Some(w)), format!("role.name:{T}:{W}"));
        assert_eq!(group_member_scope(t, x), format!("group.member:{T}:{X}"));
        assert_eq!(
            membership_claim(t, x, w),
            (format!("group.member:{T}:{X}"), W.to_owned())
        );
        for (kind, name) in [
            (SubjectType::User, "user"),
            (SubjectType::Group, "group"),
            (SubjectType::ServiceAccount, "serviceaccount"),
        ] {
            assert_eq!(
                assignment_subject_scope(t, kind, x),
                format!("assignment:{T}:{name}:{X}")
            );
        }
        assert_eq!(
            assignment_claim(t, w, SubjectType::User, x, None),
            (format!("assignment:{T}:user:{X}"), format!("{W}:tenant"))
        );
        assert_eq!(
            assignment_claim(t, w, SubjectType::Group, x, Some(t)),
            (format!("assignment:{T}:group:{X}"), format!("{W}:{T}"))
        );
    }
}
