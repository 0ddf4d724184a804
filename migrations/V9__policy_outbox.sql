-- Owned by the `policy_versions` projection: one row per policy_version bump still to be
-- published to the compacted topic `charter.iam.policy.v1` (kafka.policy_topic). Written in
-- the projection's transaction, together with the counter, so a bump is published exactly
-- when it is projected; removed by the relay only after the broker acknowledged the message.
--
-- It lives in the projections schema on purpose: a replay into a shadow schema writes the
-- shadow's copy (created LIKE this one), which nothing relays, so a rebuild never publishes.
-- workspace_id is the nil uuid for the tenant scope, as in policy_versions.
CREATE TABLE projections.policy_outbox (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tx_id          xid8        NOT NULL DEFAULT pg_current_xact_id(),
    tenant_id      uuid        NOT NULL,
    workspace_id   uuid        NOT NULL,
    policy_version bigint      NOT NULL,
    enqueued_at    timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- The relay reads it in the same order as the events outbox: (tx_id, id) below the horizon.
CREATE INDEX policy_outbox_order ON projections.policy_outbox (tx_id, id);
