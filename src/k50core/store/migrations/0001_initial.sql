-- k50core storage, version 1. Portable SQL: the same text runs on SQLite and PostgreSQL.
-- Times are unix seconds (double precision); attributes and candidates are JSON text.

CREATE TABLE visits (
    lease       TEXT PRIMARY KEY,          -- the lease this visit started or joined (see leases.lease)
    visitor_id  TEXT,
    session_id  TEXT,
    at          DOUBLE PRECISION NOT NULL,
    pool        TEXT,
    rule        TEXT,
    number      TEXT,
    attributes  TEXT NOT NULL              -- source, traffic type, utm, landing, region, device, GA client id
);

CREATE TABLE leases (
    lease       TEXT PRIMARY KEY,          -- pool:number:start_ms:slot.gen, stable across restarts
    pool        TEXT NOT NULL,
    number      TEXT NOT NULL,
    visitor_id  TEXT,
    session_id  TEXT,
    rule        TEXT,
    start       DOUBLE PRECISION NOT NULL,
    last        DOUBLE PRECISION NOT NULL,
    ends        DOUBLE PRECISION NOT NULL,
    shared      BOOLEAN NOT NULL
);
CREATE INDEX leases_by_number ON leases (number, start);

CREATE TABLE lease_joins (                 -- visitors shown a shared number, besides its holder
    lease       TEXT NOT NULL,
    visitor_id  TEXT NOT NULL,
    session_id  TEXT,
    at          DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (lease, visitor_id)
);

CREATE TABLE calls (
    call_id           TEXT PRIMARY KEY,
    number            TEXT NOT NULL,
    caller            TEXT,
    started_at        DOUBLE PRECISION NOT NULL,
    duration_seconds  DOUBLE PRECISION NOT NULL,
    answered          BOOLEAN NOT NULL,
    received_at       DOUBLE PRECISION NOT NULL
);
CREATE INDEX calls_by_caller ON calls (caller, started_at);

CREATE TABLE attributions (
    call_id     TEXT PRIMARY KEY REFERENCES calls (call_id),
    status      TEXT NOT NULL,
    lease       TEXT,
    visitor_id  TEXT,
    session_id  TEXT,
    pool        TEXT,
    rule        TEXT,
    likelihood  DOUBLE PRECISION NOT NULL,
    repeat_of   TEXT,
    candidates  TEXT NOT NULL,
    attributes  TEXT NOT NULL
);
CREATE INDEX attributions_by_status ON attributions (status);
