"""``engine.assign`` with the pools in Redis, for callers that serve many visits at once: the
engine's memory work where the caller keeps it, the new visitor's claim (the one Redis round trip)
out of its way, so that the claims of concurrent visits go to Redis together (``claims``).

* ``assign_async`` (an event loop: the service, the ASGI middleware): the visit's local steps
  run on the loop (``Engine.new_visit``: the returning visitor's lease, enrichment, rules); the claim
  goes to the claims' thread (``claims.Sender``) and the loop serves other requests until its reply
  is in; the assignment and its lease start are then made on the loop. A visitor this host does not
  know, headed for no dynamic pool (or with several pools), is first looked for in Redis (a lease
  another host made) the same way; the visit's steps are then taken again, with that answer.
* ``assign_threaded`` (a thread per request: WSGI): the local steps under the caller's lock, the
  claim outside it, coalesced with the other threads' claims (``claims.Coalescer``).

Returning visitors are answered as ``engine.assign`` answers them (from this host's memory), and
while Redis is marked down a claim fails at once: the visitor gets the default number.
"""
from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Generator
from typing import Any

from ..pools import Assignment
from .claims import FindFirst
from .fast import redis_assigner

Steps = Generator[tuple[Any, ...], Any, Assignment]
_NO_LOCK = contextlib.nullcontext()


def in_redis(engine: Any) -> bool:
    """Whether this engine's pools are in Redis (so its new visitors' claims are round trips)."""
    return hasattr(engine.pools, "claim_soon")


def off_the_loop(engine: Any) -> None:
    """Returning visitors' renewals written by the pools' flusher thread alone (when it runs), not
    by the visit that ends a write window: an event loop's visits then wait for no round trip."""
    pools = engine.pools
    if pools._flusher:
        pools.flush_in_background = True


def fast_only(engine: Any) -> Any:
    """``engine.assign``'s answer from this host's memory (a returning visitor), or None."""
    pools = engine.pools
    fast = getattr(pools, "_fast_only", None)
    if fast is None:
        fast = pools._fast_only = redis_assigner(pools, lambda visit, now, token: None)[0]
    return fast


def _start(steps: Steps) -> tuple[Any, Assignment | None]:
    try:
        return next(steps), None
    except StopIteration as done:
        return None, done.value


def _step(steps: Steps, outcome: tuple[Any, Any]) -> tuple[Any, Assignment | None]:
    try:
        return steps.send(outcome), None
    except StopIteration as done:
        return None, done.value


async def assign_async(engine: Any, visit: Any, now: float | None = None, token: str | None = None,
                       lock: Any = _NO_LOCK) -> Assignment:
    """``engine.assign(visit, now, token)`` on an event loop, its round trips off the loop (see the
    module). ``lock``: held around the engine's memory work (never across an await), when other
    threads use the engine too."""
    pools = engine.pools
    loop = asyncio.get_running_loop()
    with lock:
        got = fast_only(engine)(visit, now, token)
        if got is not None:
            return got
        steps, claim, got, look = _begin(engine, visit, now, token, True)
    if look is not None:  # the visitor may hold a lease another host made: looked for off the loop
        woken: asyncio.Future[None] = loop.create_future()
        if not pools.find_soon(look.visitor, look.now_ms, functools.partial(_wake, loop, woken)).done:
            await woken
        with lock:
            steps, claim, got, look = _begin(engine, visit, now, token, False)
    while got is None:
        woken = loop.create_future()
        pending = pools.claim_soon(*claim, then=functools.partial(_wake, loop, woken))
        if not pending.done:
            try:
                await asyncio.shield(woken)
            except asyncio.CancelledError:  # the request is gone, its claim is not: made all the same
                woken.add_done_callback(functools.partial(_finish, pools, steps, pending, lock))
                raise
        with lock:
            claim, got = _step(steps, pools.claimed(pending))
    return got


async def returning_async(engine: Any, visitor: str | None, token: str | None, now_ms: int) -> Assignment | None:
    """``engine.pools.returning`` on an event loop: a look in Redis it needs (a lease another host
    made, with several pools) made off the loop first."""
    pools = engine.pools
    pools.finding_first(True)
    try:
        return pools.returning(visitor, token, now_ms)
    except FindFirst as need:
        look = need
    finally:
        pools.finding_first(False)
    loop = asyncio.get_running_loop()
    woken: asyncio.Future[None] = loop.create_future()
    if not pools.find_soon(look.visitor, look.now_ms, functools.partial(_wake, loop, woken)).done:
        await woken
    return pools.returning(visitor, token, now_ms)


def _begin(engine: Any, visit: Any, now: Any, token: Any, no_wait: bool) -> tuple[Any, Any, Any, Any]:
    """The visit's steps up to its claim: (steps, claim, None, None), or (steps, None, assignment, None)
    when it needs none, or (None, None, None, FindFirst) when (``no_wait``) a look in Redis comes first."""
    pools = engine.pools
    pools.finding_first(no_wait)
    try:
        steps = engine.new_visit(visit, now, token)
        claim, got = _start(steps)
        return steps, claim, got, None
    except FindFirst as look:
        return None, None, None, look
    finally:
        pools.finding_first(False)


def _wake(loop: asyncio.AbstractEventLoop, woken: asyncio.Future[None], _claim: Any) -> None:
    """On the claims' thread: the waiting request's loop resumes it."""
    def settle() -> None:
        if not woken.done():
            woken.set_result(None)
    if not loop.is_closed():
        loop.call_soon_threadsafe(settle)


def _finish(pools: Any, steps: Steps, pending: Any, lock: Any, _woken: Any) -> None:
    """A cancelled request's claim, once its reply is in: the lease and its start recorded as for
    any other, so Redis and the store agree (nobody is shown the number)."""
    try:
        with lock:
            claim, got = _step(steps, pools.claimed(pending))
        if got is None:  # a share after an exhausted claim: not made for a request that has left
            steps.close()
    except Exception:
        from .leases import log
        log.exception("a cancelled visit's claim could not be recorded")


def assign_threaded(engine: Any, visit: Any, now: float | None = None, token: str | None = None,
                    lock: Any = _NO_LOCK) -> Assignment:
    """``engine.assign(visit, now, token)`` for one of many threads sharing ``engine`` under ``lock``:
    the lock is held for the engine's memory work only, not while a round trip is out, so the
    threads' claims go to Redis together."""
    pools = engine.pools
    with lock:
        got = fast_only(engine)(visit, now, token)
        if got is not None:
            return got
        steps, claim, got, look = _begin(engine, visit, now, token, True)
    if look is not None:
        pools.find_now(look.visitor, look.now_ms)
        with lock:
            steps, claim, got, look = _begin(engine, visit, now, token, False)
    while got is None:
        pending = pools.claim_now(*claim)
        with lock:
            claim, got = _step(steps, pools.claimed(pending))
    return got
