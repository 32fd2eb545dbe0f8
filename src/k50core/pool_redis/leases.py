"""What a host keeps of the pools in Redis: the pools' keys, the leases it knows, reply helpers."""
from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .._engine_py.redis_local import MARGIN_MS, RedisLease as Lease  # noqa: F401 (the type; the core's at run time)
from ..config.model import Pool

log = logging.getLogger("k50core.pool_redis")
NEVER, LEASED, RETIRED = 0, 2, 3


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
