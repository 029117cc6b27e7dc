-- The change journal, ready for every sync protocol (see docs/storage.md).
--
-- Item rows of `changes` (item <> 0) are now named by neutral kinds:
-- 'add', 'change' (flags, keywords, content), 'remove' (a tombstone).
-- Collection rows (item = 0) keep 'create' and 'rename'.
UPDATE changes SET kind = 'change' WHERE kind = 'flags';
UPDATE changes SET kind = 'remove' WHERE kind = 'expunge';
-- A tombstone carries what a client needs to name the item it lost:
-- `item` is the per-collection item number (the IMAP UID for mail; the
-- ActiveSync ServerId is built from it), `item_id` the item's store-wide id
-- (messages.id; JMAP ids and EWS ItemIds are built from it), `name` the
-- resource name inside the collection (a DAV href's last segment; NULL for
-- mail) and `object_uid` the iCalendar/vCard UID (NULL for mail). Rows
-- written before this migration have NULL item_id.
ALTER TABLE changes ADD COLUMN item_id BIGINT;
ALTER TABLE changes ADD COLUMN name TEXT;
ALTER TABLE changes ADD COLUMN object_uid TEXT;
-- The sweep prunes by age.
CREATE INDEX changes_at ON changes(at);
-- The oldest modseq the collection's journal can still answer for: rows at
-- or below it have been pruned. A token below it must start over.
ALTER TABLE collections ADD COLUMN journal_floor BIGINT NOT NULL DEFAULT 0;

-- The per-principal journal of collection changes. No foreign key to
-- collections: a row outlives the collection it names, so a folder-list
-- sync learns that the collection went away. Removed with the principal.
CREATE TABLE principal_changes (
    principal_id    BIGINT NOT NULL,
    -- the principal's own sequence (principals.journal_seq)
    seq             BIGINT NOT NULL,
    collection_id   BIGINT NOT NULL,
    -- collections.kind: 'mailbox', later calendars and address books
    collection_kind TEXT NOT NULL,
    -- 'create', 'rename' (same parent), 'move' (parent path changed),
    -- 'delete', 'acl'
    kind            TEXT NOT NULL,
    -- the collection's name after the change (for 'delete': its last name)
    name            TEXT NOT NULL,
    -- 'rename' and 'move': the name before
    old_name        TEXT,
    at              BIGINT NOT NULL,
    PRIMARY KEY (principal_id, seq)
);
CREATE INDEX principal_changes_at ON principal_changes(at);
ALTER TABLE principals ADD COLUMN journal_seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE principals ADD COLUMN journal_floor BIGINT NOT NULL DEFAULT 0;
-- Existing collections enter the principal journal as created.
INSERT INTO principal_changes (principal_id, seq, collection_id, collection_kind, kind, name, at)
SELECT principal_id, ROW_NUMBER() OVER (PARTITION BY principal_id ORDER BY id), id, kind, 'create', name, created_at
FROM collections;
UPDATE principals SET journal_seq = (SELECT COUNT(*) FROM collections WHERE collections.principal_id = principals.id);

-- Whether a body ends with CRLF (1) or not (0), recorded when it is stored;
-- NULL until known (older bodies are filled in after the migration).
ALTER TABLE blobs ADD COLUMN ends_crlf BIGINT;
