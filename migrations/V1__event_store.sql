-- The append-only event log, the transactional outbox and the write-side indexes.
-- Global read order is (tx_id, position) below the xid8 horizon: see docs/adr/0001-global-order-xid8-horizon.md.

CREATE TABLE events (
    position        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tx_id           xid8        NOT NULL DEFAULT pg_current_xact_id(),
    event_id        uuid        NOT NULL UNIQUE,
    stream_type     text        NOT NULL,
    stream_id       text        NOT NULL,
    stream_version  bigint      NOT NULL CHECK (stream_version > 0),
    tenant_id       uuid        NOT NULL,
    workspace_id    uuid,
    event_type      text        NOT NULL,
    schema_version  integer     NOT NULL CHECK (schema_version > 0),
    data            jsonb       NOT NULL,
    metadata        jsonb       NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, stream_version)
);

CREATE INDEX events_global_order ON events (tx_id, position);
CREATE INDEX events_tenant_order ON events (tenant_id, position);

-- Append-only, twice over: the privilege is revoked, and a trigger refuses what a role that
-- regains it (or owns the table) would attempt. Only a superuser disabling the trigger gets past.
CREATE FUNCTION events_are_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER events_append_only_rows BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_are_append_only();
CREATE TRIGGER events_append_only_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_are_append_only();

REVOKE UPDATE, DELETE, TRUNCATE ON events FROM PUBLIC;
REVOKE UPDATE, DELETE, TRUNCATE ON events FROM CURRENT_USER;

-- One row per event still to be published. Written in the command's transaction; removed by
-- the relay only after the broker acknowledged the message.
CREATE TABLE outbox (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tx_id       xid8        NOT NULL DEFAULT pg_current_xact_id(),
    position    bigint      NOT NULL, -- events.position, appended in the same statement
    enqueued_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE INDEX outbox_order ON outbox (tx_id, id);

-- Wake projectors and the relay when an append commits (NOTIFY is delivered at commit).
CREATE FUNCTION notify_log_appended() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('charter_log', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION notify_log_appended();

-- Write-side uniqueness (tenant slugs, workspace names, later usernames and emails), claimed in
-- the command's transaction so that two concurrent commands cannot both win.
CREATE TABLE unique_claims (
    claim_scope text        NOT NULL,
    claim_value text        NOT NULL,
    stream_id   text        NOT NULL,
    claimed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (claim_scope, claim_value)
);

-- Responses of commands sent with an Idempotency-Key, replayed verbatim on retry.
CREATE TABLE idempotency_keys (
    scope           text        NOT NULL,
    key             text        NOT NULL,
    request_hash    bytea       NOT NULL,
    response_status smallint    NOT NULL,
    response        jsonb       NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);

CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
