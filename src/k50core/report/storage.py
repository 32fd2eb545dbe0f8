"""What reports read and write in the store (tables of migration 0004), in SQL both SQLite and
PostgreSQL understand, through the store's own connection, lock and transactions."""
from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from itertools import chain, repeat
from operator import add, itemgetter
from typing import Any

from ..store.base import Store
from . import sql
from .dimensions import ALL, COMBO_ORDER, JOINT, OTHER
from .visits import DAILY, CountKey, Row, _dims_json, tally

# The ALL counter (every dimension together) keeps at most this many exact combinations an hour /
# a day, and as many again with the SINGLE dimensions' values read OTHER; past both, every value
# reads OTHER. So a report across counters reads at most ~4,000 rows a day, however varied the
# traffic (a combination seen first keeps its place: most sessions come in the common ones).
ALL_EXACT = {ALL: 300, ALL + DAILY: 2000}

INF = float("inf")


def _between(column: str, since: float | None, until: float | None) -> tuple[str, list[Any]]:
    where, args = [], []
    if since is not None:
        where.append(f"{column} >= ?")
        args.append(since)
    if until is not None and until != INF:
        where.append(f"{column} < ?")
        args.append(until)
    return (" AND ".join(where) or "1=1"), args


def add_visit_counts(store: Store, rows: Sequence[Row], keys: Sequence[CountKey] = ()) -> None:
    """Add sessions to the hourly counters (several processes add to the same rows): counter
    rows, and sessions ``keys`` counted here (visits.tally)."""
    if not rows and not keys:
        return
    with store.transaction(durable=False):
        add_counts(store, store.conn.cursor(), rows, keys)


def add_counts(store: Store, cur: Any, rows: Sequence[Row], keys: Sequence[CountKey] = ()) -> None:
    """Inside a transaction: add the rows and the sessions ``keys``; the ALL counter's, bounded
    (``ALL_EXACT``), to ``visit_combos``."""
    counts, full = tally(keys) if keys else ([], {})
    counts, combos = _bounded(store, cur, list(rows) + counts if rows else counts, full)
    if counts:
        cur.executemany(store._sql(
            "INSERT INTO visit_counts (hour, kind, dims, visits) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (hour, kind, dims) DO UPDATE SET visits = visit_counts.visits + excluded.visits"), counts)
    if combos:
        cur.executemany(store._sql(COMBO_INSERT), combos)


COMBO_DIMENSIONS = COMBO_ORDER
_COMBO_COLUMNS = ", ".join(sql.COLUMNS[d] for d in COMBO_DIMENSIONS)
COMBO_INSERT = (f"INSERT INTO visit_combos (hour, kind, dims, {_COMBO_COLUMNS}, "
                f"visits) VALUES ({', '.join('?' for _ in range(len(COMBO_DIMENSIONS) + 4))}) "
                "ON CONFLICT (kind, hour, dims) DO UPDATE SET visits = visit_combos.visits + excluded.visits")
_GROUPED = len(JOINT)  # what a reduced combination keeps: the groups' dimensions, first in COMBO_DIMENSIONS
_WIDTH = len(COMBO_DIMENSIONS)
assert COMBO_DIMENSIONS[:_GROUPED] == JOINT


def _reduced(values: tuple[str | None, ...], keep: int) -> tuple[str | None, ...]:
    """The combination with every value past the first ``keep`` read OTHER (an empty one stays empty)."""
    return values[:keep] + tuple([None if v is None else OTHER for v in values[keep:]])


_HEAD = itemgetter(slice(0, _GROUPED))
_TAIL_READS = [itemgetter(j) for j in range(_GROUPED, _WIDTH)]
_KEEP_NONE = {None: None}  # .get(value, OTHER): None stays None, any other value reads OTHER
_OTHERS = repeat(OTHER)


def _firsts(combos: list[tuple[str | None, ...]]) -> list[tuple[str | None, ...]]:
    """``_reduced(c, _GROUPED)`` of each combination, in passes of C over the columns past the
    groups', not a Python call per combination."""
    tails = zip(*[map(_KEEP_NONE.get, map(read, combos), _OTHERS) for read in _TAIL_READS])
    return list(map(add, map(_HEAD, combos), tails))


