-- user.created v2 records given and family names (OpenID Connect's given_name/family_name).
-- Users created by a v1 event have neither: the upcaster never invents them.
ALTER TABLE projections.users
    ADD COLUMN given_name  text,
    ADD COLUMN family_name text;
