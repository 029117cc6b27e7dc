-- Bodies appended to pack files (blobs/packs/<pack>.pack) with the rest of
-- their batch: one write and one flush per batch of deliveries. NULL: the
-- body is in `data` or in its own file.
ALTER TABLE blobs ADD COLUMN pack BIGINT;
ALTER TABLE blobs ADD COLUMN pack_offset BIGINT;
CREATE INDEX blobs_pack ON blobs(pack);