def _fold(found: Counter, known: set[tuple[str | None, ...]], limit: int,
          shared: dict[int, Any] | None = None) -> Counter:
    """The combinations ``found`` (the most sessions first; ties in the order they came) as kept
    against ``known`` (the counter's rows already stored; grows): a new combination takes an exact
    place while fewer than ``limit`` are stored, else its reduced form (the groups' values kept)
    while fewer than ``limit`` of those are, else every value reads OTHER."""
    reduced = sum(1 for d in known if OTHER in d)
    room, room_reduced = limit - (len(known) - reduced), limit - reduced
    kept: Counter = Counter()
    shared = {} if shared is None else shared  # found's order and reductions, for the next fold of it
    mine: list[Any] | None = shared.get(id(found))
    if mine is None:
        mine = shared[id(found)] = [found.most_common(), None, None]  # (items, their combos, their firsts)
    items = mine[0]
    i, total = 0, len(items)
    while room > 0 and i < total:  # exact places left: each combination in turn
        values, n = items[i]
        i += 1
        if values not in known:
            if OTHER not in values:
                room -= 1
            else:
                values = _reduced(values, _GROUPED)
                if values not in known:
                    if room_reduced > 0:
                        room_reduced -= 1
                    else:
                        values = _reduced(values, 0)
            known.add(values)
        kept[values] += n
    if i < total:  # no exact place left: the rest as they are (if stored) or reduced
        combos = mine[1]
        if combos is None:
            combos = mine[1] = list(map(itemgetter(0), items))
            mine[2] = _firsts(combos)
        # A reduced form, once placed, stays: it is in ``known`` (kept as it is), or past the
        # room (known nowhere, so every value reads OTHER again). So each is decided once.
        placed: dict[tuple[str | None, ...], tuple[str | None, ...]] = {}
        targets: list[tuple[str | None, ...]] = []
        keep, where = targets.append, placed.get
        for values, first in zip(combos[i:], mine[2][i:]):
            if values in known:
                keep(values)
                continue
            target = where(first)
            if target is None:
                if first in known:
                    target = first
                elif room_reduced > 0:
                    room_reduced -= 1
                    target = first
                    known.add(first)
                else:
                    target = _reduced(first, 0)
                    known.add(target)
                placed[first] = target
            keep(target)
        kept.update(chain.from_iterable(map(repeat, targets, map(itemgetter(1), items[i:]))))  # (C: no Python a combo)
    return kept


def _combo_json(values: tuple[str | None, ...]) -> str:
    return _dims_json(dict(zip(COMBO_DIMENSIONS, values)))


def _bounded(store: Store, cur: Any, rows: Sequence[Row], full: dict[tuple[float, str], Counter] | None = None
             ) -> tuple[list[Row], list[tuple[Any, ...]]]:
    """(the other counters' rows, the ALL counter's as ``COMBO_INSERT`` rows) with the ALL
    counter's new combinations past its bound folded into reduced ones. The ALL counter's combos
    come as rows (kind "all" / "all/day", the combo for dims) and as ``full`` (visits.tally), the
    rows' first."""
    out: list[Row] = []
    merged: dict[tuple[float, str], Counter] = {}
    for hour, kind, dims, n in rows:
        if kind in ALL_EXACT:
            found = merged.get((hour, kind))
            if found is None:
                found = merged[(hour, kind)] = Counter()
            found[dims] += n
        else:
            out.append((hour, kind, dims, n))
    for key, found in (full or {}).items():
        if key in merged:
            merged[key].update(found)  # (a Counter of its own: ``full``'s may be shared by an hour and its day)
        else:
            merged[key] = found
    combos: list[tuple[Any, ...]] = []
    shared: dict[int, Any] = {}  # (an hour's combos are its day's too when the day has that hour only)
    for (hour, kind), found in merged.items():
        cur.execute(store._sql(f"SELECT {_COMBO_COLUMNS} FROM visit_combos WHERE kind = ? AND hour = ?"),
                    (kind, hour))
        known: set[tuple[str | None, ...]] = {tuple(r) for r in cur.fetchall()}
        kept = _fold(found, known, ALL_EXACT[kind], shared)
        combos += [(hour, kind, _combo_json(values), *values, n) for values, n in kept.items()]
    return out, combos


def add_pool_samples(store: Store, rows: Sequence[tuple[float, str, int, int | None, int, int, str]]) -> None:
    if not rows:
        return
    with store.transaction(durable=False):
        store.conn.cursor().executemany(store._sql(
            "INSERT INTO pool_samples (at, pool, numbers, leased, exhausted_shared, exhausted_default, process) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)"), list(rows))


