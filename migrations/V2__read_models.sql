-- Read models live in their own schema so that replay can rebuild them side by side in a
-- shadow schema (CREATE TABLE shadow.x (LIKE projections.x INCLUDING ALL)).
CREATE SCHEMA projections;

-- One checkpoint per projection, advanced in the same transaction as its writes.
CREATE TABLE projections.checkpoints (
    name        text PRIMARY KEY,
    tx_id       xid8        NOT NULL DEFAULT '0',
    position    bigint      NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Owned by the `tenants` projection (projections/src/tenants.rs).
CREATE TABLE projections.tenants (
    tenant_id      uuid PRIMARY KEY,
    name           text        NOT NULL,
    slug           text        NOT NULL,
    parent_id      uuid,
    status         text        NOT NULL,
    blocked_reason text,
    version        bigint      NOT NULL,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL
);
CREATE INDEX tenants_parent ON projections.tenants (parent_id);

-- Owned by the `workspaces` projection (projections/src/workspaces.rs).
CREATE TABLE projections.workspaces (
    workspace_id uuid PRIMARY KEY,
    tenant_id    uuid        NOT NULL,
    name         text        NOT NULL,
    deleted      boolean     NOT NULL DEFAULT false,
    version      bigint      NOT NULL,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);
CREATE INDEX workspaces_tenant ON projections.workspaces (tenant_id, workspace_id);
