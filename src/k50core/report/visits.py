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
Row = tuple[float, str, Any, int]  # (hour, kind, dims, visits); dims: JSON text, or for ALL the values (combo)
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
        self._returned: list[Row] = []  # rows a failed write gave back
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

    def take(self, now_ms: int | None = None) -> list[Row]:
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

    def give_back(self, rows: list[Row]) -> None:
        """Rows a failed write took: added to the next take's."""
        with self._lock:
            self._returned.extend(rows)

    @property
    def pending(self) -> int:
        return len(self._counts) + len(self._starts)


# where each counter's values sit in a visit_values tuple (the groups' members are contiguous)
_GROUP_SPANS = []
for _name, _members in GROUPS.items():
    _at = VISIT_ORDER.index(_members[0])
    assert VISIT_ORDER[_at:_at + len(_members)] == _members, "a group's dimensions sit together in VISIT_ORDER"
    _GROUP_SPANS.append((_name, _at, _at + len(_members), _members))
_SINGLE_AT = [(name, VISIT_ORDER.index(name) if name != "number" else -1) for name in SINGLE]


def _rows(counts: Counter, returned: list[Row]) -> list[Row]:
    """(hour, kind, dims, visits) rows of the sessions counted: each group's and each single
    dimension's, by hour and (kind "KIND/day") by day; plus rows given back by a failed write.
    The ALL counter's dims stay a tuple (the values of VISIT_ORDER, then the number): storage.py
    bounds them and writes them as columns, and encodes only the combinations it keeps.

    Each session adds to its hour's counters as tuples; each distinct counter value is encoded
    once and rolled up into its day after, so the cost per session is a few dict updates."""
    hourly: dict[tuple[float, str, Any], int] = {}
    get = hourly.get
    for (hour, values, number), n in counts.items():
        hour = float(hour)
        for name, lo, hi, _ in _GROUP_SPANS:
            key = (hour, name, values[lo:hi])
            hourly[key] = get(key, 0) + n
        for name, at in _SINGLE_AT:
            value = number if at < 0 else values[at]
            if value is not None:
                key = (hour, name, value)
                hourly[key] = get(key, 0) + n
        key = (hour, ALL, values + (number,))
        hourly[key] = get(key, 0) + n
    out: dict[tuple[float, str, Any], int] = {}
    for hour, kind, dims, n in returned:
        out[(hour, kind, dims)] = out.get((hour, kind, dims), 0) + n
    members = {name: m for name, _, _, m in _GROUP_SPANS}
    encoded: dict[tuple[str, Any], Any] = {}
    for (hour, kind, part), n in hourly.items():
        dims = part if kind == ALL else encoded.get((kind, part))
        if dims is None:
            if kind in members:
                dims = _dims_json(dict(zip(members[kind], part)))
            else:
                dims = orjson.dumps({kind: part}).decode()
            encoded[(kind, part)] = dims
        key = (hour, kind, dims)
        out[key] = out.get(key, 0) + n
        key = (hour - hour % 86400, kind + DAILY, dims)
        out[key] = out.get(key, 0) + n
    return [(h, kind, dims, n) for (h, kind, dims), n in out.items()]
