-- k50core storage, version 3: an ambiguous call keeps its likeliest candidates (config
-- attribution.max_candidates, default 20) in attributions.candidates and counts the rest here
-- (a number shared by thousands of visitors made answers and rows of hundreds of KB).
-- Portable SQL: the same text runs on SQLite and PostgreSQL.

ALTER TABLE attributions ADD COLUMN more_candidates INTEGER NOT NULL DEFAULT 0;
