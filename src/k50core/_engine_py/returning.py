"""Reference of ``_returning.pxi``: the assign fast path for returning visitors."""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from .pool import SlotTable

MAX_MS = (1 << 43) - 1


class ReturnCache:
    """Returning visitors' live leases by visitor id: the assign fast path."""

    def __init__(self, table: SlotTable, capacity: int = 200_000) -> None:
        self.table = table
        self.entries: dict = {}
        self.capacity = capacity
        self.seen: Callable[[str, int, int, int], None] | None = None  # a joiner's return

    def put(self, visitor: str, slot: int, gen: int, hold: int, made: tuple, joined: bool = False) -> None:
        if not isinstance(visitor, str):
            raise TypeError("visitor: expected a str")
        if type(visitor) is not str:
            return  # a str subclass may hash its own way: not cached (as the compiled cache)
        if not isinstance(made, tuple) or type(made) is tuple or len(made) != 7 \
                or type(made[5]) is not float or type(made[6]) is not bool:
            raise TypeError("expected an Assignment (a 7-field tuple subclass, expires_at a float, "
                            "shared a bool)")
        self.table.state(slot)  # IndexError outside the table, as the compiled cache
        if len(self.entries) >= self.capacity:
            self.entries.clear()
        self.entries[visitor] = (slot, gen, hold, made, joined)

    def renew(self, visitor: Any, now: int) -> tuple | None:
        entry = self.entries.get(visitor) if type(visitor) is str else None
        if entry is None:
            return None
        slot, gen, hold, made, joined = entry
        until = self.table.renew(slot, gen, now, hold)
        if not until:
            del self.entries[visitor]
            return None
        made = made._replace(expires_at=until / 1000.0, shared=self.table.state(slot)[2])
        if joined and self.seen is not None:
            self.seen(visitor, slot, gen, now)
        return made

    def discard(self, visitor: Any) -> None:
        self.entries.pop(visitor, None)

    def clear(self) -> None:
        self.entries.clear()

    def rehold(self, holds: Sequence[int]) -> None:
        """A reload changed pools' holds: each entry renews with its pool's (see _returning.pxi)."""
        for visitor, (slot, gen, _hold, made, joined) in list(self.entries.items()):
            pool = self.table.record(slot).pool
            if pool < len(holds):
                self.entries[visitor] = (slot, gen, int(holds[pool]), made, joined)

    def __len__(self) -> int:
        return len(self.entries)


class Assigner:
    """``.assign(visit, now=None, token=None)``: returning visitors here, the rest via ``full``."""

    def __init__(self, cache: ReturnCache, full: Callable[..., Any]) -> None:
        self.cache = cache
        self.full = full

    def assign(self, visit: Any, now: Any = None, token: Any = None) -> Any:
        if token is None:
            ms = clock_ms(now)
            if ms >= 0:
                back = self.cache.renew(visit.get("visitor_id"), ms) if type(visit) is dict else None
                if back is not None:
                    return back
        return self.full(visit, now, token)

    def assign_many(self, visits: Sequence[Any], now: Any = None) -> list:
        """assign() for each visit, one clock reading for all."""
        if now is None:
            now = time.time()
        ms = clock_ms(now)
        out = []
        for visit in visits:
            back = self.cache.renew(visit.get("visitor_id"), ms) if ms >= 0 and type(visit) is dict else None
            out.append(back if back is not None else self.full(visit, now, None))
        return out


def clock_ms(now: Any) -> int:
    """Seconds (None: the wall clock) as milliseconds, or -1 for what the full path must judge."""
    if now is None:
        now = time.time()
    elif type(now) not in (float, int):
        return -1
    try:
        ms = float(now) * 1000.0
    except OverflowError:  # an int past a float's range: the full path names it
        return -1
    return int(ms) if 0.0 <= ms <= MAX_MS else -1
