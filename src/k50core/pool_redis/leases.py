"""What a host keeps of the pools in Redis: the pools' keys, the leases it knows, reply helpers."""
from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..config.model import Pool
from ..pools import Assignment

log = logging.getLogger("k50core.pool_redis")
NEVER, LEASED, RETIRED = 0, 2, 3
MARGIN_MS = 2_000     # answered locally only while Redis's end of the lease is further off than this


class Unavailable(Exception):
    """Redis did not answer (in time): the caller falls back to the default number."""


@dataclass
class _PoolKeys:
    index: int             # the pool's id in the registry: the first field of its tokens
    pool: Pool
    keys: tuple[bytes, bytes, bytes, bytes]
    hold_ms: int
    cooldown_ms: int
    display: dict[str, str]
    slots: dict[int, str]  # slot id -> number


class Lease:
    """A lease this host knows: what Redis confirmed (``cu``) and what this host has since added.
    ``fast``: the instant (ms) up to which this host may answer its visitors from memory (Redis's
    end less the margin; -1 once gone), kept with ``cu`` and ``gone`` so the fast path reads one
    field."""
    __slots__ = ("ps", "slot", "gen", "start", "_cu", "lu", "first", "last", "made", "holder", "_gone", "key", "fast")

    def __init__(self, ps: _PoolKeys, slot: int, gen: int, start: int, until: int, made: Assignment,
                 holder: str) -> None:
        self.ps, self.slot, self.gen, self.start = ps, slot, gen, start
        self._gone = False
        self.cu = self.lu = until
        self.first = 0        # the first renewal not yet written to Redis (0: none)
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


def _redacted(url: str) -> str:
    """The URL without its password."""
    from urllib.parse import urlsplit, urlunsplit
    parts = urlsplit(url)
    if parts.password:
        parts = parts._replace(netloc=parts.netloc.replace(":" + parts.password + "@", ":***@"))
    return urlunsplit(parts)


def _text(v: Any) -> str:
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)


def _fields(rec: Sequence[Any]) -> tuple[int, int, int, str, int, int, int, str, str]:
    """(gen, shared, until, number, rule, start, last, holder, session) of a record's reply."""
    return (int(rec[0]), int(rec[1]), int(rec[2]), _text(rec[3]), int(rec[4]), int(rec[5]), int(rec[6]),
            _text(rec[7]), _text(rec[8]))


def _records(reply: Sequence[Any]) -> list[tuple[int, Sequence[Any]]]:
    """(slot, fields) of k50_records / k50_setup replies: 12 items each."""
    return [(int(reply[i]), reply[i + 1:i + 12]) for i in range(0, len(reply), 12)]


def _start_flusher(pools: Any) -> None:
    """A daemon thread writing waiting renewals every window, so they reach Redis even when no
    visitor comes to carry them; it ends with the pools."""
    ref = weakref.ref(pools)

    def run() -> None:
        while True:
            time.sleep(pools.window_ms / 1000.0)
            p = ref()
            if p is None or p.closed:
                return
            try:
                p.flush()
            except Exception as exc:  # never let it die
                log.error("flushing renewals failed", exc_info=exc)
            del p

    threading.Thread(target=run, name="k50core-redis-flusher", daemon=True).start()
