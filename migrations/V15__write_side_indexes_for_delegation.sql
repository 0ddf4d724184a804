-- The delegation rule ("a caller can only hand out what it holds") reads, in the command's
-- transaction, what a subject holds: a new group member receives everything the group's
-- roles grant, whoever rotates a service account's secret receives its access, and an MFA
-- reset weakens an account by everything it holds. Two uniqueness claims double as the
-- write side's indexes for that, so each read is one index scan.

-- 1. An assignment's claim is keyed by its subject.
-- Before: scope `assignment:<tenant>`, value `<role>:<subject type>:<subject>:<workspace>`
-- (the value lowercased, so the type is `user`, `group` or `serviceaccount`).
-- After:  scope `assignment:<tenant>:<subject type>:<subject>`, value `<role>:<workspace>`.
-- The same assignments stay unique: a subject id names one subject of one type.
UPDATE unique_claims
SET claim_scope = claim_scope || ':' || split_part(claim_value, ':', 2) || ':'
                  || split_part(claim_value, ':', 3),
    claim_value = split_part(claim_value, ':', 1) || ':' || split_part(claim_value, ':', 4)
WHERE claim_scope LIKE 'assignment:%'
  AND array_length(string_to_array(claim_scope, ':'), 1) = 2;

-- 2. Every current membership gets a claim `group.member:<tenant>:<user>` = `<group>`, held
-- by the group's stream: the latest membership event of each (group, user) is an addition,
-- and the group is not deleted.
INSERT INTO unique_claims (claim_scope, claim_value, stream_id)
SELECT 'group.member:' || m.tenant_id || ':' || m.user_id, lower(m.group_id), m.stream_id
FROM (
    SELECT DISTINCT ON (e.stream_id, e.data ->> 'user_id')
           e.stream_id, e.tenant_id, e.data ->> 'user_id' AS user_id,
           e.data ->> 'group_id' AS group_id, e.event_type
    FROM events e
    WHERE e.stream_type = 'group'
      AND e.event_type IN ('group.member_added', 'group.member_removed')
    ORDER BY e.stream_id, e.data ->> 'user_id', e.stream_version DESC
) m
WHERE m.event_type = 'group.member_added'
  AND NOT EXISTS (SELECT 1 FROM events d
                  WHERE d.stream_id = m.stream_id AND d.event_type = 'group.deleted');
