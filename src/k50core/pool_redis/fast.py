"""The assign fast path of an engine whose pools are in Redis: returning visitors answered from
the leases this host knows (``RedisPools.local``), no round trip; everyone else by the engine."""
from __future__ import annotations

import time
from typing import Any, Callable, List, Sequence, Tuple

from .._engine_py.returning import MAX_MS


def redis_assigner(pools: Any, full: Callable[..., Any]) -> Tuple[Callable[..., Any], Callable[..., List[Any]]]:
    """(assign, assign_many) as an engine binds them."""
    local = pools.local
    clock = time.time

    def assign(visit: Any, now: Any = None, token: Any = None) -> Any:
        if token is None and type(visit) is dict:
            visitor = visit.get("visitor_id")
            if visitor is not None:
                if now is None:
                    ms = int(clock() * 1000.0)
                elif type(now) is float or (type(now) is int and -1 < now < MAX_MS):
                    ms = int(now * 1000.0) if 0.0 <= now * 1000.0 <= MAX_MS else -1  # NaN: -1
                else:
                    ms = -1  # the full path names what is wrong
                if ms >= 0:
                    back = local(visitor, ms)
                    if back is not None:
                        return back
        return full(visit, now, token)

    def assign_many(visits: Sequence[Any], now: Any = None) -> List[Any]:
        if now is None:
            now = clock()
        return [assign(v, now) for v in visits]

    return assign, assign_many
