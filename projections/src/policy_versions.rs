//! Read model `policy_versions`: one counter per tenant (workspace id nil) and one per
//! workspace, each bumped once by every change that can alter an entitlement in its own scope.
//!
//! The **effective** version of a scope is what a token carries and what staleness compares:
//! - the tenant scope: the tenant's counter;
//! - a workspace: the tenant's counter **plus** the workspace's counter.
//!
//! Both counters only grow, so the sum grows with every change to either, and a token is
//! stale exactly when its version is below its scope's effective version. A tenant-wide
//! change therefore bumps one row and publishes one message, however many workspaces the
//! tenant has (ADR 0007). Consumers of `charter.iam.policy.v1` add the two the same way.
//!
//! What bumps which counter:
//! - role permissions granted or revoked, role deleted: the role's scope;
//! - assignment created or deleted: the assignment's scope;
//! - group membership added or removed, group deleted: the tenant;
//! - user or service account disabled, enabled or deleted: the tenant;
//! - workspace deleted: that workspace;
//! - tenant blocked, unblocked or deleted: the tenant.
//!
//! Every bump also enqueues the counter's new value in [`OUTBOX_TABLE`] in the same
//! transaction; the relay publishes it to the compacted topic. The outbox holds one row per
//! counter, overwritten by each bump (migration V14). In a shadow schema that copy is never
//! relayed, so a replay rebuilds the counters without publishing anything.

use std::collections::HashMap;

use charter_events::assignment::AssignmentEvent;
use charter_events::group::GroupEvent;
use charter_events::role::RoleEvent;
use charter_events::service_account::ServiceAccountEvent;
use charter_events::tenant::TenantEvent;
use charter_events::user::UserEvent;
use charter_events::workspace::WorkspaceEvent;
use charter_events::RecordedEvent;
use deadpool_postgres::{GenericClient, Transaction};
use uuid::Uuid;

use crate::entitlements::TENANT_SCOPE;
use crate::projection::{decode, execute, Projection, ProjectionError};

/// The read model `policy_versions` (see the module's documentation).
pub struct PolicyVersions;

/// The version of the policy-version contract: what `policy_version` in a token and on the
/// policy topic means. 2 = a workspace's effective version is the tenant's counter plus the
/// workspace's (1, before migration V17, copied every tenant bump into every workspace).
/// Tokens carry it as `policy_contract`; one without it, or with another value, is refused.
pub const CONTRACT: u32 = 2;

/// The bumps still to be published (`projections.policy_outbox`, migration V9). Written by
/// this projection but not part of its state, so it is not in [`Projection::tables`]: a
/// replay into a shadow schema must create it there too
/// (`CREATE TABLE <shadow>.policy_outbox (LIKE projections.policy_outbox INCLUDING ALL)`)
/// and must not compare it with the live one, which the relay drains.
pub const OUTBOX_TABLE: &str = "policy_outbox";

/// Which counter a change bumps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bump {
    None,
    /// The tenant's own counter (every workspace's effective version moves with it).
    Tenant,
    Workspace(Uuid),
}

impl Bump {
    fn scope(workspace_id: Option<Uuid>) -> Bump {
        workspace_id.map_or(Bump::Tenant, Bump::Workspace)
    }

    /// The counter's key: `(tenant, workspace or nil)`.
    pub fn key(self, tenant_id: Uuid) -> Option<(Uuid, Uuid)> {
        match self {
            Bump::None => None,
            Bump::Tenant => Some((tenant_id, TENANT_SCOPE)),
            Bump::Workspace(w) => Some((tenant_id, w)),
        }
    }
}

/// The bump rule, as a pure function of the event (the index and the tests use it too).
pub fn bump_for(e: &RecordedEvent) -> Result<Bump, ProjectionError> {
    Ok(match e.stream_type.as_str() {
        "tenant" => match decode::<TenantEvent>(e)? {
            TenantEvent::Blocked(_) | TenantEvent::Unblocked(_) | TenantEvent::Deleted(_) => {
                Bump::Tenant
            }
            _ => Bump::None,
        },
        "workspace" => match decode::<WorkspaceEvent>(e)? {
            WorkspaceEvent::Deleted(d) => Bump::Workspace(d.workspace_id),
            _ => Bump::None,
        },
        "user" => match decode::<UserEvent>(e)? {
            UserEvent::Disabled(_) | UserEvent::Enabled(_) | UserEvent::Deleted(_) => Bump::Tenant,
            _ => Bump::None,
        },
        "service_account" => match decode::<ServiceAccountEvent>(e)? {
            ServiceAccountEvent::Disabled(_)
            | ServiceAccountEvent::Enabled(_)
            | ServiceAccountEvent::Deleted(_) => Bump::Tenant,
            _ => Bump::None,
        },
        "group" => match decode::<GroupEvent>(e)? {
            GroupEvent::MemberAdded(_) | GroupEvent::MemberRemoved(_) | GroupEvent::Deleted(_) => {
                Bump::Tenant
            }
            GroupEvent::Created(_) => Bump::None,
        },
        "role" => match decode::<RoleEvent>(e)? {
            RoleEvent::PermissionsGranted(g) => Bump::scope(g.workspace_id),
            RoleEvent::PermissionsRevoked(r) => Bump::scope(r.workspace_id),
            RoleEvent::Deleted(d) => Bump::scope(d.workspace_id),
            RoleEvent::Created(_) | RoleEvent::Renamed(_) => Bump::None,
        },
        "assignment" => match decode::<AssignmentEvent>(e)? {
            AssignmentEvent::Created(c) => Bump::scope(c.workspace_id),
            AssignmentEvent::Deleted(d) => Bump::scope(d.workspace_id),
        },
        _ => Bump::None,
    })
}

