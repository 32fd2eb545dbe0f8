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
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import repeat
from operator import itemgetter
from typing import Any

import orjson

from .dimensions import ALL, COMBO_ORDER, GROUPS, SINGLE, visit_combo

GAP_MS = 30 * 60 * 1000
DAILY = "/day"
_HOUR_MS = 3_600_000
Combo = tuple[str | None, ...]  # a session's dimensions (COMBO_ORDER)
CountKey = tuple[float, Combo]  # (hour as unix seconds, combo): one session
Row = tuple[float, str, Any, int]  # (hour, kind, dims, visits); dims: JSON text, or for ALL the combo
Start = tuple[str, int, str | None, CountKey]  # (visitor, ms, lease, the session's count key)


def _dims_json(values: Mapping[str, str | None]) -> str:
    return orjson.dumps({k: v for k, v in values.items() if v is not None}, option=orjson.OPT_SORT_KEYS).decode()


class VisitCounter:
    """Sessions per hour and per combination of dimensions, kept until ``take``."""

    def __init__(self, gap_ms: int = GAP_MS, activity: Callable[[str, str], int | None] | None = None,
                 shared: bool = False, combo: Callable[..., tuple[str | None, ...]] = visit_combo) -> None:
        self.gap_ms = gap_ms
        self.combo = combo  # visit_combo: the engine's core's (compiled, or this reference)
        self.shared = shared
        self._starts: list[Start] = []     # shared: (visitor, ms, lease, count key) of sessions to decide
        self._touched: dict[str, int] = {}  # shared: visitor -> latest activity seen here since the last take
        self._last: dict[str, int] = {}    # visitor -> last activity seen here (ms)
        # (ms, visitor) each time a visitor's last activity was set, in time order (out of order:
        # _stray), and the visitors a live lease kept past the gap: what take() checks, not every
        # visitor remembered (a visitor stays an hour or so: a scan of all would cost it each write)
        self._order: deque[tuple[int, str]] = deque()
        self._stray: list[tuple[int, str]] = []
        self._alive: set[str] = set()
        self._lease: dict[str, str] = {}   # visitor -> the lease it started here ("slot.gen")
        self._activity = activity          # (lease, visitor) -> the lease's last activity (ms), if still its
        self._counts: list[CountKey] = []  # one a session, in the order seen; counted at take()
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
            value = now_ms if last is None or now_ms > last else last
            if value != self._last.get(visitor):
                self._last[visitor] = value
                try:
                    late = self._order[-1][0] > value
                except IndexError:  # (empty: perhaps emptied by a take on the store's thread just now)
                    late = False
                if late:
                    with self._lock:
                        self._stray.append((value, visitor))
                else:
                    self._order.append((value, visitor))
            if lease is not None:
                self._lease[visitor] = lease
            if last is not None and now_ms - last < self.gap_ms:
                if self.shared:
                    self._touched[visitor] = self._last[visitor]
                return False
        key = (float(now_ms // _HOUR_MS * 3600), self.combo(attrs, rule, pool, number))
        if visitor and self.shared:
            with self._lock:
                self._starts.append((visitor, now_ms, lease, key))
            return True
        with self._lock:
            self._counts.append(key)  # its counters are made at take(), for all sessions at once
            self.sessions += 1
        return True

    def take(self, now_ms: int | None = None) -> list[Row]:
        """The counts since the last take, as (hour, kind, dims, visits) rows, each hour's also added
        to its day's (kind "KIND/day", the hour of the day's start: reports over whole days read
        these); with ``now_ms`` also forget visitors away longer than the gap."""
        with self._lock:
            counts, self._counts = self._counts, []
            returned, self._returned = self._returned, []
        if now_ms is not None:
            self._forget(now_ms - self.gap_ms)
        return _rows(counts, returned)

    def _forget(self, cut: int) -> None:
        """Forget the visitors last seen before ``cut`` whose lease (if any) is no longer in use;
        those a lease keeps going are checked again at each take (and reported, when shared)."""
        order, last = self._order, self._last
        due = []
        while order and order[0][0] < cut:
            due.append(order.popleft())
        if self._stray:
            with self._lock:
                due += [e for e in self._stray if e[0] < cut]
                self._stray = [e for e in self._stray if e[0] >= cut]
        # (an entry whose visitor was seen again since is stale: the later one is queued)
        check = dict.fromkeys([v for t, v in due if last.get(v) == t])
        check.update(dict.fromkeys(self._alive))
        alive = self._alive = set()
        for visitor in check:
            at = last.get(visitor)
            if at is None:
                continue
            if at >= cut:  # (seen again since, or a take of an earlier clock: checked again next time)
                alive.add(visitor)
                continue
            seen = self._seen(visitor)
            if seen is None or seen < cut:
                last.pop(visitor, None)  # (unless a view came meanwhile, or its lease is still in use)
                self._lease.pop(visitor, None)
                continue
            alive.add(visitor)
            if self.shared and seen > at:
                self._touched[visitor] = seen  # its lease keeps it going: the other processes learn it

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


# how each counter reads its value from a combo (a group's is a slice: its members sit together)
_GROUP_READS: list[tuple[str, Callable[[Combo], Any], tuple[str, ...]]] = []
for _name, _members in GROUPS.items():
    _at = COMBO_ORDER.index(_members[0])
    assert COMBO_ORDER[_at:_at + len(_members)] == _members, "a group's dimensions sit together in COMBO_ORDER"
    _GROUP_READS.append((_name, itemgetter(slice(_at, _at + len(_members))), _members))
_SINGLE_READS = [(name, itemgetter(COMBO_ORDER.index(name))) for name in SINGLE]
_first, _second = itemgetter(0), itemgetter(1)


def _counters(combos: Sequence[Combo]) -> list[tuple[str, Counter]]:
    """Each counter's sessions by its value: a pass of C (``Counter`` over ``map``) per counter,
    no Python per session. A SINGLE dimension's None (absent) is not counted."""
    out = [(name, Counter(map(read, combos))) for name, read, _ in _GROUP_READS]
    for name, read in _SINGLE_READS:
        found = Counter(map(read, combos))
        found.pop(None, None)
        out.append((name, found))
    out.append((ALL, Counter(combos)))
    return out


def tally(keys: Sequence[CountKey]) -> tuple[list[Row], dict[tuple[float, str], Counter]]:
    """The sessions ``keys`` as counter rows: (hour, kind, dims JSON, visits) of each group and
    single dimension, by hour and (kind "KIND/day", the hour of the day's start) by day; and the
    ALL counter's combos, {(hour, "all" or "all/day"): Counter}, in the order the sessions came
    (storage.py bounds them). Each distinct value is encoded once."""
    if not keys:
        return [], {}
    hours = set(map(_first, keys))
    by_hour: dict[float, list[Combo]]
    if len(hours) == 1:  # (a checkpoint's sessions: one hour, mostly)
        by_hour = {next(iter(hours)): list(map(_second, keys))}
    else:
        by_hour = {}
        for hour, combo in keys:
            its = by_hour.get(hour)
            if its is None:
                its = by_hour[hour] = []
            its.append(combo)
    days: dict[float, list[float]] = {}
    for hour in by_hour:
        days.setdefault(hour - hour % 86400, []).append(hour)
    counted = {hour: _counters(combos) for hour, combos in by_hour.items()}
    rows: list[Row] = []
    full: dict[tuple[float, str], Counter] = {}
    encoded: dict[int, tuple[list[str], list[int]]] = {}  # id of a counter -> its values' JSON and counts
    for day, its_hours in days.items():
        if len(its_hours) == 1:
            whole = counted[its_hours[0]]
        else:  # the day's sessions in the order they came, counted again
            day_set = set(its_hours)
            whole = _counters([combo for hour, combo in keys if hour in day_set])
        for at, suffix, counters in [(h, "", counted[h]) for h in its_hours] + [(day, DAILY, whole)]:
            for kind, found in counters:
                if kind == ALL:
                    full[(at, ALL + suffix)] = found
                    continue
                done = encoded.get(id(found))
                if done is None:  # (a counter's values in order: its rows go to neighbouring places of the index)
                    parts: list[Any] = sorted(found, key=_sort_key) if kind in _MEMBERS else sorted(found)
                    done = encoded[id(found)] = (_encode(kind, parts), list(map(found.__getitem__, parts)))
                rows += zip(repeat(at), repeat(kind + suffix), *done)
    return rows, full


_MEMBERS = {name: members for name, _, members in _GROUP_READS}
_OPENS = {name: "{" + orjson.dumps(name).decode() + ":" for name in SINGLE}


def _sort_key(part: tuple[str | None, ...]) -> tuple[str, ...]:
    return tuple(["" if v is None else v for v in part])


def _encode(kind: str, parts: list[Any]) -> list[str]:
    """The JSON of each value: a group's as an object of its members' values (None left out, keys
    sorted), a single dimension's ``{"name":value}`` (made in passes of C: a checkpoint has about
    one ``number`` value a session)."""
    members = _MEMBERS.get(kind)
    if members is not None:
        return [_dims_json(dict(zip(members, part))) for part in parts]
    return list(map(_OPENS[kind].__add__, map(str.__add__, map(bytes.decode, map(orjson.dumps, parts)),
                                                  repeat("}"))))


def _rows(keys: Iterable[CountKey], returned: list[Row]) -> list[Row]:
    """(hour, kind, dims, visits) rows of the sessions ``keys`` (``tally``, the ALL counter's
    combos as rows with the combo for dims), added to the rows a failed write gave back."""
    rows, full = tally(keys if isinstance(keys, list) else list(keys))
    rows += [(at, kind, combo, n) for (at, kind), found in full.items() for combo, n in found.items()]
    if not returned:
        return rows
    out: dict[tuple[float, str, Any], int] = {}
    for hour, kind, dims, n in returned + rows:
        out[(hour, kind, dims)] = out.get((hour, kind, dims), 0) + n
    return [(h, kind, dims, n) for (h, kind, dims), n in out.items()]
