//! Loading the entitlement index from the live read models at start.

use std::sync::Arc;

use charter_log::LogPosition;
use uuid::Uuid;

use super::{Bound, Index, IndexError, Intern, Names, Parts, Principal, Snapshot, TenantIndex};
use crate::entitlements::{Change, TENANT_SCOPE};

impl Index {
    /// Loads the index from the live read models, in one repeatable-read snapshot so that
    /// every table and its checkpoint agree.
    pub async fn load(client: &mut deadpool_postgres::Client) -> Result<Self, IndexError> {
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        tx.batch_execute("SET LOCAL search_path TO projections, public")
            .await?;
        let checkpoint = |name: &'static str| {
            let tx = &tx;
            async move {
                let row = tx
                    .query_opt(
                        "SELECT tx_id::text::bigint, position FROM checkpoints WHERE name = $1",
                        &[&name],
                    )
                    .await?;
                Ok::<_, tokio_postgres::Error>(row.map_or(LogPosition::START, |r| LogPosition {
                    tx_id: r.get(0),
                    position: r.get(1),
                }))
            }
        };
        let parts = Parts {
            entitlements: checkpoint("entitlements").await?,
            policy: checkpoint("policy_versions").await?,
            registry: checkpoint("permissions").await?,
        };
        let mut names = Names::default();
        let mut tenants: std::collections::HashMap<Uuid, TenantIndex> = Default::default();
        for r in tx
            .query("SELECT tenant_id, active FROM ent_tenants", &[])
            .await?
        {
            tenants.entry(r.get(0)).or_default().active = r.get(1);
        }
        for r in tx
            .query(
                "SELECT tenant_id, workspace_id FROM ent_workspaces WHERE live",
                &[],
            )
            .await?
        {
            tenants
                .entry(r.get(0))
                .or_default()
                .workspaces
                .insert(r.get(1));
        }
        for r in tx
            .query("SELECT tenant_id, group_id FROM ent_groups WHERE live", &[])
            .await?
        {
            tenants.entry(r.get(0)).or_default().groups.insert(r.get(1));
        }
        let mut memberships: std::collections::HashMap<Uuid, Vec<Uuid>> = Default::default();
        for r in tx
            .query(
                "SELECT m.user_id, m.group_id FROM ent_members m \
                 JOIN ent_groups g ON g.group_id = m.group_id AND g.live ORDER BY 1, 2",
                &[],
            )
            .await?
        {
            memberships.entry(r.get(0)).or_default().push(r.get(1));
        }
        for r in tx
            .query(
                "SELECT tenant_id, user_id, active FROM ent_users WHERE live",
                &[],
            )
            .await?
        {
            let id: Uuid = r.get(1);
            let groups = memberships.remove(&id).unwrap_or_default();
            tenants.entry(r.get(0)).or_default().principals.insert(
                id,
                Principal {
                    active: r.get(2),
                    groups: groups.into(),
                },
            );
        }
        for r in tx
            .query(
                "SELECT tenant_id, role_id, permissions FROM ent_roles WHERE live",
                &[],
            )
            .await?
        {
            let permissions: Vec<String> = r.get(2);
            let change = Change::RoleCreated {
                role: r.get(1),
                workspace: None,
                permissions,
            };
            tenants
                .entry(r.get(0))
                .or_default()
                .apply(&change, &mut names);
        }
        let mut bindings: std::collections::HashMap<(Uuid, Uuid), Vec<Bound>> = Default::default();
        for r in tx
            .query(
                "SELECT tenant_id, subject_id, assignment_id, role_id, workspace_id \
                 FROM ent_assignments ORDER BY assignment_id",
                &[],
            )
            .await?
        {
            bindings
                .entry((r.get(0), r.get(1)))
                .or_default()
                .push(Bound {
                    assignment: r.get(2),
                    role: r.get(3),
                    workspace: r.get(4),
                });
        }
        for ((tenant, subject), held) in bindings {
            tenants
                .entry(tenant)
                .or_default()
                .bindings
                .insert(subject, held.into());
        }
        for r in tx
            .query(
                "SELECT tenant_id, workspace_id, version FROM policy_versions",
                &[],
            )
            .await?
        {
            let t = tenants.entry(r.get(0)).or_default();
            let (w, v): (Uuid, i64) = (r.get(1), r.get(2));
            if w == TENANT_SCOPE {
                t.counter = v;
            } else {
                t.counters.insert(w, v);
            }
        }
        let mut registry = imbl::HashSet::new();
        for r in tx.query("SELECT name FROM permissions", &[]).await? {
            registry.insert(names.intern(r.get(0)));
        }
        tx.commit().await?;
        let snapshot = Snapshot {
            at: LogPosition::START,
            tenants: tenants.into_iter().map(|(k, v)| (k, Arc::new(v))).collect(),
            registry,
        };
        Ok(Self::from_parts(snapshot, parts, names))
    }
}
