-- Write-side index of the tenant hierarchy, maintained in the same transaction as the
-- tenant.created and tenant.moved events it mirrors (like unique_claims, it is derived from
-- the log and could be rebuilt from it). Commands read ancestors and subtree heights from it
-- under the hierarchy advisory lock, so depth and cycle checks see a consistent tree.
CREATE TABLE tenant_hierarchy (
    tenant_id uuid PRIMARY KEY,
    parent_id uuid
);
CREATE INDEX tenant_hierarchy_parent ON tenant_hierarchy (parent_id);

INSERT INTO tenant_hierarchy (tenant_id, parent_id)
SELECT DISTINCT ON (tenant_id) tenant_id, (data ->> 'parent_id')::uuid
FROM events
WHERE event_type IN ('tenant.created', 'tenant.moved')
ORDER BY tenant_id, stream_version DESC;
