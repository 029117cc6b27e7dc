-- Calendars, task lists and address books (see docs/storage.md,
-- "Groupware"). Their collections are rows of `collections` (kind
-- 'calendar' or 'addressbook'), so they share ids and both journals with
-- mailboxes; what only they have lives in the tables below, in plain
-- columns a `psql` user can query.

-- DAV properties of a calendar or address book collection.
CREATE TABLE groupware_collections (
    collection_id BIGINT PRIMARY KEY REFERENCES collections(id) ON DELETE CASCADE,
    display_name  TEXT NOT NULL DEFAULT '',
    -- '#RRGGBB' or '#RRGGBBAA' as clients send it (Apple, Thunderbird)
    color         TEXT,
    description   TEXT,
    -- CALDAV:calendar-timezone: a VCALENDAR with one VTIMEZONE, kept as sent
    timezone      TEXT,
    -- CALDAV:supported-calendar-component-set, comma-separated:
    -- 'VEVENT,VTODO'; '' for an address book
    components    TEXT NOT NULL DEFAULT '',
    sort_order    BIGINT NOT NULL DEFAULT 0,
    -- 1: users may read but not write (the Global Address List)
    read_only     BIGINT NOT NULL DEFAULT 0
);

-- One calendar object resource or address object resource. The source is
-- an immutable blob (blobs.hash); everything a query needs is a column.
CREATE TABLE groupware_objects (
    id            {ID},
    collection_id BIGINT NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
    -- resource name: the last segment of its DAV href
    name          TEXT NOT NULL,
    -- per-collection item number, from collections.uidnext (never reused)
    item          BIGINT NOT NULL,
    uid           TEXT NOT NULL,
    -- 'VEVENT', 'VTODO', 'VJOURNAL' or 'VCARD'
    component     TEXT NOT NULL,
    blob_hash     TEXT NOT NULL REFERENCES blobs(hash),
    -- strong ETag (without quotes): the content hash
    etag          TEXT NOT NULL,
    size          BIGINT NOT NULL,
    modseq        BIGINT NOT NULL,
    -- SUMMARY of an event/task, FN (or N, e-mail) of a contact
    summary       TEXT,
    -- UTC seconds; first_start NULL: no time at all (a task without dates);
    -- last_end NULL with first_start set: unbounded recurrence
    first_start   BIGINT,
    last_end      BIGINT,
    recurring     BIGINT NOT NULL DEFAULT 0,
    organizer     TEXT,
    sequence      BIGINT NOT NULL DEFAULT 0,
    -- the window groupware_instances covers for this object
    instances_from  BIGINT,
    instances_until BIGINT,
    -- contacts: 'individual', 'group', 'org', 'location'; vCard version
    contact_kind  TEXT,
    vcard_version TEXT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    UNIQUE (collection_id, name),
    UNIQUE (collection_id, uid),
    UNIQUE (collection_id, item)
);
CREATE INDEX groupware_objects_modseq ON groupware_objects(collection_id, modseq);
CREATE INDEX groupware_objects_start ON groupware_objects(collection_id, first_start);
CREATE INDEX groupware_objects_blob ON groupware_objects(blob_hash);

-- Attendees of a calendar object (scheduling: whose calendars it concerns).
CREATE TABLE groupware_attendees (
    object_id   BIGINT NOT NULL REFERENCES groupware_objects(id) ON DELETE CASCADE,
    -- calendar address without mailto:, lower case
    address     TEXT NOT NULL,
    partstat    TEXT NOT NULL,
    role        TEXT,
    common_name TEXT,
    rsvp        BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (object_id, address)
);
CREATE INDEX groupware_attendees_address ON groupware_attendees(address);

-- Precomputed instances over the object's window: time-range queries and
-- free/busy are index lookups here.
CREATE TABLE groupware_instances (
    object_id     BIGINT NOT NULL REFERENCES groupware_objects(id) ON DELETE CASCADE,
    collection_id BIGINT NOT NULL,
    start_utc     BIGINT NOT NULL,
    end_utc       BIGINT NOT NULL,
    -- RECURRENCE-ID in UTC; NULL for a non-recurring object
    recurrence_id BIGINT,
    transparent   BIGINT NOT NULL DEFAULT 0,
    -- 'TENTATIVE', 'CONFIRMED', 'CANCELLED' or NULL
    status        TEXT,
    all_day       BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX groupware_instances_range ON groupware_instances(collection_id, start_utc);
CREATE INDEX groupware_instances_object ON groupware_instances(object_id);

-- Searchable fields of a contact: field is 'fn', 'family', 'given',
-- 'nickname', 'org' or 'email'; folded is the value in lower case (the
-- i;unicode-casemap comparison of CardDAV text-match).
CREATE TABLE contact_fields (
    object_id     BIGINT NOT NULL REFERENCES groupware_objects(id) ON DELETE CASCADE,
    collection_id BIGINT NOT NULL,
    field         TEXT NOT NULL,
    value         TEXT NOT NULL,
    folded        TEXT NOT NULL
);
CREATE INDEX contact_fields_object ON contact_fields(object_id);
CREATE INDEX contact_fields_folded ON contact_fields(collection_id, field, folded);

-- Members of a contact group (vCard 4 MEMBER, Apple's
-- X-ADDRESSBOOKSERVER-MEMBER), as written: urn:uuid:... or mailto:...
CREATE TABLE contact_members (
    object_id BIGINT NOT NULL REFERENCES groupware_objects(id) ON DELETE CASCADE,
    member    TEXT NOT NULL,
    PRIMARY KEY (object_id, member)
);

-- Sharing: who besides the owner may use a collection.
CREATE TABLE collection_grants (
    collection_id BIGINT NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
    grantee_id    BIGINT NOT NULL REFERENCES principals(id) ON DELETE CASCADE,
    rights        TEXT NOT NULL CHECK (rights IN ('read', 'read-write', 'free-busy')),
    granted_at    BIGINT NOT NULL,
    PRIMARY KEY (collection_id, grantee_id)
);
CREATE INDEX collection_grants_grantee ON collection_grants(grantee_id);

-- Scheduling needs rooms and resources. principals.kind keeps 'user' and
-- 'group' (SQLite cannot change the CHECK constraint of 0001 without
-- rebuilding the table every other table references); the calendar user
-- type (RFC 5545 CUTYPE) is a column of its own: 'individual', 'group',
-- 'resource', 'room' or 'unknown'. Rooms and resources are principals of
-- kind 'user' with their type here.
ALTER TABLE principals ADD COLUMN calendar_user_type TEXT NOT NULL DEFAULT 'individual';
UPDATE principals SET calendar_user_type = 'group' WHERE kind = 'group';
-- The owner of a domain's Global Address List: a principal with no address
-- and no password (kind 'group', calendar_user_type 'unknown', source
-- 'gal') whose gal_domain_id names the domain. Not listed as a user or
-- group.
ALTER TABLE principals ADD COLUMN gal_domain_id BIGINT;
CREATE UNIQUE INDEX principals_gal_domain ON principals(gal_domain_id);
