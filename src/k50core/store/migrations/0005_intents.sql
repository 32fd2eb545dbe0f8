-- k50core storage, version 5: call intents. The snippet reports a tap on (or a click of) a swapped
-- number or tel: link, and a copy of its text: the moment before a call that tells apart the
-- visitors of a shared number. Kept with the lease (like a join), by the visitor who made it.
-- Portable SQL: the same text runs on SQLite and PostgreSQL. Times are unix seconds.

CREATE TABLE intents (
    lease       TEXT NOT NULL,            -- leases.lease
    number      TEXT NOT NULL,            -- the number shown (E.164)
    visitor_id  TEXT,                     -- who tapped or copied (a shared lease's joiner, or its holder)
    kind        TEXT NOT NULL,            -- click, copy
    at          DOUBLE PRECISION NOT NULL
);
CREATE INDEX intents_by_number ON intents (number, at);
CREATE INDEX intents_by_lease ON intents (lease, at);
