"""Reference of ``_returning.pxi``: the assign fast path for returning visitors."""
from __future__ import annotations

import time
from typing import Any, Callable, Optional, Sequence

from .pool import SlotTable

MAX_MS = (1 << 43) - 1


class ReturnCache:
    """Returning visitors' live leases by visitor id: the assign fast path."""

    def __init__(self, table: SlotTable, capacity: int = 200_000) -> None:
        self.table = table
        self.entries: dict = {}
        self.capacity = capacity

    def put(self, visitor: str, slot: int, gen: int, hold: int, made: tuple) -> None:
        if len(self.entries) >= self.capacity:
            self.entries.clear()
        if not isinstance(made, tuple) or type(made) is tuple or len(made) != 7:
            raise TypeError("expected an Assignment (a 7-field tuple subclass)")
        self.entries[visitor] = (slot, gen, hold, made)

    def renew(self, visitor: Any, now: int) -> Optional[tuple]:
        entry = self.entries.get(visitor) if type(visitor) is str else None
        if entry is None:
            return None
        slot, gen, hold, made = entry
        until = self.table.renew(slot, gen, now, hold)
        if not until:
            del self.entries[visitor]
            return None
        return made._replace(expires_at=until / 1000.0, shared=self.table.state(slot)[2])

    def renew_visits(self, visits: Sequence[Any], now: int) -> list:
        """renew() for each visit dict's visitor_id: a list of Assignments, None where missed."""
        return [self.renew(v.get("visitor_id"), now) if type(v) is dict else None for v in visits]

    def discard(self, visitor: Any) -> None:
        self.entries.pop(visitor, None)

    def clear(self) -> None:
        self.entries.clear()

    def __len__(self) -> int:
        return len(self.entries)


class Assigner:
    """``assign(visit, now=None, token=None)``: returning visitors here, the rest via ``full``."""

    def __init__(self, cache: ReturnCache, full: Callable[..., Any]) -> None:
        self.cache = cache
        self.full = full

    def __call__(self, visit: Any, now: Any = None, token: Any = None) -> Any:
        if token is None and type(visit) is dict:
            if now is None:
                ms = time.time() * 1000.0
            elif type(now) in (float, int):
                ms = float(now) * 1000.0
            else:
                ms = -1.0
            if 0.0 <= ms <= MAX_MS:  # otherwise the full path reports the bad clock
                back = self.cache.renew(visit.get("visitor_id"), int(ms))
                if back is not None:
                    return back
        return self.full(visit, now, token)
