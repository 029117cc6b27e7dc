-- ActiveSync sync state of a device, per collection (MS-ASCMD Sync and
-- FolderSync): the current SyncKey and the state it stands for (JSON kept
-- by outpost-activesync: journal point, the items the device has, the
-- backlog of an initial sync), and the previous key with the answer it
-- got, so that a client resending its previous key gets the same answer
-- again without the server applying its changes twice. collection_id 0
-- is the folder hierarchy. Rows go with the device (`outpost devices
-- remove`) or when the device starts over with SyncKey 0.
CREATE TABLE eas_sync_states (
    principal_id  BIGINT NOT NULL REFERENCES principals(id) ON DELETE CASCADE,
    device_id     TEXT NOT NULL,
    collection_id BIGINT NOT NULL,
    sync_key      BIGINT NOT NULL,
    state         TEXT NOT NULL,
    prev_key      BIGINT,
    prev_answer   {BYTES},
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (principal_id, device_id, collection_id)
);
