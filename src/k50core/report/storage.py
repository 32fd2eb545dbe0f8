"""What reports read and write in the store (tables of migration 0004), in SQL both SQLite and
PostgreSQL understand, through the store's own connection, lock and transactions."""
from __future__ import annotations

from typing import Any, Iterable, List, Optional, Sequence, Tuple

from ..store.base import Store

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


def visit_counts(store: Store, kinds: Sequence[str], since: Optional[float], until: Optional[float],
                 by_hour: bool) -> List[Tuple[str, str, Optional[float], int]]:
    """(kind, dims, hour or None, visits) summed in the database over the period's hours."""
    where, args = _between("hour", since, until)
    marks = ", ".join("?" for _ in kinds)
    hour = "hour" if by_hour else "NULL"
    cur = store.conn.cursor()
    cur.execute(store._sql(
        f"SELECT kind, dims, {hour}, sum(visits) FROM visit_counts WHERE kind IN ({marks}) AND {where} "
        f"GROUP BY kind, dims{', hour' if by_hour else ''}"), list(kinds) + args)
    return [(k, d, h, int(n)) for k, d, h, n in cur.fetchall()]


def visit_span(store: Store) -> Tuple[Optional[float], Optional[float]]:
    cur = store.conn.cursor()
    cur.execute("SELECT min(hour), max(hour) FROM visit_counts")
    row = cur.fetchone()
    return (row[0], row[1] + 3600.0 if row[1] is not None else None) if row else (None, None)


def call_rows(store: Store, since: Optional[float], until: Optional[float]) -> List[Tuple[Any, ...]]:
    """(call_id, number, caller, started_at, duration_seconds, answered, status, pool, rule,
    repeat_of, attributes) of the calls started in the period."""
    where, args = _between("c.started_at", since, until)
    cur = store.conn.cursor()
    cur.execute(store._sql(
        "SELECT c.call_id, c.number, c.caller, c.started_at, c.duration_seconds, c.answered, a.status, a.pool, "
        "a.rule, a.repeat_of, a.attributes FROM calls c LEFT JOIN attributions a ON a.call_id = c.call_id "
        f"WHERE {where}"), args)
    return cur.fetchall()


def call_span(store: Store) -> Tuple[Optional[float], Optional[float]]:
    cur = store.conn.cursor()
    cur.execute("SELECT min(started_at), max(started_at) FROM calls")
    row = cur.fetchone()
    return (row[0], row[1]) if row else (None, None)


def deal_rows(store: Store, since: Optional[float], until: Optional[float]) -> List[Tuple[Any, ...]]:
    """(call_id, created_at, status, amount) of the deals of the period's calls, and of the
    unattributed deals created in the period (call_id None)."""
    where_c, args_c = _between("c.started_at", since, until)
    where_d, args_d = _between("d.created_at", since, until)
    cur = store.conn.cursor()
    cur.execute(store._sql(
        "SELECT d.call_id, d.created_at, d.status, d.amount FROM deals d JOIN calls c ON c.call_id = d.call_id "
        f"WHERE {where_c} UNION ALL SELECT d.call_id, d.created_at, d.status, d.amount FROM deals d "
        f"WHERE d.call_id IS NULL AND {where_d}"), args_c + args_d)
    return cur.fetchall()


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
