//! Read model `policy_versions`: one counter per tenant (workspace id nil) and per workspace,
//! bumped exactly once by every change that can alter an entitlement in that scope. A token
//! carries the counter of its scope; a token with an older value is stale.
//!
//! Owns `pv_workspaces` and `policy_versions`. What bumps which scope:
//! - role permissions granted or revoked, role deleted: the role's scope;
//! - assignment created or deleted: the assignment's scope;
//! - group membership added or removed, group deleted: the tenant;
//! - user or service account disabled, enabled or deleted: the tenant;
//! - workspace deleted: that workspace;
//! - tenant blocked, unblocked or deleted: the tenant.
//!
//! A tenant-scope bump also bumps every live workspace of the tenant once, because
//! tenant-wide grants apply in every workspace.
//!
//! Every bump also enqueues the scope's new value in [`OUTBOX_TABLE`] in the same
//! transaction; the relay publishes it to the compacted topic `charter.iam.policy.v1`. The
//! outbox holds one row per scope, overwritten by each bump (migration V14): consumers of a
//! compacted topic only need the newest version, and a row per bump multiplied a tenant-wide
//! change by the tenant's workspaces. In a shadow schema that copy is never relayed, so a
//! replay rebuilds the counters without publishing anything.

use charter_events::assignment::AssignmentEvent;
use charter_events::group::GroupEvent;
use charter_events::role::RoleEvent;
use charter_events::service_account::ServiceAccountEvent;
use charter_events::tenant::TenantEvent;
use charter_events::user::UserEvent;
use charter_events::workspace::WorkspaceEvent;
use charter_events::{DomainEvent, RecordedEvent};
use deadpool_postgres::{GenericClient, Transaction};
use uuid::Uuid;

use crate::entitlements::TENANT_SCOPE;
use crate::projection::{execute, Projection, ProjectionError};

pub struct PolicyVersions;

/// The bumps still to be published (`projections.policy_outbox`, migration V9). Written by
/// this projection but not part of its state, so it is not in [`Projection::tables`]: a
/// replay into a shadow schema must create it there too
/// (`CREATE TABLE <shadow>.policy_outbox (LIKE projections.policy_outbox INCLUDING ALL)`)
/// and must not compare it with the live one, which the relay drains.
pub const OUTBOX_TABLE: &str = "policy_outbox";

/// Which counters a change bumps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bump {
    None,
    /// The tenant and all its live workspaces.
    Tenant,
    Workspace(Uuid),
}

impl Bump {
    fn scope(workspace_id: Option<Uuid>) -> Bump {
        workspace_id.map_or(Bump::Tenant, Bump::Workspace)
    }
}

fn decode<E: DomainEvent>(e: &RecordedEvent) -> Result<E, ProjectionError> {
    Ok(E::decode(
        &e.event_type,
        e.schema_version as u32,
        e.data.clone(),
    )?)
}

