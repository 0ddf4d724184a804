-- Poison events: an event a projection could not apply in `projections.max_attempts`
-- consecutive attempts. The runner records it here and advances its checkpoint past it in the
-- same transaction, so the projection goes on with the rest of the log. /ready reports
-- `degraded` while any row exists: nothing is skipped silently. Delete a row once the event
-- has been dealt with (e.g. the read model repaired or rebuilt).
CREATE TABLE projections.failed_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    projection  text        NOT NULL,
    position    bigint      NOT NULL,
    tx_id       xid8        NOT NULL,
    event_id    uuid        NOT NULL,
    stream_id   text        NOT NULL,
    event_type  text        NOT NULL,
    error       text        NOT NULL,
    attempts    integer     NOT NULL,
    failed_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT failed_events_projection_event_key UNIQUE (projection, event_id)
);
CREATE INDEX failed_events_recent ON projections.failed_events (failed_at DESC, id DESC);
