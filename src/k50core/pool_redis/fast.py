"""The assign fast path of an engine whose pools are in Redis: returning visitors answered from
the leases this host knows (``RedisPools.local``), no round trip; everyone else by the engine."""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from .._engine_py.returning import MAX_MS
from ..pools import Assignment


def redis_assigner(pools: Any, full: Callable[..., Any]) -> tuple[Callable[..., Any], Callable[..., list[Any]]]:
    """(assign, assign_many) as an engine binds them. The common case (the holder of a lease Redis
    confirmed well past now, back within the write window) is answered inline; the rest of the
    returning visitors by ``pools.local``, everyone else by the engine (``full``)."""
    local = pools.local
    visitors = pools._visitors  # never replaced (cleared in place)
    marked = pools._marked      # never replaced (emptied in place)
    clock = time.time
    new, cls = tuple.__new__, Assignment

    def assign(visit: Any, now: Any = None, token: Any = None) -> Any:
        if token is None and type(visit) is dict:
            visitor = visit.get("visitor_id")
            entry = visitors.get(visitor) if visitor is not None else None
            if entry is not None:
                if type(now) is float:
                    ms = now * 1000.0
                    ms = int(ms) if 0.0 <= ms <= MAX_MS else -1  # NaN: -1
                elif now is None:
                    ms = int(clock() * 1000.0)
                elif type(now) is int and -1 < now < MAX_MS:
                    ms = int(now * 1000.0) if now * 1000.0 <= MAX_MS else -1
                else:
                    ms = -1  # the full path names what is wrong
                if ms >= 0:
                    lease = entry[0]
                    # the common case, inline: the holder of a lease Redis confirmed well past now,
                    # back within the write window (its renewal already waiting to be written)
                    if lease.fast > ms and lease.first and not entry[1] \
                            and pools._flush_floor <= ms < pools._flush_due:
                        until = ms + lease.ps.hold_ms
                        made = lease.made
                        if until > lease.lu:
                            lease.lu = until
                            made = lease.made = new(cls, (made[0], made[1], made[2], made[3], made[4],
                                                          until / 1000.0, made[6]))
                        if ms > lease.last:
                            lease.last = ms
                        marked[lease.key] = lease.ps
                        pools.renewed += 1
                        return made
                    back = local(visitor, ms)
                    if back is not None:
                        return back
        return full(visit, now, token)

    def assign_many(visits: Sequence[Any], now: Any = None) -> list[Any]:
        if now is None:
            now = clock()
        return [assign(v, now) for v in visits]

    return assign, assign_many
