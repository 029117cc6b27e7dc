-- What a global address list shows of a principal besides its name and
-- addresses (issue 15): the usual Active Directory attributes. NULL: not
-- set. Built-in users and groups keep them here; LDAP entries keep them in
-- the directory.
ALTER TABLE principals ADD COLUMN given_name TEXT;
ALTER TABLE principals ADD COLUMN surname TEXT;
ALTER TABLE principals ADD COLUMN title TEXT;
ALTER TABLE principals ADD COLUMN department TEXT;
ALTER TABLE principals ADD COLUMN company TEXT;
ALTER TABLE principals ADD COLUMN office TEXT;
ALTER TABLE principals ADD COLUMN phone TEXT;
ALTER TABLE principals ADD COLUMN mobile TEXT;
-- Prefix search over names and addresses without reading every principal:
-- one row per lower-cased search term (each address, the display name, the
-- given name and surname, and each word of them). Terms are UTF-8 bytes so
-- that "starts with" is the byte range [prefix, prefix || 0xFF) on both
-- backends, whatever the database's text collation.
CREATE TABLE directory_terms (
    term         {BYTES} NOT NULL,
    principal_id BIGINT NOT NULL REFERENCES principals(id) ON DELETE CASCADE,
    PRIMARY KEY (term, principal_id)
);
CREATE INDEX directory_terms_principal ON directory_terms(principal_id);
