//! The facts the delegation rule (`domain::delegation`) needs from the write side: what a
//! subject holds, read in the command's transaction, so that no projection lag can make a
//! group or a service account look emptier than it is.

use std::collections::BTreeSet;

use charter_events::assignment::SubjectType;
use deadpool_postgres::Transaction;
use uuid::Uuid;

use super::assignment::subject_claim_scope;
use super::group::member_claim_scope;
use super::role::role_stream;
use super::CommandError;
use crate::domain::role::Role;
use crate::store::events;

/// Every permission the live roles assigned to a subject grant, in any scope, a user's
/// through its groups included: what a new member of a group receives, what whoever knows a
/// service account's secret can do, what a user's second factor protects.
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
    let mut subjects = vec![subject_claim_scope(tenant_id, subject_type, subject_id)];
    if subject_type == SubjectType::User {
        for group in values(member_claim_scope(tenant_id, subject_id)).await? {
            if let Ok(group_id) = Uuid::parse_str(&group) {
                subjects.push(subject_claim_scope(tenant_id, SubjectType::Group, group_id));
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
