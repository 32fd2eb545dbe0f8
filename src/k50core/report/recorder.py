"""What the engine records for reports as it runs: visit sessions (see visits.py) and samples
of its pools, both written with the engine's other writes when due (every ``every_ms`` of the
visits' clock, like the lease checkpoints), never on the returning visitors' path."""
from __future__ import annotations

import logging
import os
import threading
import uuid
from collections.abc import Callable
from typing import Any

from . import sessions, storage
from .dimensions import visit_combo
from .visits import VisitCounter

log = logging.getLogger("k50core.report")
HOLDER_MAX = 48  # bytes of a holder's id a slot keeps (the core's layout)
MAX_PENDING = 50_000  # counter rows kept before a write is due anyway
# Pools are sampled at most this often: a sample reads every slot's state (~45 ms for 200,000
# numbers), off the visitors' path but on the writer's. Exhaustion events are counted exactly,
# by minute, where the engine answers them (Python: the pool had no free number for a new visit);
# only the peak of leased numbers between samples is sampled.
SAMPLE_MS = 300_000


class Recorder:
    def __init__(self, every_ms: int, sample_ms: int = SAMPLE_MS,
                 combo: Callable[..., tuple[str | None, ...]] = visit_combo) -> None:
        # decided with the other processes; combo: the engine's core's visit_combo
        self.visits = VisitCounter(activity=self._activity, shared=True, combo=combo)
        self.pools: Any = None  # the engine's, set once made
        self.started: str | None = None  # the lease the visit being answered started, if any
        self.every_ms = max(1000, every_ms)
        self.sample_ms = sample_ms
        self._sampled_ms: int | None = None
        self.clock_ms: int | None = None  # the latest visit's time the engine saw
        self._written_ms: int | None = None
        self._process = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._exhaustions: dict[tuple[str, float], list[int]] = {}  # (pool, minute) -> [shared, default]
        self._write_lock = threading.Lock()  # the service writes from its loop and its store thread
        self._samples: list[tuple[float, str, int, int | None, int, int, str]] = []

    def page_view(self, visitor: str | None, now_ms: int, attrs: Any, rule: str | None,
                  pool: str | None, number: str | None) -> None:
        if self.clock_ms is None or now_ms > self.clock_ms:
            self.clock_ms = now_ms
        started, self.started = self.started, None
        self.visits.page_view(visitor, now_ms, attrs, rule, pool, number, started)

    def _activity(self, lease: str, visitor: str) -> int | None:
        """The last activity of a lease (ms) while its slot still holds it for this visitor."""
        slot, _, gen = lease.partition(".")
        try:
            rec = self.pools.table.record(int(slot))
        except (AttributeError, ValueError, IndexError):
            return None
        holder = rec.holder  # as the slot keeps it: the id's first HOLDER_MAX bytes
        if rec.gen != int(gen) or not holder or holder != visitor.encode("utf-8", "replace")[:HOLDER_MAX]:
            return None
        return int(rec.last)


    def due(self) -> bool:
        if self.clock_ms is None:
            return False
        return self._written_ms is None or self.clock_ms - self._written_ms >= self.every_ms \
            or self.visits.pending >= MAX_PENDING

    def exhausted(self, pool: str, shared: bool, now_ms: int) -> None:
        """A visit found the pool exhausted (shared a number, or got the default): by minute."""
        key = (pool, now_ms // 60_000 * 60.0)
        counts = self._exhaustions.get(key)
        if counts is None:
            counts = self._exhaustions[key] = [0, 0]
        counts[0 if shared else 1] += 1

    def sample(self, pools: Any, now_ms: int, leased: bool) -> None:
        """The exhaustions counted since the last sample, and with ``leased`` each pool's leased
        numbers (a scan of its slots)."""
        by_name = getattr(pools, "by_name", None) or {}  # (pools in Redis: no slots here to count)
        sizes = {name: len(ps.slots) for name, ps in by_name.items()}
        found, self._exhaustions = self._exhaustions, {}
        for (name, minute), (shared, default) in found.items():
            self._samples.append((minute, name, sizes.get(name, 0), None, shared, default, self._process))
        if leased:
            self._sampled_ms = now_ms
            try:
                stats = pools.stats(now_ms)
            except Exception as exc:  # a pool backend that cannot count now (Redis away): no sample
                log.warning("sampling the pools failed: %s", exc)
                return
            for name, s in stats.items():
                self._samples.append((now_ms / 1000.0, name, s["numbers"], s["leased"], 0, 0, self._process))

    def write(self, store: Any, pools: Any, full: bool = False) -> None:
        """Sample the pools and add the counts to the store; on failure the counts stay for later.
        ``full``: count the leased numbers now, however recently that was done."""
        with self._write_lock:
            self._write(store, pools, full)

    def _write(self, store: Any, pools: Any, full: bool) -> None:
        now_ms = self.clock_ms
        if now_ms is None:
            return
        self._written_ms = now_ms  # (a failed write below is retried at the next one that is due)
        self.sample(pools, now_ms, full or self._sampled_ms is None or now_ms - self._sampled_ms >= self.sample_ms)
        starts, touched = self.visits.take_pending()
        rows = self.visits.take(now_ms)
        try:
            kept = sessions.write(store, starts, touched, rows, self.visits.gap_ms, self._activity, now_ms)
        except Exception:
            self.visits.give_back(rows)
            self.visits.give_back_pending(starts, touched)
            raise
        self.visits.sessions += kept
        samples, self._samples = self._samples, []
        try:
            storage.add_pool_samples(store, samples)
        except Exception:
            self._samples[:0] = samples[-1000:]
            raise

