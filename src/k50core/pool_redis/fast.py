"""The assign fast path of an engine whose pools are in Redis: returning visitors answered from
the leases this host knows (``RedisPools.local``), no round trip; everyone else by the engine. The
path itself is the core's ``RedisAssigner`` (compiled, or its reference
``k50core._engine_py.redis_local``), as the pools' ``core`` picks it."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any


def redis_assigner(pools: Any, full: Callable[..., Any]) -> tuple[Callable[..., Any], Callable[..., list[Any]]]:
    """(assign, assign_many) as an engine binds them. The common case (the holder of a lease Redis
    confirmed well past now, back within the write window) is answered inline; the rest of the
    returning visitors by ``pools.local``, everyone else by the engine (``full``)."""
    assigner = pools.core.RedisAssigner(pools, full)
    return assigner.assign, assigner.assign_many
