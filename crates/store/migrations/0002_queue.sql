-- The outbound queue: one row per message, one per recipient with its own
-- state, grouped by destination domain for delivery.

CREATE TABLE queue_messages (
    id             {ID},
    blob_hash      TEXT NOT NULL REFERENCES blobs(hash),
    size           BIGINT NOT NULL,
    -- envelope sender; '' for the null sender
    mail_from      TEXT NOT NULL,
    envid          TEXT,
    -- 'full' or 'headers' (DSN RET), NULL when not given
    ret            TEXT,
    -- '7bit', '8bitmime' or 'binarymime'
    body           TEXT NOT NULL DEFAULT '7bit',
    smtputf8       BIGINT NOT NULL DEFAULT 0,
    -- principal that submitted it (NULL for relayed or generated mail)
    submitted_by   BIGINT,
    created_at     BIGINT NOT NULL
);

CREATE TABLE queue_recipients (
    id             {ID},
    message_id     BIGINT NOT NULL REFERENCES queue_messages(id) ON DELETE CASCADE,
    address        TEXT NOT NULL,
    domain         TEXT NOT NULL,
    -- DSN NOTIFY as given ('never' or a comma list), NULL when not given
    notify         TEXT,
    orcpt          TEXT,
    -- 'pending', 'delivered', 'failed'
    status         TEXT NOT NULL DEFAULT 'pending',
    attempts       BIGINT NOT NULL DEFAULT 0,
    next_attempt   BIGINT NOT NULL,
    last_error     TEXT
);
CREATE INDEX queue_recipients_due ON queue_recipients(status, next_attempt);
CREATE INDEX queue_recipients_message ON queue_recipients(message_id);
