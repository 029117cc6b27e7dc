-- Small message bodies are kept in the blob row instead of a file, so that
-- the commit filing a batch of deliveries also makes their bodies durable
-- (one flush per batch instead of one file and one flush per message).
-- NULL: the body is the file blobs/<2 hex>/<hash>.
ALTER TABLE blobs ADD COLUMN data {BYTES};
