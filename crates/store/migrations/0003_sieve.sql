-- Sieve: per-user scripts (ManageSieve, RFC 5804) and the vacation reply
-- log (RFC 5230: one reply per sender per :days).

CREATE TABLE sieve_scripts (
    id           {ID},
    principal_id BIGINT NOT NULL REFERENCES principals(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    content      TEXT NOT NULL,
    -- 1 for the user's one active script, 0 otherwise
    active       BIGINT NOT NULL DEFAULT 0,
    updated_at   BIGINT NOT NULL,
    UNIQUE (principal_id, name)
);

-- Who got a vacation reply (or which duplicate-test id was seen) and when.
-- sender '' with handle 'dup:<id>' records the duplicate extension's ids.
CREATE TABLE sieve_vacation (
    principal_id BIGINT NOT NULL REFERENCES principals(id) ON DELETE CASCADE,
    sender       TEXT NOT NULL,
    handle       TEXT NOT NULL,
    last_sent    BIGINT NOT NULL,
    PRIMARY KEY (principal_id, sender, handle)
);
