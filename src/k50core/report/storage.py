"""What reports read and write in the store (tables of migration 0004), in SQL both SQLite and
PostgreSQL understand, through the store's own connection, lock and transactions."""
from __future__ import annotations

from typing import Any, Iterable, List, Optional, Sequence, Tuple

from ..store.base import Store
from . import sql
from .visits import DAILY

INF = float("inf")


def _between(column: str, since: Optional[float], until: Optional[float]) -> Tuple[str, List[Any]]:
    where, args = [], []
    if since is not None:
        where.append(f"{column} >= ?")
        args.append(since)
    if until is not None and until != INF:
        where.append(f"{column} < ?")
        args.append(until)
    return (" AND ".join(where) or "1=1"), args


def add_visit_counts(store: Store, rows: Sequence[Tuple[float, str, str, int]]) -> None:
    """Add sessions to the hourly counters (several processes add to the same rows)."""
    if not rows:
        return
    with store.transaction(durable=False):
        store.conn.cursor().executemany(store._sql(
            "INSERT INTO visit_counts (hour, kind, dims, visits) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (hour, kind, dims) DO UPDATE SET visits = visit_counts.visits + excluded.visits"),
            list(rows))


def add_pool_samples(store: Store, rows: Sequence[Tuple[float, str, int, int, int, int, str]]) -> None:
    if not rows:
        return
    with store.transaction(durable=False):
        store.conn.cursor().executemany(store._sql(
            "INSERT INTO pool_samples (at, pool, numbers, leased, exhausted_shared, exhausted_default, process) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)"), list(rows))


def _visit_parts(kind: str, since: Optional[float], until: Optional[float], by_hour: bool
                 ) -> List[Tuple[str, Optional[float], Optional[float]]]:
    """(kind, from, to) of the counter rows that cover the period: the daily rows for whole days,
    the hourly ones for the hours at its ends (or all hourly, to group by hour)."""
    low = since - since % 3600 if since is not None else None
    if by_hour:
        return [(kind, low, until)]
    first = None if low is None else (low if low % 86400 == 0 else low - low % 86400 + 86400)
    last = None if until is None else until - until % 86400
    if first is not None and last is not None and first >= last:
        return [(kind, low, until)]
    parts = [(kind + DAILY, first, last)]
    if low is not None and first is not None and low < first:
        parts.append((kind, low, first))
    if until is not None and last is not None and last < until:
        parts.append((kind, last, until))
    return parts


def visit_counts(store: Store, kind: str, since: Optional[float], until: Optional[float], by_time: Optional[str]
                 ) -> List[Tuple[str, Optional[float], int]]:
    """(dims, hour or day start or None, visits), summed in the database over the period."""
    out: List[Tuple[str, Optional[float], int]] = []
    cur = store.conn.cursor()
    for part, low, high in _visit_parts(kind, since, until, by_time == "hour"):
        where, args = _between("hour", low, high)
        hour = "hour" if by_time else "NULL"
        cur.execute(store._sql(f"SELECT dims, {hour}, sum(visits) FROM visit_counts WHERE kind = ? AND {where} "
                               f"GROUP BY dims{', hour' if by_time else ''}"), [part] + args)
        out += [(d, h, int(n)) for d, h, n in cur.fetchall()]
    return out


def visit_span(store: Store) -> Tuple[Optional[float], Optional[float]]:
    cur = store.conn.cursor()
    cur.execute("SELECT min(hour), max(hour) FROM visit_counts")
    row = cur.fetchone()
    return (row[0], row[1] + 3600.0 if row[1] is not None else None) if row else (None, None)


