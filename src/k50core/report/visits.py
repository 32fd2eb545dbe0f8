"""Visit sessions counted in memory, for reports, without a store row per page view.

A visit session is a visitor's first page view, or the first after ``gap`` (30 minutes) away. The
engine calls ``page_view`` where it does Python work anyway (a visit the compiled core did not
answer: a new visitor, one whose lease ended, one shown a static number or none); a returning
visitor whose lease is alive is inside a session already (its lease ends ``hold`` after its last
activity) and costs nothing here. A visitor who held a lease and comes back after it ended, seen
here last longer than the gap ago, may have been active since (heartbeats, returns the core
answered): the lease's last activity, read from its slot while nobody else holds it, decides.
Counts go to the store at checkpoints (``take``), added to what it has.

A visit without a visitor id (or session id) is a session of its own. With ``shared`` (what the
engine uses) a named visitor's session start is not counted here: it waits, with the visitor's
later activity, for ``take_pending`` and is decided at the next write against what every process
sharing the store reported (sessions.py), so a visitor whose views land on two worker processes
within the gap is one session, not two.
"""
from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from .dimensions import ALL, GROUPS, SINGLE, VISIT_ORDER, visit_values

GAP_MS = 30 * 60 * 1000
DAILY = "/day"
_HOUR_MS = 3_600_000
CountKey = tuple[float, str, str]  # (hour as unix seconds, kind, dims as JSON)
Start = tuple[str, int, str | None, Any]  # (visitor, ms, lease, (hour, visit_values, number))


def _dims_json(values: Mapping[str, str | None]) -> str:
    return orjson.dumps({k: v for k, v in values.items() if v is not None}, option=orjson.OPT_SORT_KEYS).decode()


class VisitCounter:
    """Sessions per hour and per combination of dimensions, kept until ``take``."""

    def __init__(self, gap_ms: int = GAP_MS, activity: Callable[[str, str], int | None] | None = None,
                 shared: bool = False) -> None:
        self.gap_ms = gap_ms
        self.shared = shared
        self._starts: list[Start] = []     # shared: (visitor, ms, lease, count key) of sessions to decide
        self._touched: dict[str, int] = {}  # shared: visitor -> latest activity seen here since the last take
        self._last: dict[str, int] = {}    # visitor -> last activity seen here (ms)
        self._lease: dict[str, str] = {}   # visitor -> the lease it started here ("slot.gen")
        self._activity = activity          # (lease, visitor) -> the lease's last activity (ms), if still its
        self._counts: Counter = Counter()  # (hour, visit_values, number) -> sessions
        self._returned: list[tuple[float, str, str, int]] = []  # rows a failed write gave back
        self._lock = threading.Lock()      # take() may run on the store's thread
        self.sessions = 0                  # counted by this process, for stats

    def page_view(self, visitor: str | None, now_ms: int, attrs: Mapping[str, Any], rule: str | None,
                  pool: str | None, number: str | None, lease: str | None = None) -> bool:
        """Count the view if it starts a session; True when it did. ``lease``: the lease it started."""
        if visitor:
            last = self._last.get(visitor)
            if last is not None and now_ms - last >= self.gap_ms and self._activity is not None:
                held = self._lease.get(visitor)
                seen = self._activity(held, visitor) if held is not None else None
                if seen is not None and seen > last:
                    last = seen
            self._last[visitor] = now_ms if last is None or now_ms > last else last
            if lease is not None:
                self._lease[visitor] = lease
            if last is not None and now_ms - last < self.gap_ms:
                if self.shared:
                    self._touched[visitor] = self._last[visitor]
                return False
        key = (now_ms // _HOUR_MS * 3600, visit_values(attrs, rule, pool), number)
        if visitor and self.shared:
            with self._lock:
                self._starts.append((visitor, now_ms, lease, key))
            return True
        with self._lock:
            self._counts[key] += 1  # one count per session; its counters are made at take()
            self.sessions += 1
        return True

    def take(self, now_ms: int | None = None) -> list[tuple[float, str, str, int]]:
        """The counts since the last take, as (hour, kind, dims, visits) rows, each hour's also added
        to its day's (kind "KIND/day", the hour of the day's start: reports over whole days read
        these); with ``now_ms`` also forget visitors away longer than the gap."""
        with self._lock:
            counts, self._counts = self._counts, Counter()
            returned, self._returned = self._returned, []
        if now_ms is not None and self._last:
            cut, last = now_ms - self.gap_ms, self._last
            for visitor in [v for v, t in list(last.items()) if t < cut]:
                if last.get(visitor, now_ms) >= cut:
                    continue
                seen = self._seen(visitor)
                if seen is None or seen < cut:
                    last.pop(visitor, None)  # (unless a view came meanwhile, or its lease is still in use)
                    self._lease.pop(visitor, None)
                elif self.shared and seen > last[visitor]:
                    self._touched[visitor] = seen  # its lease keeps it going: the other processes learn it
        return _rows(counts, returned)

    def _seen(self, visitor: str) -> int | None:
        held = self._lease.get(visitor)
        return self._activity(held, visitor) if held is not None and self._activity is not None else None

    def take_pending(self) -> tuple[list[Start], dict[str, int]]:
        """Shared: the session starts to decide and the visitors' latest activity since the last take."""
        with self._lock:
            starts, self._starts = self._starts, []
            touched, self._touched = self._touched, {}
        return starts, touched

    def give_back_pending(self, starts: list[Start], touched: dict[str, int]) -> None:
        """What a failed write took: decided at the next one."""
        with self._lock:
            self._starts[:0] = starts
            for visitor, at in touched.items():
                if at > self._touched.get(visitor, -1):
                    self._touched[visitor] = at

    def give_back(self, rows: list[tuple[float, str, str, int]]) -> None:
        """Rows a failed write took: added to the next take's."""
        with self._lock:
            self._returned.extend(rows)

    @property
    def pending(self) -> int:
        return len(self._counts) + len(self._starts)


def _rows(counts: Counter, returned: list[tuple[float, str, str, int]]) -> list[tuple[float, str, str, int]]:
    """(hour, kind, dims, visits) rows of the sessions counted: each group's and each single
    dimension's, by hour and (kind "KIND/day") by day; plus rows given back by a failed write."""
    out: Counter = Counter()
    for r, kind, dims, n in returned:
        out[(r, kind, dims)] += n
    encoded: dict[tuple[str, tuple[str | None, ...]], str] = {}
    singles: dict[tuple[str, str], str] = {}
    for (hour, values, number), n in counts.items():
        named = dict(zip(VISIT_ORDER, values))
        day = float(hour - hour % 86400)
        for name, members in GROUPS.items():
            part = tuple(named[m] for m in members)
            found = encoded.get((name, part))
            if found is None:
                found = encoded[(name, part)] = _dims_json(dict(zip(members, part)))
            out[(float(hour), name, found)] += n
            out[(day, name + DAILY, found)] += n
        for name in SINGLE:
            value = number if name == "number" else named[name]
            if value is not None:
                single = singles.get((name, value))
                if single is None:  # (one key: nothing to sort; most values repeat across sessions)
                    single = singles[(name, value)] = orjson.dumps({name: value}).decode()
                out[(float(hour), name, single)] += n
                out[(day, name + DAILY, single)] += n
        full = _dims_json({**named, "number": number})  # every dimension together (bounded: storage.py)
        out[(float(hour), ALL, full)] += n
        out[(day, ALL + DAILY, full)] += n
    return [(h, kind, dims, n) for (h, kind, dims), n in out.items()]
