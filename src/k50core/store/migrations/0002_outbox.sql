-- k50core storage, version 2: the outbox of outgoing events (webhooks, GA4) for attributed calls.
-- Portable SQL: the same text runs on SQLite and PostgreSQL. Times are unix seconds.
-- A row is written once per call and target; workers claim due rows for a short while
-- (claimed_until), send them, and record the outcome, so none is lost or sent twice at once.

CREATE TABLE outbox (
    id            TEXT PRIMARY KEY,          -- the idempotency key: call_id:target, the same on every retry
    target        TEXT NOT NULL,             -- a webhook's name, or ga4
    call_id       TEXT NOT NULL,
    url           TEXT NOT NULL,             -- where it was meant to go when written (no secrets)
    body          TEXT NOT NULL,             -- the JSON document sent
    attempts      INTEGER NOT NULL DEFAULT 0,
    next_at       DOUBLE PRECISION NOT NULL, -- due from then on
    status        TEXT NOT NULL,             -- pending, delivered, dead
    last_error    TEXT,                      -- the last failure, short: an HTTP status or an error class
    created_at    DOUBLE PRECISION NOT NULL,
    delivered_at  DOUBLE PRECISION,
    claimed_until DOUBLE PRECISION           -- a worker is sending it until then
);
CREATE INDEX outbox_due ON outbox (status, next_at);
CREATE INDEX outbox_by_call ON outbox (call_id);
CREATE INDEX calls_by_received ON calls (received_at);   -- catch-up: recent calls without outbox rows
