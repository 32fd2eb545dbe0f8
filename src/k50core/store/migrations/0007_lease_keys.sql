-- k50core storage, version 7: the format of lease keys (leases.lease, visits.lease, intents.lease,
-- attributions.lease). A store made at this version keys a lease by its start first
-- (start_ms zero-padded to 13 digits:pool:number:slot.gen), so new leases and visits are appended
-- to the key indexes; a store that already has leases keeps pool:number:start_ms:slot.gen, the
-- format its rows, journals and intents already agree on.
-- Portable SQL: the same text runs on SQLite and PostgreSQL.

CREATE TABLE lease_key_format (
    time_first  BOOLEAN NOT NULL
);
INSERT INTO lease_key_format (time_first) SELECT NOT EXISTS (SELECT 1 FROM leases);