/// The bump rule, as a pure function of the event (tests compare counters against it).
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
        &["pv_workspaces", "policy_versions"]
    }

    async fn apply(&self, tx: &Transaction<'_>, e: &RecordedEvent) -> Result<(), ProjectionError> {
        let t = e.tenant_id;
        if e.stream_type == WorkspaceEvent::STREAM_TYPE {
            match decode::<WorkspaceEvent>(e)? {
                WorkspaceEvent::Created(c) => {
                    execute(
                        tx,
                        "INSERT INTO pv_workspaces VALUES ($1, $2, true)",
                        &[&c.workspace_id, &t],
                    )
                    .await?;
                }
                WorkspaceEvent::Deleted(d) => {
                    execute(
                        tx,
                        "UPDATE pv_workspaces SET live = false WHERE workspace_id = $1",
                        &[&d.workspace_id],
                    )
                    .await?;
                }
                WorkspaceEvent::Renamed(_) => {}
            }
        }
        // Each upsert returns the new counters and enqueues them for the policy topic in the
        // same statement, overwriting the scope's row if it is still queued. Outbox rows are
        // written in scope order (the tenant's nil workspace first), the order in which the
        // relay locks them to delete, so the two cannot deadlock.
        const BUMP: &str = "WITH bumped AS ( \
                              INSERT INTO policy_versions (tenant_id, workspace_id, version) \
                              VALUES ($1, $2, 1) ON CONFLICT (tenant_id, workspace_id) \
                              DO UPDATE SET version = policy_versions.version + 1 \
                              RETURNING tenant_id, workspace_id, version) \
                            INSERT INTO policy_outbox (tenant_id, workspace_id, policy_version) \
                            SELECT tenant_id, workspace_id, version FROM bumped \
                            ORDER BY tenant_id, workspace_id \
                            ON CONFLICT (tenant_id, workspace_id) DO UPDATE \
                            SET policy_version = GREATEST(policy_outbox.policy_version, EXCLUDED.policy_version)";
        const BUMP_WORKSPACES: &str = "WITH bumped AS ( \
                              INSERT INTO policy_versions (tenant_id, workspace_id, version) \
                              SELECT tenant_id, workspace_id, 1 FROM pv_workspaces \
                              WHERE tenant_id = $1 AND live \
                              ON CONFLICT (tenant_id, workspace_id) \
                              DO UPDATE SET version = policy_versions.version + 1 \
                              RETURNING tenant_id, workspace_id, version) \
                            INSERT INTO policy_outbox (tenant_id, workspace_id, policy_version) \
                            SELECT tenant_id, workspace_id, version FROM bumped \
                            ORDER BY tenant_id, workspace_id \
                            ON CONFLICT (tenant_id, workspace_id) DO UPDATE \
                            SET policy_version = GREATEST(policy_outbox.policy_version, EXCLUDED.policy_version)";
        match bump_for(e)? {
            Bump::None => {}
            Bump::Workspace(w) => {
                execute(tx, BUMP, &[&t, &w]).await?;
            }
            Bump::Tenant => {
                execute(tx, BUMP, &[&t, &TENANT_SCOPE]).await?;
                execute(tx, BUMP_WORKSPACES, &[&t]).await?;
            }
        }
        Ok(())
    }

    /// The same bumps as applying the events one by one, in far fewer statements: the batch
    /// is folded in memory (each tenant's live workspaces, loaded once, follow the batch's
    /// workspace events), then every scope's counter moves by its number of bumps in one
    /// statement, which also enqueues each scope's new version.
    async fn apply_batch(
        &self,
        tx: &Transaction<'_>,
        events: &[RecordedEvent],
    ) -> Result<(), (usize, ProjectionError)> {
        use std::collections::{BTreeSet, HashMap};
        let last = events.len().saturating_sub(1);
        let failed = |e: tokio_postgres::Error| (last, ProjectionError::from(e));
        let mut bumps = Vec::with_capacity(events.len());
        for (i, e) in events.iter().enumerate() {
            bumps.push(bump_for(e).map_err(|err| (i, err))?);
        }
        // Tenants whose every workspace a bump reaches: their live workspaces before the batch.
        let tenants: Vec<Uuid> = events
            .iter()
            .zip(&bumps)
            .filter(|(_, b)| **b == Bump::Tenant)
            .map(|(e, _)| e.tenant_id)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut live: HashMap<Uuid, BTreeSet<Uuid>> =
            tenants.iter().map(|t| (*t, BTreeSet::new())).collect();
        if !tenants.is_empty() {
            let statement = tx
                .prepare_cached(
                    "SELECT tenant_id, workspace_id FROM pv_workspaces WHERE tenant_id = ANY($1) AND live",
                )
                .await
                .map_err(failed)?;
            for r in tx.query(&statement, &[&tenants]).await.map_err(failed)? {
                live.entry(r.get(0)).or_default().insert(r.get(1));
            }
        }
        // Scopes in order of first bump, with their number of bumps.
        let mut counts: Vec<((Uuid, Uuid), i64)> = Vec::new();
        let mut index: HashMap<(Uuid, Uuid), usize> = HashMap::new();
        let mut count = |scope: (Uuid, Uuid)| {
            let at = *index.entry(scope).or_insert_with(|| {
                counts.push((scope, 0));
                counts.len() - 1
            });
            counts[at].1 += 1;
        };
        for (i, (e, bump)) in events.iter().zip(&bumps).enumerate() {
            let t = e.tenant_id;
            if e.stream_type == WorkspaceEvent::STREAM_TYPE {
                // Workspace events are rare: written as they come, and followed in memory.
                match decode::<WorkspaceEvent>(e).map_err(|err| (i, err))? {
                    WorkspaceEvent::Created(c) => {
                        execute(
                            tx,
                            "INSERT INTO pv_workspaces VALUES ($1, $2, true)",
                            &[&c.workspace_id, &t],
                        )
                        .await
                        .map_err(|err| (i, err.into()))?;
                        if let Some(set) = live.get_mut(&t) {
                            set.insert(c.workspace_id);
                        }
                    }
                    WorkspaceEvent::Deleted(d) => {
                        execute(
                            tx,
                            "UPDATE pv_workspaces SET live = false WHERE workspace_id = $1",
                            &[&d.workspace_id],
                        )
                        .await
                        .map_err(|err| (i, err.into()))?;
                        if let Some(set) = live.get_mut(&t) {
                            set.remove(&d.workspace_id);
                        }
                    }
                    WorkspaceEvent::Renamed(_) => {}
                }
            }
            match bump {
                Bump::None => {}
                Bump::Workspace(w) => count((t, *w)),
                Bump::Tenant => {
                    count((t, TENANT_SCOPE));
                    for w in live.get(&t).into_iter().flatten() {
                        count((t, *w));
                    }
                }
            }
        }
        if counts.is_empty() {
            return Ok(());
        }
        let (scopes, by): (Vec<(Uuid, Uuid)>, Vec<i64>) = counts.into_iter().unzip();
        let (tenant_ids, workspace_ids): (Vec<Uuid>, Vec<Uuid>) = scopes.into_iter().unzip();
        let ordinals: Vec<i64> = (1..=by.len() as i64).collect();
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
        .map_err(failed)?;
        Ok(())
    }
}

/// The counter of a scope (0 before its first bump).
pub async fn current(
    client: &impl GenericClient,
    tenant_id: Uuid,
    workspace_id: Option<Uuid>,
) -> Result<i64, tokio_postgres::Error> {
    let statement = client
        .prepare_cached(
            "SELECT COALESCE((SELECT version FROM projections.policy_versions \
             WHERE tenant_id = $1 AND workspace_id = $2), 0)",
        )
        .await?;
    let row = client
        .query_one(
            &statement,
            &[&tenant_id, &workspace_id.unwrap_or(TENANT_SCOPE)],
        )
        .await?;
    Ok(row.get(0))
}
