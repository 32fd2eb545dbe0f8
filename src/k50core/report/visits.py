"""Visit sessions counted in memory, for reports, without a store row per page view.

A visit session is a visitor's first page view, or the first after ``gap`` (30 minutes) away. The
engine calls ``page_view`` where it does Python work anyway (a visit the compiled core did not
answer: a new visitor, one whose lease ended, one shown a static number or none); a returning
visitor whose lease is alive is inside a session already (its lease ends ``hold`` after its last
activity) and costs nothing here. A visitor who held a lease and comes back after it ended, seen
here last longer than the gap ago, may have been active since (heartbeats, returns the core
answered): the lease's last activity, read from its slot while nobody else holds it, decides.
Counts go to the store at checkpoints (``take``), added to what it has.

A visit without a visitor id (or session id) is a session of its own. Counts are per process:
with several worker processes, a visitor seen by two of them within the gap may be counted twice.
"""
from __future__ import annotations

import threading
from collections import Counter
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

import orjson

from .dimensions import GROUPS, SINGLE, visit_values

GAP_MS = 30 * 60 * 1000
DAILY = "/day"
_HOUR_MS = 3_600_000
CountKey = Tuple[float, str, str]  # (hour as unix seconds, kind, dims as JSON)


def _dims_json(values: Mapping[str, Optional[str]]) -> str:
    return orjson.dumps({k: v for k, v in values.items() if v is not None}, option=orjson.OPT_SORT_KEYS).decode()


class VisitCounter:
    """Sessions per hour and per combination of dimensions, kept until ``take``."""

    def __init__(self, gap_ms: int = GAP_MS, activity: Optional[Callable[[str, str], Optional[int]]] = None) -> None:
        self.gap_ms = gap_ms
        self._last: Dict[str, int] = {}    # visitor -> last activity seen here (ms)
        self._lease: Dict[str, str] = {}   # visitor -> the lease it started here ("slot.gen")
        self._activity = activity          # (lease, visitor) -> the lease's last activity (ms), if still its
        self._counts: Counter = Counter()  # CountKey -> sessions
        self._lock = threading.Lock()      # take() may run on the store's thread
        self.sessions = 0                  # counted by this process, for stats

    def page_view(self, visitor: Optional[str], now_ms: int, attrs: Mapping[str, Any], rule: Optional[str],
                  pool: Optional[str], number: Optional[str], lease: Optional[str] = None) -> bool:
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
                return False
        values = visit_values(attrs, rule, pool)
        hour = float(now_ms // _HOUR_MS * 3600)
        groups = [(name, _dims_json({k: values[k] for k in members})) for name, members in GROUPS.items()]
        with self._lock:
            counts = self._counts
            for name, dims in groups:
                counts[(hour, name, dims)] += 1
            for name in SINGLE:
                value = number if name == "number" else values.get(name)
                if value is not None:
                    counts[(hour, name, _dims_json({name: value}))] += 1
            self.sessions += 1
        return True

    def take(self, now_ms: Optional[int] = None) -> List[Tuple[float, str, str, int]]:
        """The counts since the last take, as (hour, kind, dims, visits) rows, each hour's also added
        to its day's (kind "KIND/day", the hour of the day's start: reports over whole days read
        these); with ``now_ms`` also forget visitors away longer than the gap."""
        with self._lock:
            counts, self._counts = self._counts, Counter()
        if now_ms is not None and self._last:
            cut, last = now_ms - self.gap_ms, self._last
            for visitor in [v for v, t in list(last.items()) if t < cut]:
                if last.get(visitor, now_ms) < cut and not self._active(visitor, cut):
                    last.pop(visitor, None)  # (unless a view came meanwhile, or its lease is still in use)
                    self._lease.pop(visitor, None)
        rows = [(h, kind, dims, n) for (h, kind, dims), n in counts.items()]
        days: Counter = Counter()
        for h, kind, dims, n in rows:
            days[(h - h % 86400, kind + DAILY, dims)] += n
        return rows + [(d, kind, dims, n) for (d, kind, dims), n in days.items()]

    def _active(self, visitor: str, cut: int) -> bool:
        held = self._lease.get(visitor)
        seen = self._activity(held, visitor) if held is not None and self._activity is not None else None
        return seen is not None and seen >= cut

    def give_back(self, rows: List[Tuple[float, str, str, int]]) -> None:
        """Rows a failed write took: counted again for the next one (the daily ones come again
        with the next take)."""
        with self._lock:
            for h, kind, dims, n in rows:
                if not kind.endswith(DAILY):
                    self._counts[(h, kind, dims)] += n

    @property
    def pending(self) -> int:
        return len(self._counts)
