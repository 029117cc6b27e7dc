-- Outpost schema, version 1. Written once for SQLite and PostgreSQL:
-- {ID} becomes the backend's auto-increment primary key. Every integer is
-- 64-bit. Statements are separated by semicolons at line ends.

CREATE TABLE domains (
    id          {ID},
    name        TEXT NOT NULL UNIQUE,
    -- address that receives mail for unknown local parts; NULL: none
    catchall    TEXT,
    created_at  BIGINT NOT NULL
);

-- Users and groups (distribution lists).
CREATE TABLE principals (
    id            {ID},
    kind          TEXT NOT NULL CHECK (kind IN ('user', 'group')),
    display_name  TEXT NOT NULL DEFAULT '',
    -- argon2id PHC string; NULL for groups and directory-sourced users
    password_hash TEXT,
    -- 'internal', or the external directory this principal comes from
    source        TEXT NOT NULL DEFAULT 'internal',
    -- stable id in an external directory (objectGUID, entryUUID)
    external_id   TEXT UNIQUE,
    quota_bytes   BIGINT NOT NULL DEFAULT 0,
    disabled      BIGINT NOT NULL DEFAULT 0,
    created_at    BIGINT NOT NULL
);

-- Every address belongs to exactly one principal; one per principal is primary.
CREATE TABLE addresses (
    address      TEXT PRIMARY KEY,
    principal_id BIGINT NOT NULL REFERENCES principals(id) ON DELETE CASCADE,
    domain_id    BIGINT NOT NULL REFERENCES domains(id),
    is_primary   BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX addresses_principal ON addresses(principal_id);

-- Members of a group, by address: a user, another group, or an outside address.
CREATE TABLE group_members (
    group_id  BIGINT NOT NULL REFERENCES principals(id) ON DELETE CASCADE,
    member    TEXT NOT NULL,
    PRIMARY KEY (group_id, member)
);

-- Mailboxes now; calendars and address books later share the table, so one
-- change journal serves them all.
CREATE TABLE collections (
    id             {ID},
    principal_id   BIGINT NOT NULL REFERENCES principals(id) ON DELETE CASCADE,
    kind           TEXT NOT NULL DEFAULT 'mailbox',
    name           TEXT NOT NULL,
    special_use    TEXT,
    subscribed     BIGINT NOT NULL DEFAULT 1,
    uidvalidity    BIGINT NOT NULL,
    uidnext        BIGINT NOT NULL DEFAULT 1,
    highest_modseq BIGINT NOT NULL DEFAULT 1,
    created_at     BIGINT NOT NULL,
    UNIQUE (principal_id, kind, name)
);

-- Content-addressed message bodies (files under the blob directory).
CREATE TABLE blobs (
    hash       TEXT PRIMARY KEY,
    size       BIGINT NOT NULL,
    refcount   BIGINT NOT NULL,
    -- set when refcount reached 0; the file is removed by the sweeper
    zero_since BIGINT
);
CREATE INDEX blobs_zero ON blobs(zero_since);

CREATE TABLE messages (
    id            {ID},
    collection_id BIGINT NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
    uid           BIGINT NOT NULL,
    blob_hash     TEXT NOT NULL REFERENCES blobs(hash),
    size          BIGINT NOT NULL,
    internal_date BIGINT NOT NULL,
    save_date     BIGINT NOT NULL,
    -- \Seen=1 \Answered=2 \Flagged=4 \Deleted=8 \Draft=16
    flags         BIGINT NOT NULL DEFAULT 0,
    modseq        BIGINT NOT NULL,
    subject       TEXT,
    sent_date     BIGINT,
    message_id    TEXT,
    -- JSON: envelope, MIME structure with offsets, threading ids (see meta.rs)
    meta          TEXT NOT NULL,
    UNIQUE (collection_id, uid)
);
CREATE INDEX messages_modseq ON messages(collection_id, modseq);

CREATE TABLE message_keywords (
    message_id BIGINT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    keyword    TEXT NOT NULL,
    PRIMARY KEY (message_id, keyword)
);

-- The one change journal. kind: 'add', 'flags', 'expunge' (item = uid),
-- 'create', 'rename', 'delete' (item = 0).
CREATE TABLE changes (
    collection_id BIGINT NOT NULL,
    modseq        BIGINT NOT NULL,
    item          BIGINT NOT NULL,
    kind          TEXT NOT NULL,
    at            BIGINT NOT NULL,
    PRIMARY KEY (collection_id, modseq, item)
);

-- Key/value facts about the installation (e.g. the SRS secret).
CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
