-- k50core storage, version 6: state several service workers must share. Portable SQL.

-- The dashboard's signed-in sessions, so signing out (or a key taken out of the service) ends a
-- session in every worker: the cookie holds a random id, this table its SHA-256 only.
CREATE TABLE dashboard_sessions (
    id_hash   TEXT PRIMARY KEY,           -- hex SHA-256 of the cookie's value
    key_id    TEXT NOT NULL,              -- which API key signed in (an HMAC of it, never the key)
    created   DOUBLE PRECISION NOT NULL,  -- unix seconds
    expires   DOUBLE PRECISION NOT NULL
);
CREATE INDEX dashboard_sessions_by_key ON dashboard_sessions (key_id);

-- Visit sessions as the workers decided them together (report/sessions.py): one row per visitor
-- seen lately (not per page view), written at checkpoints; a worker's session start counts only
-- when no other worker's session of that visitor is within the gap.
CREATE TABLE visit_sessions (
    visitor   TEXT PRIMARY KEY,
    start_ms  BIGINT NOT NULL,            -- the session's first page view (unix ms)
    last_ms   BIGINT NOT NULL,            -- its latest activity any worker reported
    lease     TEXT                        -- the lease (slot.gen) it started, if any: its activity counts too
);
CREATE INDEX visit_sessions_by_last ON visit_sessions (last_ms);

-- The ALL counter of visit sessions (every dimension together, bounded: report/storage.py), with
-- the dimensions as columns too, so a report groups by them without reading JSON.
CREATE TABLE visit_combos (
    hour           DOUBLE PRECISION NOT NULL,
    kind           TEXT NOT NULL,          -- "all" (the hour's) or "all/day" (the day's)
    dims           TEXT NOT NULL,          -- the combination as a JSON object: its key
    source         TEXT,
    traffic_type   TEXT,
    utm_source     TEXT,
    utm_medium     TEXT,
    utm_campaign   TEXT,
    rule           TEXT,
    pool           TEXT,
    region         TEXT,
    device         TEXT,
    landing_path   TEXT,
    landing_host   TEXT,
    referrer_host  TEXT,
    city           TEXT,
    country        TEXT,
    utm_content    TEXT,
    utm_term       TEXT,
    number         TEXT,
    visits         BIGINT NOT NULL,
    PRIMARY KEY (kind, hour, dims)
);
