-- A service account's platform-wide grants (`service_account.platform_access_set`), which a
-- platform administrator sets and its client credentials tokens carry as
-- `platform_permissions`. The event also carries the account's new `account_version`, so a
-- change makes every token minted before it stale, as a secret rotation does; the existing
-- trigger (V16) already notifies verifiers when `account_version` moves. No event sets it
-- before this migration, so there is nothing to backfill.
ALTER TABLE projections.service_accounts
    ADD COLUMN platform_permissions text[] NOT NULL DEFAULT '{}';
