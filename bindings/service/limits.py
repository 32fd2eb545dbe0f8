"""Per-IP and per-visitor rate limits for the public endpoints.

A token bucket per key: ``rate`` requests a minute on average, ``burst`` at
once. A flood from one address or one visitor id then cannot drain a pool:
over the limit a visit gets the site's own number and takes nothing.
"""
from __future__ import annotations

import threading
from typing import Dict, Tuple


class RateLimiter:
    """Token buckets by key, bounded in memory (the oldest half is dropped when full)."""

    def __init__(self, per_minute: float, burst: float, max_keys: int = 100_000) -> None:
        if per_minute <= 0 or burst < 1:
            raise ValueError("rate limits need per_minute > 0 and burst >= 1")
        self.rate, self.burst, self.max_keys = per_minute / 60.0, float(burst), max_keys
        self._buckets: Dict[str, Tuple[float, float]] = {}  # key -> (tokens, when)
        self._lock = threading.Lock()

    def allow(self, key: str, now: float) -> bool:
        """Take one token for ``key`` at time ``now``; False when its bucket is empty."""
        with self._lock:
            tokens, when = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + max(0.0, now - when) * self.rate)
            ok = tokens >= 1.0
            if len(self._buckets) >= self.max_keys and key not in self._buckets:
                for old in list(self._buckets)[: self.max_keys // 2]:
                    del self._buckets[old]
            self._buckets[key] = (tokens - 1.0 if ok else tokens, now)
            return ok
