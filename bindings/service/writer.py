"""The store on a thread of its own, the engine's memory on the event loop.

Assigning a number is memory work (the compiled pools, rules and enrichment): it runs
right in the request, on the event loop, with no thread hop and no lock. What reaches the
store — a new lease and the visit that started it, the lease log, calls — runs on one
thread that owns the store's connection, in the order it was asked for.

A new lease must be on disk before its number is shown (a restart or a kill -9 must not
lose who held it). Writing each one with its own fsync caps a server at a few hundred
new visitors a second, so writes are grouped: every request waiting while a write is on
the disk is answered by the next single write ("group commit", as databases do it).
"""
from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, List, Optional, TypeVar

from k50core.engine import Engine

log = logging.getLogger("k50core.service")
T = TypeVar("T")


class StoreThread:
    """``await run(fn, ...)`` runs ``fn`` on the store's thread; ``await commit()`` returns once
    every lease start queued before it is durably stored."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        engine.defer_writes = True
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="k50core-store")
        self._lock = threading.Lock()  # requests may come on more than one loop (test clients do)
        # held around everything run on the store's thread; others who touch the store's connection
        # (the outgoing events' dispatcher) hold it too. Re-entrant: a function run here may call them.
        self.lock = threading.RLock()
        self._waiting: List["asyncio.Future[None]"] = []
        self._writing = False
        self.writes = 0  # writes done (each one fsync at most)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        def locked() -> T:
            with self.lock:
                return fn(*args)
        return await asyncio.get_running_loop().run_in_executor(self._executor, locked)

    async def commit(self) -> None:
        """Wait until what is queued now is stored durably: joins the next group write.

        The first to come writes its group; whoever comes meanwhile waits for the next group,
        which is written by a task the writer leaves behind (one writer at a time, so every write
        follows the earlier ones and a group's starts are in its write or an earlier one)."""
        done: "asyncio.Future[None]" = asyncio.get_running_loop().create_future()
        with self._lock:
            self._waiting.append(done)
            lead = not self._writing
            self._writing = True
        if lead:
            await self._write_group()
        await done

    async def _write_group(self) -> None:
        with self._lock:
            group, self._waiting = self._waiting, []
        try:
            await self._write(group)
        finally:
            with self._lock:
                more = bool(self._waiting)
                self._writing = more
            if more:
                asyncio.ensure_future(self._write_group())

    async def _write(self, group: List["asyncio.Future[None]"]) -> None:
        starts, events = self.engine.take_writes()  # taken after the group's starts were queued
        error: Optional[BaseException] = None
        try:
            if starts or events:
                await self.run(self.engine.write, starts, events, True)
                self.writes += 1
        except Exception as exc:  # kept for the next write; the waiting requests are told
            self.engine.requeue(starts, events)
            log.error("writing %d lease starts and %d log events failed", len(starts), len(events), exc_info=exc)
            error = exc
        for done in group:
            _settle(done, error)

    async def write_log_every(self, seconds: float) -> None:
        """Renewals (heartbeats, returning visitors) reach the store within ``seconds``; cancel to stop."""
        while True:
            await asyncio.sleep(seconds)
            try:
                await self.commit()
            except Exception:  # logged by the write; the next round tries again
                pass

    async def close(self, close_engine: bool) -> None:
        """Write what is queued; then close the engine (when the app owns it) on the store's thread."""
        await self.commit()
        if close_engine:
            await self.run(self.engine.close)
        self.engine.defer_writes = False
        self._executor.shutdown(wait=True)


def _settle(done: "asyncio.Future[None]", error: Optional[BaseException]) -> None:
    """Resolve a waiting request's future, from whichever loop it was made on."""
    def settle() -> None:
        if not done.done():
            done.set_exception(error) if error is not None else done.set_result(None)
    loop = done.get_loop()
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if loop is running:
        settle()
    elif not loop.is_closed():
        loop.call_soon_threadsafe(settle)