def call_groups(store: Store, dims: Sequence[str], since: Optional[float], until: Optional[float]
                ) -> List[Tuple[Any, ...]]:
    """(unmatched, *dims, calls, answered, first_time_callers, minutes) of the period's calls,
    grouped in the database."""
    b = store.backend
    keys = [sql.dimension(b, d) for d in dims]
    where, args = _between("c.started_at", since, until)
    unmatched = "(CASE WHEN a.status IS NULL OR a.status = 'unmatched' THEN 1 ELSE 0 END)"
    group = ", ".join([unmatched] + keys)
    cur = store.conn.cursor()
    cur.execute(store._sql(
        f"SELECT {group}, count(*), sum(CASE WHEN c.answered THEN 1 ELSE 0 END), "
        "sum(CASE WHEN c.caller IS NOT NULL AND a.repeat_of IS NULL THEN 1 ELSE 0 END), "
        f"sum({sql.billed_minutes(b)}) FROM calls c LEFT JOIN attributions a ON a.call_id = c.call_id "
        f"WHERE {where} GROUP BY {group}"), args)
    return cur.fetchall()


def deal_groups(store: Store, dims: Sequence[str], since: Optional[float], until: Optional[float]
                ) -> List[Tuple[Any, ...]]:
    """(unmatched, *dims, deals, won, revenue): the deals of the period's calls by their call's
    group, then the unattributed deals created in the period (unmatched, times by their own)."""
    b = store.backend
    keys = [sql.dimension(b, d) for d in dims]
    where, args = _between("c.started_at", since, until)
    unmatched = "(CASE WHEN a.status IS NULL OR a.status = 'unmatched' THEN 1 ELSE 0 END)"
    group = ", ".join([unmatched] + keys)
    figures = ("count(*), sum(CASE WHEN d.status = 'won' THEN 1 ELSE 0 END), "
               "sum(CASE WHEN d.status = 'won' THEN d.amount ELSE 0 END)")
    cur = store.conn.cursor()
    cur.execute(store._sql(
        f"SELECT {group}, {figures} FROM deals d JOIN calls c ON c.call_id = d.call_id "
        f"LEFT JOIN attributions a ON a.call_id = c.call_id WHERE {where} GROUP BY {group}"), args)
    rows = cur.fetchall()
    times = [sql.time_key(b, "d.created_at", d) for d in dims if d in ("day", "hour")]
    where, args = _between("d.created_at", since, until)
    cur.execute(store._sql(f"SELECT {', '.join(times + [figures])} FROM deals d WHERE d.call_id IS NULL AND {where}"
                           + (f" GROUP BY {', '.join(times)}" if times else "")), args)
    for found in cur.fetchall():
        if found[len(times)]:  # (no GROUP BY: one row, counting nothing when there is nothing)
            at = iter(found[:len(times)])
            rows.append((1,) + tuple(next(at) if d in ("day", "hour") else None for d in dims) + found[len(times):])
    return rows


def call_span(store: Store) -> Tuple[Optional[float], Optional[float]]:
    cur = store.conn.cursor()
    cur.execute("SELECT min(started_at), max(started_at) FROM calls")
    row = cur.fetchone()
    return (row[0], row[1]) if row else (None, None)


def pool_samples(store: Store, pool: str, since: float, until: float) -> List[Tuple[Any, ...]]:
    """(at, numbers, leased or None, exhausted_shared, exhausted_default) of the period, in time order."""
    cur = store.conn.cursor()
    cur.execute(store._sql(
        "SELECT at, numbers, leased, exhausted_shared, exhausted_default FROM pool_samples "
        "WHERE pool = ? AND at >= ? AND at < ? ORDER BY at"), (pool, since, until))
    return cur.fetchall()


def mean_lease_seconds(store: Store, pool: str, since: float, until: float) -> Optional[float]:
    """How long the pool's leases were active (start to last activity), on average."""
    cur = store.conn.cursor()
    cur.execute(store._sql("SELECT avg(last - start), count(*) FROM leases WHERE pool = ? AND start >= ? "
                           "AND start < ?"), (pool, since, until))
    row = cur.fetchone()
    return float(row[0]) if row and row[1] else None


def run_many(store: Store, sql: str, rows: Iterable[Sequence[Any]]) -> None:
    with store.transaction():
        store.conn.cursor().executemany(store._sql(sql), list(rows))
