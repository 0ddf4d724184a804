-- Read model of roles, owned by the `roles` projection (projections/src/roles.rs).
CREATE TABLE projections.roles (
    role_id      uuid PRIMARY KEY,
    tenant_id    uuid        NOT NULL,
    workspace_id uuid,
    name         text        NOT NULL,
    permissions  text[]      NOT NULL,
    template     text,
    deleted      boolean     NOT NULL DEFAULT false,
    version      bigint      NOT NULL,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);
CREATE INDEX roles_tenant ON projections.roles (tenant_id, role_id);