def _visit_parts(kind: str, since: float | None, until: float | None, by_hour: bool
                 ) -> list[tuple[str, float | None, float | None]]:
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


def visit_counts(store: Store, kind: str, since: float | None, until: float | None, by_time: str | None
                 ) -> list[tuple[str, float | None, int]]:
    """(dims, hour or day start or None, visits), summed in the database over the period."""
    out: list[tuple[str, float | None, int]] = []
    cur = store.conn.cursor()
    for part, low, high in _visit_parts(kind, since, until, by_time == "hour"):
        where, args = _between("hour", low, high)
        hour = "hour" if by_time else "NULL"
        cur.execute(store._sql(f"SELECT dims, {hour}, sum(visits) FROM visit_counts WHERE kind = ? AND {where} "
                               f"GROUP BY dims{', hour' if by_time else ''}"), [part] + args)
        out += [(d, h, int(n)) for d, h, n in cur.fetchall()]
    return out


def combo_counts(store: Store, dims: Sequence[str], since: float | None, until: float | None,
                 by_time: str | None) -> list[tuple[Any, ...]]:
    """(*values of ``dims``, hour or day start or None, visits) of the ALL counter, grouped by those
    dimensions in the database."""
    out: list[tuple[Any, ...]] = []
    cur = store.conn.cursor()
    keys = ", ".join(sql.COLUMNS[d] for d in dims)
    for part, low, high in _visit_parts(ALL, since, until, by_time == "hour"):
        where, args = _between("hour", low, high)
        hour = "hour" if by_time else "NULL"
        cur.execute(store._sql(f"SELECT {keys}, {hour}, sum(visits) FROM visit_combos WHERE kind = ? AND {where} "
                               f"GROUP BY {keys}{', hour' if by_time else ''}"), [part] + args)
        out += cur.fetchall()
    return out


def visit_span(store: Store) -> tuple[float | None, float | None]:
    cur = store.conn.cursor()
    cur.execute(store._sql("SELECT min(hour), max(hour) FROM visit_counts WHERE kind = ?"), ("traffic",))
    row = cur.fetchone()
    return (row[0], row[1] + 3600.0 if row[1] is not None else None) if row else (None, None)


def call_groups(store: Store, dims: Sequence[str], since: float | None, until: float | None
                ) -> list[tuple[Any, ...]]:
    """(unmatched, *dims, calls, answered, first_time_callers, minutes, deals, won, revenue) of the
    period's calls, grouped in the database (times as the unix second their hour or day starts)."""
    catch_up(store)
    keys = [sql.dimension(d) for d in dims]
    where, args = _between(sql.start_column(store, since, until), since, until)
    unmatched = "(CASE WHEN r.status IS NULL OR r.status = 'unmatched' THEN 1 ELSE 0 END)"
    group = ", ".join([unmatched] + keys)
    cur = store.conn.cursor()
    cur.execute(store._sql(
        f"SELECT {group}, count(*), sum(r.answered), sum(r.first_time), sum(r.minutes), sum(r.deals), sum(r.won), "
        f"sum(r.revenue) FROM report_calls r WHERE {where} GROUP BY {group}"), args)
    return cur.fetchall()


def lone_deals(store: Store, since: float | None, until: float | None) -> list[tuple[Any, ...]]:
    """(created_at, status, amount) of the unattributed deals created in the period."""
    where, args = _between("created_at", since, until)
    cur = store.conn.cursor()
    cur.execute(store._sql(f"SELECT created_at, status, amount FROM deals WHERE call_id IS NULL AND {where}"), args)
    return cur.fetchall()


_FIELDS = ["call_id", "started_at", "hour_start", "day_start", "number", "status", "pool", "rule", "answered",
           "first_time", "minutes"] + [sql.COLUMNS[d] for d in sql.VISIT_DIMENSIONS]
REPORT_CALL = (f"INSERT INTO report_calls ({', '.join(_FIELDS)}) VALUES ({', '.join('?' for _ in _FIELDS)}) "
               "ON CONFLICT (call_id) DO NOTHING")


