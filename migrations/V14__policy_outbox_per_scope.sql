-- The policy topic is compacted: a consumer only ever needs a scope's newest policy_version
-- (versions only grow, and a token is stale when its version is below the scope's). So the
-- outbox keeps one row per scope, which each bump overwrites with the new version, rather
-- than one row per bump: a tenant-wide change bumps every workspace of the tenant, and under
-- a burst of them (or while the broker is down) a row per bump grew by millions.
--
-- The row keeps its place in the queue (id, tx_id, enqueued_at) when it is overwritten, so a
-- busy scope is not starved and `charter_relay_lag_seconds` still measures the oldest
-- unpublished change. The relay deletes a row only if it still holds the version it published.
--
-- Deploy: the unique index refuses the previous release's plain INSERT whenever its scope is
-- still queued, so stop every instance of the previous release before this migration runs
-- (no rolling upgrade across V14).
DELETE FROM projections.policy_outbox
 WHERE id IN (SELECT id FROM (
         SELECT id, row_number() OVER (PARTITION BY tenant_id, workspace_id
                                       ORDER BY policy_version DESC, id DESC) AS newest
         FROM projections.policy_outbox) ranked
       WHERE newest > 1);

CREATE UNIQUE INDEX policy_outbox_scope ON projections.policy_outbox (tenant_id, workspace_id);
