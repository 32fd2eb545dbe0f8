"""Visit sessions decided across the processes that share one store (table ``visit_sessions``,
migration 0006), so a visitor whose page views land on two service workers within the gap is one
session, not one per worker.

Each process still finds session starts by what it saw itself (visits.py): a view it saw no
earlier view of within the gap. That is necessary, not sufficient: another process may have seen
the visitor meanwhile. So the start waits, and at the process's next write it is decided against
the store's row of that visitor (one row a visitor seen lately, not a row a page view): the
latest session any process reported, its start, its latest activity (views, and the last activity
of a lease it started, read from the shared pool segment while the slot still holds that lease).
A start within the gap of that session joins it (not counted); one after it starts a new session
(counted, the row moves on); one more than the gap before it is an earlier session written late
(counted, the row stays). Each process also reports its visitors' later activity, so the row keeps
up with a session going on in another process. The decision and the counts are one transaction,
serialised between processes (SQLite's write lock; a PostgreSQL advisory lock), so two processes
cannot both count one session.

Exact when every process writes before the others see the visitor again (writes come every
checkpoint, seconds apart); otherwise two processes' starts for one session are merged by the row
and counted once, with the dimensions of whichever was written first.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any

from . import storage
from .visits import CountKey, Row as CountRow, Start

PG_LOCK = 5_050_0006  # pg_advisory_xact_lock key: one decision at a time per database
CHUNK = 500
KEEP_MS = 6 * 3600 * 1000  # rows kept this long past their last activity (leases may outlive the gap)
Row = list[Any]  # [start_ms, last_ms, lease]
_AT = itemgetter(1)


def write(store: Any, starts: Sequence[Start], touched: dict[str, int], rows: Sequence[CountRow],
          gap_ms: int, activity: Callable[[str, str], int | None] | None, now_ms: int) -> int:
    """Decide ``starts`` against the store, add the kept sessions' counters and ``rows`` to
    ``visit_counts``, all in one transaction; returns how many sessions were kept."""
    if not starts and not touched and not rows:
        return 0
    with store.transaction(durable=False):
        cur = store.conn.cursor()
        kept: list[CountKey] = []
        if starts or touched:
            if store.backend == "postgresql":
                cur.execute("SELECT pg_advisory_xact_lock(%s)", (PG_LOCK,))
            known = _read(store, cur, {s[0] for s in starts} | set(touched))
            changed = decide(known, starts, touched, gap_ms, activity, kept)
            if changed:
                cur.executemany(store._sql(
                    "INSERT INTO visit_sessions (visitor, start_ms, last_ms, lease) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (visitor) DO UPDATE SET start_ms = excluded.start_ms, last_ms = excluded.last_ms, "
                    "lease = excluded.lease"), [(v, *known[v]) for v in sorted(changed)])  # (in key order)
            cur.execute(store._sql("DELETE FROM visit_sessions WHERE last_ms < ?"), (now_ms - gap_ms - KEEP_MS,))
        if rows or kept:
            storage.add_counts(store, cur, rows, kept)
    return len(kept)


def _read(store: Any, cur: Any, visitors: set[str]) -> dict[str, Row]:
    out: dict[str, Row] = {}
    names = sorted(visitors)
    for i in range(0, len(names), CHUNK):
        chunk = names[i:i + CHUNK]
        cur.execute(store._sql("SELECT visitor, start_ms, last_ms, lease FROM visit_sessions WHERE visitor IN (" +
                               ", ".join("?" for _ in chunk) + ")"), chunk)
        for visitor, start, last, lease in cur.fetchall():
            out[visitor] = [int(start), int(last), lease]
    return out


def decide(known: dict[str, Row], starts: Sequence[Start], touched: dict[str, int], gap_ms: int,
           activity: Callable[[str, str], int | None] | None, kept: list[CountKey]) -> set[str]:
    """Apply ``starts`` (in time order) and ``touched`` to the rows ``known``; the count keys of the
    sessions that are new go to ``kept``. Returns the visitors whose row changed."""
    changed: set[str] = set()
    add, keep, find = changed.add, kept.append, known.get
    for visitor, at, lease, key in sorted(starts, key=_AT):
        row = find(visitor)
        add(visitor)
        if row is None:  # (most: a visitor no process reported lately)
            known[visitor] = [at, at, lease]
            keep(key)
            continue
        start, last, held = row
        if at - last >= gap_ms and held is not None and activity is not None:
            seen = activity(held, visitor)  # a lease another process started may have kept it going
            if seen is not None and seen > last:
                last = row[1] = seen
        if at - last >= gap_ms:            # after the known session: a new one
            known[visitor] = [at, at, lease]
            kept.append(key)
        elif start - at >= gap_ms:         # well before it: an earlier session, written late
            kept.append(key)
        else:                              # within the gap of it: the same session
            row[0], row[1] = min(start, at), max(last, at)
            if row[2] is None:
                row[2] = lease
    for visitor, at in touched.items():
        row = known.get(visitor)
        if row is None:
            known[visitor] = [at, at, None]  # (its row was cleared: the session goes on here)
            changed.add(visitor)
        elif at > row[1]:
            row[1] = at
            changed.add(visitor)
    return changed
