-- Owned by the `audit_chain` projection (projections/src/audit_chain.rs): the SHA-256 hash
-- chain over the log in its stable global order (ADR 0004).
CREATE TABLE projections.audit_chain (
    tx_id    bigint NOT NULL,
    position bigint NOT NULL,
    event_id uuid   NOT NULL,
    hash     bytea  NOT NULL,
    PRIMARY KEY (tx_id, position)
);