#[async_trait::async_trait]
impl Projection for PolicyVersions {
    fn name(&self) -> &'static str {
        "policy_versions"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["policy_versions"]
    }

    async fn apply(&self, tx: &Transaction<'_>, e: &RecordedEvent) -> Result<(), ProjectionError> {
        self.apply_batch(tx, std::slice::from_ref(e))
            .await
            .map_err(|(_, e)| e)
    }

    /// Counts the batch's bumps per counter in memory, then moves every counter by its count
    /// and enqueues its new value, in one statement.
    async fn apply_batch(
        &self,
        tx: &Transaction<'_>,
        events: &[RecordedEvent],
    ) -> Result<(), (usize, ProjectionError)> {
        // Counters in order of first bump, with their number of bumps.
        let mut counts: Vec<((Uuid, Uuid), i64)> = Vec::new();
        let mut index: HashMap<(Uuid, Uuid), usize> = HashMap::new();
        for (i, e) in events.iter().enumerate() {
            let Some(key) = bump_for(e).map_err(|err| (i, err))?.key(e.tenant_id) else {
                continue;
            };
            let at = *index.entry(key).or_insert_with(|| {
                counts.push((key, 0));
                counts.len() - 1
            });
            counts[at].1 += 1;
        }
        if counts.is_empty() {
            return Ok(());
        }
        let (keys, by): (Vec<(Uuid, Uuid)>, Vec<i64>) = counts.into_iter().unzip();
        let (tenant_ids, workspace_ids): (Vec<Uuid>, Vec<Uuid>) = keys.into_iter().unzip();
        let ordinals: Vec<i64> = (1..=by.len() as i64).collect();
        // Outbox rows are written in key order, the order in which the relay locks them to
        // delete, so the two cannot deadlock.
        execute(
            tx,
            "WITH input AS ( \
               SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::bigint[], $4::bigint[]) \
                 AS i(tenant_id, workspace_id, n, ord) \
             ), bumped AS ( \
               INSERT INTO policy_versions (tenant_id, workspace_id, version) \
               SELECT tenant_id, workspace_id, n FROM input ORDER BY ord \
               ON CONFLICT (tenant_id, workspace_id) \
               DO UPDATE SET version = policy_versions.version + EXCLUDED.version \
               RETURNING tenant_id, workspace_id, version \
             ) \
             INSERT INTO policy_outbox (tenant_id, workspace_id, policy_version) \
             SELECT b.tenant_id, b.workspace_id, b.version FROM bumped b \
             ORDER BY b.tenant_id, b.workspace_id \
             ON CONFLICT (tenant_id, workspace_id) DO UPDATE \
             SET policy_version = GREATEST(policy_outbox.policy_version, EXCLUDED.policy_version)",
            &[&tenant_ids, &workspace_ids, &by, &ordinals],
        )
        .await
        .map_err(|e| (events.len() - 1, e.into()))?;
        Ok(())
    }
}

/// The effective version of a scope, from the read model: the tenant's counter, plus the
/// workspace's for a workspace (0 before a counter's first bump).
pub async fn effective(
    client: &impl GenericClient,
    tenant_id: Uuid,
    workspace_id: Option<Uuid>,
) -> Result<i64, tokio_postgres::Error> {
    let statement = client.prepare_cached(EFFECTIVE_SQL).await?;
    let row = client
        .query_one(
            &statement,
            &[&tenant_id, &workspace_id.unwrap_or(TENANT_SCOPE)],
        )
        .await?;
    Ok(row.get(0))
}

/// `$1` tenant, `$2` workspace (nil for the tenant scope): the effective version, one value.
pub const EFFECTIVE_SQL: &str = "SELECT COALESCE(sum(version), 0)::bigint \
     FROM projections.policy_versions \
     WHERE tenant_id = $1 AND workspace_id IN ('00000000-0000-0000-0000-000000000000'::uuid, $2)";
