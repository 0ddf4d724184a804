-- The policy topic is compacted: a consumer only ever needs a scope's newest policy_version
-- (versions only grow, and a token is stale when its version is below the scope's). So the
-- outbox keeps one row per scope, which each bump overwrites with the new version, rather
-- than one row per bump: a tenant-wide change bumps every workspace of the tenant, and under
-- a burst of them (or while the broker is down) a row per bump grew by millions.
--
-- The row keeps its place in the queue (id, tx_id, enqueued_at) when it is overwritten, so a
-- busy scope is not starved and `charter_relay_lag_seconds` still measures the oldest
-- unpublished change. The relay deletes a row only if it still holds the version it published.
DELETE FROM projections.policy_outbox o
 USING projections.policy_outbox newer
 WHERE newer.tenant_id = o.tenant_id
   AND newer.workspace_id = o.workspace_id
   AND newer.policy_version > o.policy_version;

CREATE UNIQUE INDEX policy_outbox_scope ON projections.policy_outbox (tenant_id, workspace_id);
