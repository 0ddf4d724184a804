-- A service account's tokens end when its secret is rotated, as a user's end at logout-all:
-- `account_version` counts the rotations (`service_account.secret_rotated`), client
-- credentials tokens carry the count at minting, and a token below the current count is
-- refused. Tokens minted before this migration carry 0, which stays valid for accounts
-- whose secret was never rotated.
ALTER TABLE projections.service_accounts
    ADD COLUMN account_version bigint NOT NULL DEFAULT 0;

-- Backfilled with the rotations the projection has applied: those after its checkpoint
-- add themselves when it applies them, so the column equals a rebuild from the log.
UPDATE projections.service_accounts s
SET account_version = r.rotations
FROM (SELECT (e.data ->> 'service_account_id')::uuid AS id, count(*) AS rotations
      FROM events e, projections.checkpoints c
      WHERE e.event_type = 'service_account.secret_rotated'
        AND c.name = 'service_accounts'
        AND (e.tx_id, e.position) <= (c.tx_id, c.position)
      GROUP BY 1) r
WHERE r.id = s.service_account_id;

-- Verifiers drop their caches when a rotation is projected, as for a status change.
DROP TRIGGER service_accounts_notify_auth ON projections.service_accounts;
CREATE TRIGGER service_accounts_notify_auth
    AFTER UPDATE ON projections.service_accounts
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status
          OR OLD.account_version IS DISTINCT FROM NEW.account_version)
    EXECUTE FUNCTION projections.notify_auth();
