-- Authentication: what the users read model shows of credentials, the service accounts read
-- model, and the notifications that keep token verifiers' caches honest.

ALTER TABLE projections.users
    ADD COLUMN mfa_enabled  boolean NOT NULL DEFAULT false,
    ADD COLUMN locked_until timestamptz;

-- Owned by the `service_accounts` projection (projections/src/service_accounts.rs).
CREATE TABLE projections.service_accounts (
    service_account_id uuid PRIMARY KEY,
    tenant_id          uuid        NOT NULL,
    name               text        NOT NULL,
    status             text        NOT NULL,
    version            bigint      NOT NULL,
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL
);
CREATE INDEX service_accounts_tenant ON projections.service_accounts (tenant_id, service_account_id);

-- Token verifiers cache "this token's dynamic checks passed" and drop the whole cache on
-- `NOTIFY charter_auth`. It fires when a change that can invalidate a live token commits:
-- a policy_version bump (roles, assignments, memberships, disabled users, blocked tenants),
-- an account_version or status change of a user or a service account, a token revocation.
-- Identical notifications within one transaction are delivered once.
CREATE FUNCTION projections.notify_auth() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('charter_auth', '');
    RETURN NULL;
END $$;

CREATE TRIGGER policy_versions_notify_auth
    AFTER INSERT OR UPDATE ON projections.policy_versions
    FOR EACH STATEMENT EXECUTE FUNCTION projections.notify_auth();

CREATE TRIGGER users_notify_auth
    AFTER UPDATE ON projections.users
    FOR EACH ROW
    WHEN (OLD.account_version IS DISTINCT FROM NEW.account_version
          OR OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION projections.notify_auth();

CREATE TRIGGER tenants_notify_auth
    AFTER UPDATE ON projections.tenants
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION projections.notify_auth();

CREATE TRIGGER service_accounts_notify_auth
    AFTER UPDATE ON projections.service_accounts
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION projections.notify_auth();

-- Revocations are checked on the write side (the `token-<jti>` stream exists), so they
-- notify from the append itself. Only revocations pay for it.
CREATE FUNCTION notify_token_revoked() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('charter_auth', '');
    RETURN NULL;
END $$;

CREATE TRIGGER events_notify_token_revoked
    AFTER INSERT ON events
    FOR EACH ROW WHEN (NEW.stream_type = 'token')
    EXECUTE FUNCTION notify_token_revoked();
