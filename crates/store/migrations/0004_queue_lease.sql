-- Queue delivery state: a recipient being delivered is leased until
-- lease_until (seconds since the epoch), so two workers or nodes never take
-- it at once, and a node that dies (kill -9) frees it when the lease ends.
ALTER TABLE queue_recipients ADD COLUMN lease_until BIGINT NOT NULL DEFAULT 0;
-- 1 once the sender was sent a delay notice for this recipient.
ALTER TABLE queue_recipients ADD COLUMN delay_notified BIGINT NOT NULL DEFAULT 0;
CREATE INDEX queue_recipients_lease ON queue_recipients(status, lease_until);
