"""What every store does, in SQL both SQLite and PostgreSQL understand.

A backend gives a DB-API connection, its parameter marker and its spelling
of ``greatest``; everything else — migrations, the lease log, calls and
attributions — is here once, so the two backends cannot drift apart.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from importlib import resources
from typing import Any, NamedTuple

import orjson

from ..errors import StoreError
from ..pools import LeaseEvent


class LeaseRow(NamedTuple):
    """One lease of a number as stored: who held it and when. (A named tuple: each new visitor
    makes one, and its fields in order are the store's statement parameters.)"""
    lease: str
    pool: str
    number: str
    visitor_id: str | None
    session_id: str | None
    rule: str | None
    start: float
    last: float
    ends: float
    shared: bool


_new = tuple.__new__


def row_of(e: LeaseEvent, holder: bool = True, time_first: bool = False) -> LeaseRow:
    """A lease event as a stored row; ``holder`` False leaves the visitor out (a shared join);
    ``time_first``: the store's key format (``Store.time_first_keys``)."""
    # (made from a tuple: a named tuple's Python-level __new__ costs as much as the rest of this)
    return _new(LeaseRow, (lease_key(e.pool, e.number, e.start, e.lease, time_first), e.pool, e.number,
                           e.visitor_id if holder else None, e.session_id if holder else None, e.rule,
                           e.start, e.last, e.end, e.shared))


def _event_row(e: LeaseEvent, holder: bool, time_first: bool) -> tuple[Any, ...]:
    """row_of(e, holder) as the statements' parameters, without the LeaseRow in between (a busy
    site's log is mostly renewals, each a row here)."""
    if holder:  # LeaseEvent is (event, pool, number, visitor_id, session_id, rule, start, last, end, shared, lease)
        return (lease_key(e.pool, e.number, e.start, e.lease, time_first),) + e[1:10]
    return (lease_key(e.pool, e.number, e.start, e.lease, time_first), e.pool, e.number, None, None, e.rule, e.start,
            e.last, e.end, e.shared)


def coalesced(events: Iterable[LeaseEvent]) -> list[LeaseEvent]:
    """The lease log with each joiner's returns to a shared lease folded into one event with the
    latest times, at the place of the first: the stored row keeps the greatest times anyway, so
    only the last of them changes it. Renewals pass as they are: a batch folds each lease's rows
    (see _Batch) and the core already logs one renewal per lease between drains."""
    out: list[LeaseEvent] = []
    at: dict[tuple[Any, ...], int] = {}
    for e in events:
        if e.event != "share":
            out.append(e)
            continue
        key = (e.pool, e.number, e.start, e.lease, e.visitor_id)
        i = at.get(key)
        if i is None:
            at[key] = len(out)
            out.append(e)
        else:
            first = out[i]
            out[i] = first._replace(last=max(first.last, e.last), end=max(first.end, e.end),
                                    shared=first.shared or e.shared,
                                    visitor_id=first.visitor_id or e.visitor_id,
                                    session_id=first.session_id or e.session_id)
    return out


def _json_sorted(value: Any) -> str:
    """A visit's attributes as stored: JSON, keys sorted (orjson: this runs for every new visitor, and
    the standard library's encoder is several times slower)."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()

# (ended, activity): a lease's own starts and renewals insert it with its holder, joins then only
# move its end (a join first would insert it with the joiner's time as its last activity), and
# ends cut it short after both.
_LEASE_ORDER = ((False, True), (False, False), (True, True), (True, False))


class _Batch:
    """Rows of the lease log grouped by statement (see _LEASE_ORDER), each lease once per group
    and each join once: rows for the same key are folded as the upserts would apply them one
    after another (a busy shared number is hundreds of joins of one lease in a batch)."""

    def __init__(self) -> None:
        self.leases: dict[tuple[bool, bool], list[tuple[Any, ...]]] = {}
        self.joins: list[tuple[Any, ...]] = []
        self._at: dict[tuple[Any, ...], int] = {}

    def lease(self, r: tuple[Any, ...], ended: bool, activity: bool) -> None:
        """Add a row: a LeaseRow, or a tuple of its fields in order."""
        rows = self.leases.setdefault((ended, activity), [])
        key = (ended, activity, r[0])
        i = self._at.get(key)
        if i is None:
            self._at[key] = len(rows)
            rows.append(r if type(r) is tuple else tuple(r))  # drivers bind plain tuples fastest
            return
        old = rows[i]  # COALESCE keeps the first holder fields; greatest times; an end: the last one
        rows[i] = (old[0], old[1], old[2], r[3] if old[3] is None else old[3],
                   r[4] if old[4] is None else old[4], r[5] if old[5] is None else old[5], old[6],
                   max(old[7], r[7]) if activity else old[7], r[8] if ended else max(old[8], r[8]),
                   old[9] or r[9])

    def join(self, lease: str, visitor: str | None, session: str | None, at: float) -> None:
        if not visitor:
            return
        key = ("join", lease, visitor)
        i = self._at.get(key)
        if i is None:
            self._at[key] = len(self.joins)
            self.joins.append((lease, visitor, session, at, lease, visitor))
        elif at > self.joins[i][3]:  # the upsert moves only the time, to the greatest
            old = self.joins[i]
            self.joins[i] = (lease, visitor, old[2], at, lease, visitor)


def _period(since: float, until: float) -> tuple[list[str], list[Any]]:
    """The export's conditions on a call's start: [since, until), no upper bound when until is
    infinite (a stored call is always in an export that asks for everything, whatever its time)."""
    where, args = ["c.started_at >= ?"], [since]
    if until != float("inf"):
        where.append("c.started_at < ?")
        args.append(until)
    return where, args


def lease_key(pool: str, number: str, start: float, lease: str, time_first: bool = False) -> str:
    """A lease's id in storage: slot.gen alone restarts with a fresh segment, the start does not.

    ``time_first`` (what a store made at schema version 7 or later uses: ``Store.time_first_keys``)
    puts the start first, zero-padded: new leases and their visits then go to the end of the
    tables' key indexes, where pool-first keys land on a random page each (at a million stored
    leases that made a lease start cost twice as much to store). A store made earlier keeps its
    pool-first keys: rows, journals and intents of one lease must agree on its key."""
    if time_first:
        return f"{round(start * 1000):013d}:{pool}:{number}:{lease}"
    return f"{pool}:{number}:{round(start * 1000)}:{lease}"


def migrations() -> list[tuple[int, str]]:
    """(version, SQL) of every migration shipped in the package, in order."""
    found = []
    for item in resources.files(__package__).joinpath("migrations").iterdir():
        m = re.match(r"(\d{4})_\w+\.sql$", item.name)
        if m:
            found.append((int(m.group(1)), item.read_text(encoding="utf-8")))
    return sorted(found)


class Store:
    """Visits, leases, calls and attributions behind one interface (see sqlite.py, postgres.py)."""

    param = "?"
    backend = "abstract"
    persistent = True  # on disk or on a server: lease starts are written durably
    path = ""  # a SQLite store's file (its journals and pool segment live beside it); "" for the others

    time_first_keys = False  # the lease key format of this store (see lease_key), read after migrating

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.migrate()
        cur = self.conn.cursor()
        cur.execute("SELECT time_first FROM lease_key_format")
        row = cur.fetchone()
        self.time_first_keys = bool(row[0]) if row else False

    def lease_key(self, pool: str, number: str, start: float, lease: str) -> str:
        """``lease_key`` in this store's format."""
        return lease_key(pool, number, start, lease, self.time_first_keys)

    # -- dialect ----------------------------------------------------------------------
    def greatest(self, a: str, b: str) -> str:
        raise NotImplementedError

    def _sql(self, text: str) -> str:
        return text.replace("?", self.param) if self.param != "?" else text

    def _run_script(self, cur: Any, sql: str) -> None:
        """A migration file statement by statement (comments dropped first: they may hold ';')."""
        text = re.sub(r"--[^\n]*", "", sql)
        for statement in (s.strip() for s in text.split(";")):
            if statement:
                cur.execute(statement)

    def transaction(self, durable: bool = True) -> Any:
        """A context manager: commit on success, roll back on error. ``durable`` commits reach
        the disk before returning; others survive a killed process but not a power cut."""
        raise NotImplementedError

    # -- schema -----------------------------------------------------------------------
    def migrate(self) -> int:
        """Apply shipped migrations newer than the store's version; returns the version."""
        with self.transaction():
            cur = self.conn.cursor()
            cur.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            cur.execute("SELECT max(version) FROM schema_version")
            current = cur.fetchone()[0] or 0
        shipped = migrations()
        newest = shipped[-1][0] if shipped else 0
        if current > newest:
            raise StoreError(f"this store has schema version {current}, newer than this k50core "
                               f"build knows ({newest}); upgrade k50core")
        for version, sql in shipped:
            if version > current:
                with self.transaction():
                    cur = self.conn.cursor()
                    self._run_script(cur, sql)
                    cur.execute(self._sql("INSERT INTO schema_version (version) VALUES (?)"), (version,))
                current = version
        return current

    # -- the lease log ------------------------------------------------------------------
    def save_starts(self, starts: Sequence[tuple[dict[str, Any], LeaseRow]], durable: bool = False,
                    replayed: bool = False) -> None:
        """New leases with the visits that started (or joined) them, in one transaction.

        ``replayed``: starts read back from a journal, which may be older than what the store has
        of their leases (an end that cut one short): they add what is missing (a lease, or the
        holder of a lease another worker's join stored first) and change no time."""
        self.save_writes(starts, (), durable, replayed)

    def save_start(self, visit: dict[str, Any], lease: LeaseRow, durable: bool = False) -> None:
        self.save_starts([(visit, lease)], durable)

    def save_events(self, events: Iterable[LeaseEvent]) -> int:
        """Starts, renewals, shared joins and ends from the engine's lease log; returns how many rows."""
        return self.save_writes((), events)

    def save_writes(self, starts: Sequence[tuple[dict[str, Any], LeaseRow]], events: Iterable[LeaseEvent],
                    durable: bool = False, replayed: bool = False) -> int:
        """Lease starts with their visits, then lease log events, in one transaction: all of it is
        stored or none (a caller that retries after a failure cannot store anything twice or
        skip anything). Returns how many log rows were written."""
        batch, log = _Batch(), _Batch()
        visits = []
        for visit, lease in starts:
            joined = bool(visit.get("joined"))
            batch.lease(lease, ended=False, activity=not joined)
            for replaced in visit.get("superseded") or ():  # the number's previous lease, as it ended
                log.lease(tuple(replaced), ended=False, activity=True)
            if joined:
                batch.join(lease.lease, visit.get("visitor_id"), visit.get("session_id"), visit["at"])
            visits.append((f"{lease.lease}+{visit.get('visitor_id')}" if joined else lease.lease,
                           visit.get("visitor_id"), visit.get("session_id"), visit["at"], lease.pool, lease.rule,
                           lease.number, _json_sorted(visit.get("attributes") or {})))
        folded = coalesced(events)
        for e in folded:
            # a join is the joiner's activity, not the holder's: it moves only the end
            event = e.event
            row = _event_row(e, event != "share", self.time_first_keys)
            log.lease(row, ended=event == "end", activity=event != "share")
            if event == "share":
                log.join(row[0], e.visitor_id, e.session_id, e.last)
        if not visits and not folded:
            return 0  # (a superseded lease comes only with a start)
        with self.transaction(durable and bool(visits)):
            cur = self.conn.cursor()
            if visits:  # the starts before the log: an end in the log cuts what the start wrote
                self._write(cur, batch, missing_only=replayed)
                cur.executemany(self._sql(
                    "INSERT INTO visits (lease, visitor_id, session_id, at, pool, rule, number, attributes) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (lease) DO NOTHING"), visits)
            if folded or log.leases:
                self._write(cur, log)
        return len(folded)

    def _write(self, cur: Any, batch: _Batch, missing_only: bool = False) -> None:
        """A batch in a few statements (each run over all its rows in the driver, not in Python):
        lease upserts, the ends of leases cut short after them, then the joins, which look for
        their lease's holder. ``missing_only``: leases the store has already stay as they are."""
        for ended, activity in _LEASE_ORDER:
            rows = batch.leases.get((ended, activity))
            if rows:
                cur.executemany(self._lease_sql(ended, activity) if not missing_only else self._sql(
                    "INSERT INTO leases (lease, pool, number, visitor_id, session_id, rule, start, last, ends, "
                    "shared) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (lease) DO UPDATE SET "
                    # a lease another worker's join stored first has no holder yet: the start fills it
                    "visitor_id = COALESCE(leases.visitor_id, excluded.visitor_id), "
                    "session_id = COALESCE(leases.session_id, excluded.session_id), "
                    "rule = COALESCE(leases.rule, excluded.rule)"), rows)
        if batch.joins:
            cur.executemany(self._sql(
                "INSERT INTO lease_joins (lease, visitor_id, session_id, at) SELECT ?, ?, ?, ? "
                "WHERE NOT EXISTS (SELECT 1 FROM leases WHERE lease = ? AND visitor_id = ?) "
                f"ON CONFLICT (lease, visitor_id) DO UPDATE SET "
                f"at = {self.greatest('lease_joins.at', 'excluded.at')}"), batch.joins)

    def _lease_sql(self, ended: bool, activity: bool) -> str:
        ends = "excluded.ends" if ended else self.greatest("leases.ends", "excluded.ends")
        last = self.greatest("leases.last", "excluded.last") if activity else "leases.last"
        return self._sql(
            "INSERT INTO leases (lease, pool, number, visitor_id, session_id, rule, start, last, ends, shared) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (lease) DO UPDATE SET "
            f"last = {last}, ends = {ends}, "
            "shared = (leases.shared OR excluded.shared), "
            "visitor_id = COALESCE(leases.visitor_id, excluded.visitor_id), "
            "session_id = COALESCE(leases.session_id, excluded.session_id), "
            "rule = COALESCE(leases.rule, excluded.rule)")

    def leases_of(self, number: str, since: float, until: float) -> list[LeaseRow]:
        """Leases of a number that were alive at some point in [since, until], oldest first."""
        cur = self.conn.cursor()
        cur.execute(self._sql(
            "SELECT lease, pool, number, visitor_id, session_id, rule, start, last, ends, shared FROM leases "
            "WHERE number = ? AND start <= ? AND ends >= ? ORDER BY start"), (number, until, since))
        return [LeaseRow._make((*row[:9], bool(row[9]))) for row in cur.fetchall()]

    def joins_of(self, lease: str) -> list[tuple[str, str | None, float]]:
        """(visitor_id, session_id, when) of everyone who joined a shared lease."""
        cur = self.conn.cursor()
        cur.execute(self._sql("SELECT visitor_id, session_id, at FROM lease_joins WHERE lease = ? ORDER BY at"),
                    (lease,))
        return [tuple(r) for r in cur.fetchall()]

    def visit_of(self, lease: str, visitor: str | None = None) -> dict[str, Any] | None:
        """The stored attributes of the visit that started (or, with ``visitor``, joined) a lease."""
        cur = self.conn.cursor()
        key = lease if visitor is None else f"{lease}+{visitor}"
        cur.execute(self._sql("SELECT attributes FROM visits WHERE lease = ?"), (key,))
        row = cur.fetchone()
        return json.loads(row[0]) if row else None

    # -- calls and attributions -------------------------------------------------------
    def saved_attribution(self, call_id: str) -> dict[str, Any] | None:
        cur = self.conn.cursor()
        cur.execute(self._sql(
            "SELECT status, lease, visitor_id, session_id, pool, rule, likelihood, repeat_of, candidates, attributes, "
            "more_candidates FROM attributions WHERE call_id = ?"), (call_id,))
        row = cur.fetchone()
        if row is None:
            return None
        keys = ("status", "lease", "visitor_id", "session_id", "pool", "rule", "likelihood", "repeat_of")
        out = dict(zip(keys, row[:8]))
        out["candidates"], out["attributes"] = json.loads(row[8]), json.loads(row[9])
        out["more_candidates"] = int(row[10] or 0)
        return out

    def first_call_of(self, caller: str, before: float, call_id: str) -> str | None:
        """The caller's first recorded call before this one, if any."""
        cur = self.conn.cursor()
        cur.execute(self._sql(
            "SELECT call_id FROM calls WHERE caller = ? AND call_id <> ? AND started_at <= ? "
            "ORDER BY started_at, call_id LIMIT 1"), (caller, call_id, before))
        row = cur.fetchone()
        return row[0] if row else None

    def save_call(self, call: dict[str, Any], attribution: dict[str, Any]) -> bool:
        """The call and its attribution, durably, once: False if this call_id was already recorded."""
        with self.transaction():
            cur = self.conn.cursor()
            cur.execute(self._sql(
                "INSERT INTO calls (call_id, number, caller, started_at, duration_seconds, answered, received_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (call_id) DO NOTHING"),
                (call["call_id"], call["number"], call["caller"], call["started_at"], call["duration_seconds"],
                 call["answered"], call["received_at"]))
            if cur.rowcount == 0:
                return False
            a = attribution
            cur.execute(self._sql(
                "INSERT INTO attributions (call_id, status, lease, visitor_id, session_id, pool, rule, likelihood, "
                "repeat_of, candidates, attributes, more_candidates) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
                (call["call_id"], a["status"], a["lease"], a["visitor_id"], a["session_id"], a["pool"], a["rule"],
                 a["likelihood"], a["repeat_of"], json.dumps(a["candidates"], sort_keys=True),
                 json.dumps(a["attributes"], sort_keys=True), int(a.get("more_candidates") or 0)))
            from ..report.storage import add_report_call  # (reports read calls from a table of their own)
            add_report_call(self, cur, call, a)
        return True

    def calls(self, since: float = 0.0, until: float = float("inf")) -> list[dict[str, Any]]:
        """Recorded calls that started in [since, until), oldest first, with their attribution status."""
        where, args = _period(since, until)
        cur = self.conn.cursor()
        cur.execute(self._sql(
            "SELECT c.call_id, c.number, c.caller, c.started_at, c.duration_seconds, c.answered, c.received_at, "
            "a.status FROM calls c LEFT JOIN attributions a ON a.call_id = c.call_id "
            "WHERE " + " AND ".join(where) + " ORDER BY c.started_at, c.call_id"), args)
        keys = ("call_id", "number", "caller", "started_at", "duration_seconds", "answered", "received_at", "status")
        return [dict(zip(keys, row[:5] + (bool(row[5]),) + row[6:])) for row in cur.fetchall()]

    def calls_page(self, since: float = 0.0, until: float = float("inf"), status: str | None = None,
                   after: tuple[float, str] | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Up to ``limit`` calls started in [since, until) (optionally of one ``status``), after the
        ``(started_at, call_id)`` key ``after``, oldest first, with their attribution: an export page."""
        where, args = _period(since, until)
        if status is not None:
            where.append("a.status = ?")
            args.append(status)
        if after is not None:
            where.append("(c.started_at > ? OR (c.started_at = ? AND c.call_id > ?))")
            args.extend([after[0], after[0], after[1]])
        cur = self.conn.cursor()
        cur.execute(self._sql(
            "SELECT c.call_id, c.number, c.caller, c.started_at, c.duration_seconds, c.answered, c.received_at, "
            "a.status, a.visitor_id, a.session_id, a.pool, a.rule, a.likelihood, a.repeat_of, a.attributes "
            "FROM calls c LEFT JOIN attributions a ON a.call_id = c.call_id WHERE " + " AND ".join(where) +
            " ORDER BY c.started_at, c.call_id LIMIT ?"), args + [int(limit)])
        keys = ("call_id", "number", "caller", "started_at", "duration_seconds", "answered", "received_at", "status",
                "visitor_id", "session_id", "pool", "rule", "likelihood", "repeat_of", "attributes")
        rows = [dict(zip(keys, row)) for row in cur.fetchall()]
        for r in rows:
            r["answered"] = bool(r["answered"])
            r["attributes"] = json.loads(r["attributes"]) if r["attributes"] else {}
        return rows

    def count(self, table: str) -> int:
        if table not in ("visits", "leases", "lease_joins", "calls", "attributions", "intents"):
            raise ValueError(f"no table {table!r}")
        cur = self.conn.cursor()
        cur.execute(f"SELECT count(*) FROM {table}")
        return cur.fetchone()[0]

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
