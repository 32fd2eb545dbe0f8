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
    PRIMARY KEY (kind, hour, dims)          -- a report reads one kind over a period
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

-- Each call with what reports group and sum it by (the dimensions of its attribution's visit, its
-- deals' figures): one table, no JSON and no join read, however many calls. Written with the call;
-- calls stored before this table (or by an older k50core) are added by the next report.
CREATE TABLE report_calls (
    call_id           TEXT PRIMARY KEY,
    started_at        DOUBLE PRECISION NOT NULL,
    hour_start        DOUBLE PRECISION NOT NULL,
    day_start         DOUBLE PRECISION NOT NULL,
    number            TEXT NOT NULL,
    status            TEXT,
    pool              TEXT,
    rule              TEXT,
    answered          INTEGER NOT NULL,
    first_time        INTEGER NOT NULL,    -- a caller with no earlier call
    minutes           INTEGER NOT NULL,    -- forwarded minutes as billed (each started minute)
    source            TEXT,
    traffic_type      TEXT,
    utm_source        TEXT,
    utm_medium        TEXT,
    utm_campaign      TEXT,
    utm_content       TEXT,
    utm_term          TEXT,
    landing_path      TEXT,
    landing_host      TEXT,
    referrer_host     TEXT,
    region            TEXT,
    city              TEXT,
    country           TEXT,
    device            TEXT,
    deals             INTEGER NOT NULL DEFAULT 0,
    won               INTEGER NOT NULL DEFAULT 0,
    revenue           DOUBLE PRECISION NOT NULL DEFAULT 0
);
CREATE INDEX report_calls_by_start ON report_calls (started_at);