def report_call_row(call: Mapping[str, Any], a: Mapping[str, Any]) -> tuple[Any, ...]:
    """A call's report row from the call and its attribution as the store takes them."""
    from .dimensions import from_summary
    from .query import billed_minutes

    started = float(call["started_at"])
    summary = a.get("attributes") or {}
    return (call["call_id"], started, started - started % 3600, started - started % 86400, call["number"],
            a.get("status"), a.get("pool"), a.get("rule"), 1 if call["answered"] else 0,
            1 if call.get("caller") is not None and a.get("repeat_of") is None else 0,
            billed_minutes(float(call["duration_seconds"]), bool(call["answered"]))) + \
        tuple(from_summary(summary, d) for d in sql.VISIT_DIMENSIONS)


def add_report_call(store: Store, cur: Any, call: Mapping[str, Any], attribution: Mapping[str, Any]) -> None:
    """Inside the transaction that stores the call and its attribution: its report row."""
    cur.execute(store._sql(REPORT_CALL), report_call_row(call, attribution))


def catch_up(store: Store) -> int:
    """Report rows for calls stored without one (before this table, or by an older k50core)."""
    cur = store.conn.cursor()
    cur.execute("SELECT (SELECT count(*) FROM calls) - (SELECT count(*) FROM report_calls)")
    if not cur.fetchone()[0]:
        return 0
    cur.execute("SELECT c.call_id, c.started_at, c.number, c.caller, c.duration_seconds, c.answered, a.status, "
                "a.pool, a.rule, a.repeat_of, a.attributes FROM calls c LEFT JOIN attributions a "
                "ON a.call_id = c.call_id WHERE NOT EXISTS (SELECT 1 FROM report_calls r WHERE r.call_id = c.call_id)")
    rows = []
    for call_id, started, number, caller, duration, answered, status, pool, rule, repeat_of, attrs in cur.fetchall():
        rows.append(report_call_row(
            {"call_id": call_id, "started_at": started, "number": number, "caller": caller,
             "duration_seconds": duration, "answered": bool(answered)},
            {"status": status, "pool": pool, "rule": rule, "repeat_of": repeat_of,
             "attributes": json.loads(attrs) if attrs else {}}))
    with store.transaction(durable=False):
        store.conn.cursor().executemany(store._sql(REPORT_CALL), rows)
        update_deal_figures(store, store.conn.cursor(), [r[0] for r in rows])
    return len(rows)


def update_deal_figures(store: Store, cur: Any, call_ids: Iterable[str | None]) -> None:
    """Recount the deals of these calls on their report rows (inside the deals' transaction)."""
    ids = sorted({c for c in call_ids if c is not None})  # (a deal without a call has no row)
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        marks = ", ".join("?" for _ in chunk)
        cur.execute(store._sql(
            "UPDATE report_calls SET deals = (SELECT count(*) FROM deals d WHERE d.call_id = report_calls.call_id), "
            "won = (SELECT count(*) FROM deals d WHERE d.call_id = report_calls.call_id AND d.status = 'won'), "
            "revenue = (SELECT COALESCE(sum(d.amount), 0) FROM deals d WHERE d.call_id = report_calls.call_id "
            f"AND d.status = 'won') WHERE call_id IN ({marks})"), chunk)


def call_span(store: Store) -> tuple[float | None, float | None]:
    cur = store.conn.cursor()
    cur.execute("SELECT min(started_at), max(started_at) FROM calls")
    row = cur.fetchone()
    return (row[0], row[1]) if row else (None, None)


def pool_samples(store: Store, pool: str, since: float, until: float) -> list[tuple[Any, ...]]:
    """(at, numbers, leased or None, exhausted_shared, exhausted_default) of the period, in time order."""
    cur = store.conn.cursor()
    cur.execute(store._sql(
        "SELECT at, numbers, leased, exhausted_shared, exhausted_default FROM pool_samples "
        "WHERE pool = ? AND at >= ? AND at < ? ORDER BY at"), (pool, since, until))
    return cur.fetchall()


def mean_lease_seconds(store: Store, pool: str, since: float, until: float) -> float | None:
    """How long the pool's leases were active (start to last activity), on average."""
    cur = store.conn.cursor()
    cur.execute(store._sql("SELECT avg(last - start), count(*) FROM leases WHERE pool = ? AND start >= ? "
                           "AND start < ?"), (pool, since, until))
    row = cur.fetchone()
    return float(row[0]) if row and row[1] else None


def run_many(store: Store, sql: str, rows: Iterable[Sequence[Any]]) -> None:
    with store.transaction():
        store.conn.cursor().executemany(store._sql(sql), list(rows))
