"""Reference of ``_redis_local.pyx``: returning visitors of pools in Redis, answered from the leases
this host knows, no round trip.

``RedisLease`` is what a host keeps of one lease (``k50core.pool_redis`` makes and updates them);
``RedisAssigner`` is the engine's ``assign`` over them. The common case (the holder of a lease Redis
confirmed well past now, back within the renewals' write window) is answered inline; the rest of the
returning visitors by the pools' ``local``, everyone else by the engine's full path.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from .returning import MAX_MS

MARGIN_MS = 2_000  # answered locally only while Redis's end of the lease is further off than this


class RedisLease:
    """A lease this host knows: what Redis confirmed (``cu``) and what this host has since added.
    ``fast``: the instant (ms) up to which this host may answer its visitors from memory (Redis's
    end less the margin; -1 once gone), kept with ``cu`` and ``gone`` so the fast path reads one
    field. ``first``: the first renewal not yet written to Redis (0: none); ``lu``: the end as this
    host has renewed it; ``last``: its latest activity."""
    __slots__ = ("ps", "slot", "gen", "start", "_cu", "lu", "first", "last", "made", "holder", "_gone", "key", "fast")

    made: Any  # the Assignment last given (k50core.pools.Assignment)

    def __init__(self, ps: Any, slot: int, gen: int, start: int, until: int, made: Any, holder: str) -> None:
        self.ps, self.slot, self.gen, self.start = ps, slot, gen, start
        self._gone = False
        self.cu = self.lu = until
        self.first = 0
        self.last = 0
        self.made = made
        self.holder = holder  # the lease's holder as Redis keeps it
        self.key = (ps.index, slot)

    @property
    def cu(self) -> int:
        """The lease's end as Redis last confirmed it (ms)."""
        return self._cu

    @cu.setter
    def cu(self, until: int) -> None:
        self._cu = until
        self.fast = -1 if self._gone else until - MARGIN_MS

    @property
    def gone(self) -> bool:
        """Ended or replaced, as far as this host knows: never answered from memory again."""
        return self._gone

    @gone.setter
    def gone(self, gone: bool) -> None:
        self._gone = gone
        self.fast = -1 if gone else self._cu - MARGIN_MS


class RedisWindow:
    """A host's window for renewals (ms): renewals answered in [floor, due) wait for the write the
    window ends with; before or after it the pools write first. ``renewed``: renewals answered by
    this host."""
    __slots__ = ("floor", "due", "renewed")

    def __init__(self) -> None:
        self.floor = self.due = self.renewed = 0


def _ms(now: Any) -> int:
    """``now`` in seconds (None: the clock) as ms; -1 for anything the full path must judge."""
    if type(now) is float:
        ms = now * 1000.0
        return int(ms) if 0.0 <= ms <= MAX_MS else -1  # NaN: -1
    if now is None:
        return int(time.time() * 1000.0)
    if type(now) is int and -1 < now < MAX_MS:
        return int(now * 1000.0) if now * 1000.0 <= MAX_MS else -1
    return -1


class RedisAssigner:
    """``assign`` and ``assign_many`` of an engine whose pools are in Redis (``pools``: its
    ``RedisPools``; ``full``: the engine's path for everyone not answered here)."""

    def __init__(self, pools: Any, full: Callable[..., Any]) -> None:
        self.pools = pools
        self.full = full
        self.visitors = pools._visitors  # never replaced (cleared in place)
        self.marked = pools._marked      # never replaced (emptied in place)
        self.window = pools.window

    def assign(self, visit: Any, now: Any = None, token: Any = None) -> Any:
        if token is None and type(visit) is dict:
            visitor = visit.get("visitor_id")
            entry = self.visitors.get(visitor) if type(visitor) is str else None
            if entry is not None:
                ms = _ms(now)
                if ms >= 0:
                    lease, window = entry[0], self.window
                    if lease.fast > ms and lease.first and not entry[1] and window.floor <= ms < window.due:
                        until = ms + lease.ps.hold_ms
                        made = lease.made
                        if until > lease.lu:
                            lease.lu = until
                            made = lease.made = tuple.__new__(type(made), (made[0], made[1], made[2], made[3],
                                                                           made[4], until / 1000.0, made[6]))
                        if ms > lease.last:
                            lease.last = ms
                        self.marked[lease.key] = lease.ps
                        window.renewed += 1
                        return made
                    back = self.pools.local(visitor, ms)
                    if back is not None:
                        return back
        return self.full(visit, now, token)

    def assign_many(self, visits: Sequence[Any], now: Any = None) -> list[Any]:
        if now is None:
            now = time.time()
        assign = self.assign
        return [assign(v, now) for v in visits]
