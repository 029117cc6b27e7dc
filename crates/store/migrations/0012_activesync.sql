-- Exchange ActiveSync devices of a principal (MS-ASPROV): the policy key
-- handed out, and remote wipe. Removing a device's row makes it
-- provision again.
CREATE TABLE eas_devices (
    principal_id  BIGINT NOT NULL REFERENCES principals(id) ON DELETE CASCADE,
    device_id     TEXT NOT NULL,
    device_type   TEXT NOT NULL,
    user_agent    TEXT,
    -- the final policy key; NULL until the device acknowledged the policy
    policy_key    BIGINT,
    -- the temporary key sent with the policy, until acknowledged
    pending_key   BIGINT,
    -- Unix seconds; NULL when no wipe was asked for / acknowledged
    wipe_requested    BIGINT,
    wipe_acknowledged BIGINT,
    last_seen     BIGINT NOT NULL,
    PRIMARY KEY (principal_id, device_id)
);
