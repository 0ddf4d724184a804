//! What commands read from the write side before they decide, shared by several of them: a
//! tenant's status under its lock, a prospective parent tenant, a workspace's liveness, which
//! permissions are registered, and what a subject holds. Everything is read in the command's
//! transaction, so no projection lag can make a decision see stale facts.

use std::collections::BTreeSet;

use charter_events::assignment::SubjectType;
use charter_events::streams::{
    assignment_subject_scope, group_member_scope, role_stream, tenant_stream, workspace_stream,
    PERMISSION_NAME_SCOPE,
};
use deadpool_postgres::{GenericClient, Transaction};
use uuid::Uuid;

use super::CommandError;
use crate::domain::role::Role;
use crate::domain::tenant::{ParentContext, Tenant, TenantStatus};
use crate::domain::workspace::Workspace;
use crate::store::locks::{self, Mode};
use crate::store::{events, hierarchy};

/// Loads a tenant's status under a shared lock, for commands on things inside the tenant.
pub async fn status_for_update(
    client: &impl GenericClient,
    tenant_id: Uuid,
) -> Result<Option<TenantStatus>, CommandError> {
    locks::tenant(client, tenant_id, Mode::Shared).await?;
    let tenant = events::load::<Tenant>(client, &tenant_stream(tenant_id)).await?;
    Ok(tenant.state.0.map(|t| t.status))
}

/// Loads a prospective parent and its ancestors. Locks the parent so that it cannot be
/// blocked or deleted before this transaction commits. Call under the hierarchy lock.
pub async fn parent_context(
    tx: &Transaction<'_>,
    parent_id: Uuid,
) -> Result<ParentContext, CommandError> {
    locks::tenant(tx, parent_id, Mode::Shared).await?;
    let parent = events::load::<Tenant>(tx, &tenant_stream(parent_id)).await?;
    Ok(ParentContext {
        id: parent_id,
        status: parent.state.0.as_ref().map(|t| t.status),
        ancestors: hierarchy::ancestors(tx, parent_id).await?,
    })
}

/// Whether `workspace_id` names a live (not deleted) workspace of `tenant_id`.
pub async fn workspace_is_live(
    tx: &Transaction<'_>,
    tenant_id: Uuid,
    workspace_id: Uuid,
) -> Result<bool, CommandError> {
    let workspace = events::load::<Workspace>(tx, &workspace_stream(workspace_id)).await?;
    Ok(workspace
        .state
        .0
        .is_some_and(|w| w.tenant_id == tenant_id && !w.deleted))
}

/// The names among `names` that no service has registered.
pub async fn unregistered(
    client: &impl GenericClient,
    names: &[String],
) -> Result<Vec<String>, CommandError> {
    let rows = client
        .query(
            "SELECT n FROM unnest($1::text[]) AS n \
             WHERE NOT EXISTS (SELECT 1 FROM unique_claims \
                               WHERE claim_scope = $2 AND claim_value = n)",
            &[&names, &PERMISSION_NAME_SCOPE],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Every permission the live roles assigned to a subject grant, in any scope, a user's
/// through its groups included: what a new member of a group receives, what whoever knows a
/// service account's secret can do, what a user's second factor protects. These are the facts
/// the delegation rule (`domain::delegation`) needs.
///
/// Assignments and memberships are found through their uniqueness claims, keyed by subject
/// and written in the commands' transactions; the roles are loaded from their streams.
/// Workspace roles count even where their workspace is gone, so the set can only be larger
/// than what the subject can use, never smaller.
pub async fn permissions_of(
    tx: &Transaction<'_>,
    tenant_id: Uuid,
    subject_type: SubjectType,
    subject_id: Uuid,
) -> Result<BTreeSet<String>, CommandError> {
    let statement = tx
        .prepare_cached("SELECT claim_value FROM unique_claims WHERE claim_scope = $1")
        .await?;
    let values = |scope: String| {
        let statement = &statement;
        async move {
            let rows = tx.query(statement, &[&scope]).await?;
            Ok::<Vec<String>, CommandError>(rows.iter().map(|r| r.get(0)).collect())
        }
    };
    let mut subjects = vec![assignment_subject_scope(
        tenant_id,
        subject_type,
        subject_id,
    )];
    if subject_type == SubjectType::User {
        for group in values(group_member_scope(tenant_id, subject_id)).await? {
            if let Ok(group_id) = Uuid::parse_str(&group) {
                subjects.push(assignment_subject_scope(
                    tenant_id,
                    SubjectType::Group,
                    group_id,
                ));
            }
        }
    }
    let mut roles = BTreeSet::new();
    for scope in subjects {
        for value in values(scope).await? {
            // `<role>:<workspace or "tenant">`
            if let Some(Ok(role_id)) = value.split(':').next().map(Uuid::parse_str) {
                roles.insert(role_id);
            }
        }
    }
    let mut permissions = BTreeSet::new();
    for role_id in roles {
        let role = events::load::<Role>(tx, &role_stream(role_id))
            .await?
            .state
            .0;
        if let Some(role) = role.filter(|r| !r.deleted && r.tenant_id == tenant_id) {
            permissions.extend(role.permissions);
        }
    }
    Ok(permissions)
}
