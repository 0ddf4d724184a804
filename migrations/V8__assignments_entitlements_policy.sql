-- Owned by the `assignments` projection.
CREATE TABLE projections.assignments (
    assignment_id uuid PRIMARY KEY,
    tenant_id     uuid        NOT NULL,
    workspace_id  uuid,
    role_id       uuid        NOT NULL,
    subject_type  text        NOT NULL,
    subject_id    uuid        NOT NULL,
    created_at    timestamptz NOT NULL
);
CREATE INDEX assignments_tenant ON projections.assignments (tenant_id, assignment_id);

-- Owned by the `entitlements` projection: its own copy of what entitlements depend on, and
-- the materialized result, one row per user x scope (workspace_id nil = the tenant scope).
CREATE TABLE projections.ent_tenants (tenant_id uuid PRIMARY KEY, active boolean NOT NULL);
CREATE TABLE projections.ent_workspaces (
    workspace_id uuid PRIMARY KEY,
    tenant_id    uuid    NOT NULL,
    live         boolean NOT NULL
);
CREATE INDEX ent_workspaces_tenant ON projections.ent_workspaces (tenant_id);
CREATE TABLE projections.ent_users (
    user_id   uuid PRIMARY KEY,
    tenant_id uuid    NOT NULL,
    active    boolean NOT NULL,
    live      boolean NOT NULL
);
CREATE INDEX ent_users_tenant ON projections.ent_users (tenant_id);
CREATE TABLE projections.ent_groups (group_id uuid PRIMARY KEY, tenant_id uuid NOT NULL, live boolean NOT NULL);
CREATE TABLE projections.ent_members (
    group_id uuid NOT NULL,
    user_id  uuid NOT NULL,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX ent_members_user ON projections.ent_members (user_id);
CREATE TABLE projections.ent_roles (
    role_id      uuid PRIMARY KEY,
    tenant_id    uuid    NOT NULL,
    workspace_id uuid,
    permissions  text[]  NOT NULL,
    live         boolean NOT NULL
);
CREATE TABLE projections.ent_assignments (
    assignment_id uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL,
    workspace_id  uuid,
    role_id       uuid NOT NULL,
    subject_type  text NOT NULL,
    subject_id    uuid NOT NULL
);
CREATE INDEX ent_assignments_role ON projections.ent_assignments (role_id);
CREATE INDEX ent_assignments_subject ON projections.ent_assignments (subject_id);
CREATE TABLE projections.entitlements (
    tenant_id    uuid   NOT NULL,
    user_id      uuid   NOT NULL,
    workspace_id uuid   NOT NULL,
    roles        uuid[] NOT NULL,
    permissions  text[] NOT NULL,
    PRIMARY KEY (tenant_id, user_id, workspace_id)
);

-- Owned by the `policy_versions` projection: one counter per tenant (workspace_id nil) and per
-- workspace, bumped once by every change that can alter an entitlement in that scope.
CREATE TABLE projections.pv_workspaces (
    workspace_id uuid PRIMARY KEY,
    tenant_id    uuid    NOT NULL,
    live         boolean NOT NULL
);
CREATE INDEX pv_workspaces_tenant ON projections.pv_workspaces (tenant_id);
CREATE TABLE projections.policy_versions (
    tenant_id    uuid   NOT NULL,
    workspace_id uuid   NOT NULL,
    version      bigint NOT NULL,
    PRIMARY KEY (tenant_id, workspace_id)
);
