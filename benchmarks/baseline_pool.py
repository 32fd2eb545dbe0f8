"""The peer for the pool benchmarks: a straightforward lock-based pure-Python pool.

dict (visitor → lease) + deque (free numbers) + heap (expiries) + one lock,
with the same hold / cooldown / idle-longest semantics as k50core's pools.
"""
from __future__ import annotations

import heapq
import threading
from collections import deque


class LockedPool:
    def __init__(self, numbers: list[str], hold: float, cooldown: float) -> None:
        self.hold, self.cooldown = hold, cooldown
        self.free: deque[str] = deque(numbers)              # oldest-idle first
        self.held: dict[str, list] = {}                     # visitor → [number, until]
        self.expiries: list[tuple[float, str]] = []         # (until, visitor)
        self.cooling: deque[tuple[float, str]] = deque()    # (free at, number)
        self.lock = threading.Lock()

    def _release(self, now: float) -> None:
        while self.expiries and self.expiries[0][0] <= now:
            until, visitor = heapq.heappop(self.expiries)
            lease = self.held.get(visitor)
            if lease is not None and lease[1] <= now:
                del self.held[visitor]
                self.cooling.append((lease[1] + self.cooldown, lease[0]))
            elif lease is not None:
                heapq.heappush(self.expiries, (lease[1], visitor))
        while self.cooling and self.cooling[0][0] <= now:
            self.free.append(self.cooling.popleft()[1])

    def assign(self, visitor: str, now: float) -> str | None:
        with self.lock:
            lease = self.held.get(visitor)
            if lease is not None and lease[1] > now:
                lease[1] = now + self.hold
                return lease[0]
            self._release(now)
            if not self.free:
                return None
            number = self.free.popleft()
            self.held[visitor] = [number, now + self.hold]
            heapq.heappush(self.expiries, (now + self.hold, visitor))
            return number

    def renew(self, visitor: str, now: float) -> bool:
        with self.lock:
            lease = self.held.get(visitor)
            if lease is None or lease[1] <= now:
                return False
            lease[1] = now + self.hold
            return True
