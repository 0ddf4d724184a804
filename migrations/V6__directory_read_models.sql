-- Read models of the directory: users, groups with their members, the permission registry.
-- Each is owned by the projection of the same name in projections/src/.

CREATE TABLE projections.users (
    user_id         uuid PRIMARY KEY,
    tenant_id       uuid        NOT NULL,
    username        text        NOT NULL,
    email           text        NOT NULL,
    display_name    text,
    status          text        NOT NULL,
    has_password    boolean     NOT NULL,
    account_version bigint      NOT NULL,
    version         bigint      NOT NULL,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
CREATE INDEX users_tenant ON projections.users (tenant_id, user_id);

CREATE TABLE projections.groups (
    group_id   uuid PRIMARY KEY,
    tenant_id  uuid        NOT NULL,
    name       text        NOT NULL,
    deleted    boolean     NOT NULL DEFAULT false,
    version    bigint      NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX groups_tenant ON projections.groups (tenant_id, group_id);

CREATE TABLE projections.group_members (
    group_id  uuid NOT NULL,
    user_id   uuid NOT NULL,
    tenant_id uuid NOT NULL,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_user ON projections.group_members (user_id);

CREATE TABLE projections.permissions (
    name          text PRIMARY KEY,
    service       text        NOT NULL,
    label         text        NOT NULL,
    registered_at timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);
CREATE INDEX permissions_service ON projections.permissions (service, name);
