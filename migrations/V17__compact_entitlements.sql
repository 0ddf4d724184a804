-- The read side stores what was decided, never its fan-out (ADR 0007).
--
-- 1. `projections.entitlements`, one row per user x workspace with the resolved roles and
--    permissions, goes. The `ent_*` tables already hold the decisions (bindings, role
--    permissions, memberships); lookups resolve them in memory, in each instance's index.
-- 2. Policy versions change contract (2): a tenant-wide change bumps the tenant's counter
--    only, no longer a copy in every workspace, and a workspace's effective version is the
--    tenant's counter plus the workspace's. `pv_workspaces`, which listed the workspaces a
--    tenant bump had to reach, goes. The counters are recomputed here from the log the
--    projection has applied (its checkpoint, minus the events it recorded as poison), with
--    the rule of `policy_versions::bump_for`, so they equal a rebuild from the log.
--    Access tokens now carry `policy_contract: 2`; the verifier refuses any token without it,
--    so every token minted before this migration is refused and its holder logs in again.
-- 3. The policy outbox is refilled with every counter's new value (and 0 for a key that
--    only the old fan-out had), so the compacted topic moves to the new contract too; the
--    messages carry `"contract": 2`, and consumers ignore a value without it.
DROP TABLE IF EXISTS projections.entitlements;
DROP TABLE IF EXISTS projections.pv_workspaces;

CREATE TEMPORARY TABLE v17_old_keys ON COMMIT DROP AS
    SELECT tenant_id, workspace_id FROM projections.policy_versions;

DELETE FROM projections.policy_versions;

INSERT INTO projections.policy_versions (tenant_id, workspace_id, version)
SELECT e.tenant_id,
       CASE
         WHEN e.event_type = 'workspace.deleted' THEN (e.data ->> 'workspace_id')::uuid
         WHEN e.event_type IN ('role.permissions_granted', 'role.permissions_revoked',
                               'role.deleted', 'assignment.created', 'assignment.deleted')
           THEN COALESCE((e.data ->> 'workspace_id')::uuid,
                         '00000000-0000-0000-0000-000000000000'::uuid)
         ELSE '00000000-0000-0000-0000-000000000000'::uuid
       END AS workspace_id,
       count(*)
FROM events e
JOIN projections.checkpoints c ON c.name = 'policy_versions'
WHERE (e.tx_id, e.position) <= (c.tx_id, c.position)
  AND e.event_type IN ('tenant.blocked', 'tenant.unblocked', 'tenant.deleted',
                       'workspace.deleted',
                       'user.disabled', 'user.enabled', 'user.deleted',
                       'service_account.disabled', 'service_account.enabled',
                       'service_account.deleted',
                       'group.member_added', 'group.member_removed', 'group.deleted',
                       'role.permissions_granted', 'role.permissions_revoked', 'role.deleted',
                       'assignment.created', 'assignment.deleted')
  AND NOT EXISTS (SELECT 1 FROM projections.failed_events f
                  WHERE f.projection = 'policy_versions' AND f.event_id = e.event_id)
GROUP BY 1, 2;

DELETE FROM projections.policy_outbox;
INSERT INTO projections.policy_outbox (tenant_id, workspace_id, policy_version)
SELECT k.tenant_id, k.workspace_id, COALESCE(v.version, 0)
FROM (SELECT tenant_id, workspace_id FROM v17_old_keys
      UNION SELECT tenant_id, workspace_id FROM projections.policy_versions) k
LEFT JOIN projections.policy_versions v USING (tenant_id, workspace_id)
ORDER BY k.tenant_id, k.workspace_id;
