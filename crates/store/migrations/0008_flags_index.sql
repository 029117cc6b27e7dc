-- A covering index for the reads that need only a message's UID, flags
-- and modseq: IMAP SELECT/EXAMINE of a mailbox and FETCH of FLAGS, UID and
-- MODSEQ over a UID range. Without it, SQLite reads every wide `messages`
-- row (the metadata JSON sits in the row) to get three integers; with it,
-- the read touches the index pages alone (SQLite's indexes carry the rowid,
-- `messages.id`, so the keyword join is covered too). PostgreSQL can answer
-- the same reads with an index-only scan once the table is vacuumed.
-- It makes the older UNIQUE (collection_id, uid) index a prefix of this
-- one; that index stays, as the constraint.
CREATE INDEX messages_flags ON messages(collection_id, uid, flags, modseq);
