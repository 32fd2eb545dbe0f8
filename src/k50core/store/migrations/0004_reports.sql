-- k50core storage, version 4: what reports read besides calls. Portable SQL: the same text runs on
-- SQLite and PostgreSQL. Times are unix seconds.

-- Visit sessions counted in memory and added here at checkpoints (no row per page view): per hour,
-- per kind of counter ("joint": the common dimensions together; or one dimension alone, e.g.
-- "number"), per combination of values (a JSON object, keys sorted, empty values left out).
CREATE TABLE visit_counts (
    hour    DOUBLE PRECISION NOT NULL,
    kind    TEXT NOT NULL,
    dims    TEXT NOT NULL,
    visits  BIGINT NOT NULL,
    PRIMARY KEY (hour, kind, dims)
);

-- Each pool's leased numbers as the engine sampled them while running, and the visits that found
-- it exhausted (counted by minute, by the process that answered them: leased is null on those rows).
CREATE TABLE pool_samples (
    at                 DOUBLE PRECISION NOT NULL,
    pool               TEXT NOT NULL,
    numbers            INTEGER NOT NULL,
    leased             INTEGER,
    exhausted_shared   BIGINT NOT NULL,
    exhausted_default  BIGINT NOT NULL,
    process            TEXT NOT NULL
);
CREATE INDEX pool_samples_by_pool ON pool_samples (pool, at);

-- Deals imported from a CRM, each belonging to the caller's latest call before it (or none).
CREATE TABLE deals (
    deal_id     TEXT PRIMARY KEY,
    phone       TEXT NOT NULL,
    created_at  DOUBLE PRECISION NOT NULL,
    amount      DOUBLE PRECISION NOT NULL,
    status      TEXT NOT NULL,            -- won, lost, open
    currency    TEXT,
    title       TEXT,
    call_id     TEXT,                     -- the call it belongs to; null: unattributed
    origin      TEXT NOT NULL,            -- csv, json, api, amocrm, bitrix24
    updated_at  DOUBLE PRECISION NOT NULL
);
CREATE INDEX deals_by_call ON deals (call_id);
CREATE INDEX deals_by_created ON deals (created_at);

-- amoCRM: a lead's phone comes from its contact, which may arrive in a later webhook; leads wait here.
CREATE TABLE crm_contacts (
    contact_id  TEXT PRIMARY KEY,
    phone       TEXT NOT NULL,
    at          DOUBLE PRECISION NOT NULL
);
CREATE TABLE crm_waiting (
    deal_id     TEXT PRIMARY KEY,
    contact_id  TEXT,
    row         TEXT NOT NULL,            -- the deal as a JSON object, without its phone
    at          DOUBLE PRECISION NOT NULL
);
CREATE INDEX crm_waiting_by_contact ON crm_waiting (contact_id);

CREATE INDEX calls_by_start ON calls (started_at);
