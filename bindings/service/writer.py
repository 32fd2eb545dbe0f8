"""The store beside the event loop: the engine's memory on the loop, the store's I/O placed
where it costs least.

Assigning a number is memory work (the compiled pools, rules and enrichment): it runs right in
the request, on the event loop, with no thread hop and no lock. A new lease must be safe before
its number is shown (a restart or a kill -9 must not lose who was shown it):

* a SQLite file: the engine appends the start to its journal inside assign() (one write(),
  see k50core.store.journal), so the request waits for nothing; the store gets the starts, with
  the lease log, every second, written on the loop in slices so no request waits long (on a
  thread every step would wait for the GIL while the loop is busy: the convoy effect);
* PostgreSQL: a synchronous commit on the store's thread, one group at a time ("group commit":
  whoever asks while one is under way is answered by the next).

Reads, attributions and the outgoing events' outbox go to the store's thread.
"""
from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from k50core.engine import Engine
from k50core.leases import LeaseRecorder

log = logging.getLogger("k50core.service")
START_SLICE = 40  # lease starts written at a time on the loop (about a millisecond) ...
LOG_SLICE = 40  # ... and lease log rows
T = TypeVar("T")


class StoreThread:
    """``await run(fn, ...)`` runs ``fn`` on the store's thread (under ``lock``); ``await commit()``
    returns once every lease start queued before it is stored (as the module's note says where).
    It writes through the engine's ``lease_recorder`` (k50core.leases), whose writes it defers."""

    def __init__(self, engine: Engine, inline: bool | None = None) -> None:
        self.engine = engine
        self.leases: LeaseRecorder = engine.lease_recorder
        self.leases.defer_writes = True
        # A SQLite file's write is CPU work of the process: done right on the loop, it costs that.
        # Handed to a thread, it waits for the GIL at every step while the loop is busy (the convoy
        # effect) and takes several times as long. A server's store (PostgreSQL) is mostly waiting
        # on the network: that goes to the thread.
        self.inline = engine.store.backend == "sqlite" if inline is None else inline
        if self.inline and hasattr(engine.store, "checkpoint_in_background"):
            engine.store.checkpoint_in_background()  # no fsyncs of a checkpoint inside the loop's commits
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="k50core-store")
        self._lock = threading.Lock()  # requests may come on more than one loop (test clients do)
        # held around everything run on the store's thread; others who touch the store's connection
        # (the outgoing events' dispatcher) hold it too. Re-entrant: a function run here may call them.
        self.lock = threading.RLock()
        self._waiting: list[asyncio.Future[None]] = []
        self._writing = False
        self.backlog = False  # lease log rows left for the next writes

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        def locked() -> T:
            with self.lock:
                return fn(*args)
        return await asyncio.get_running_loop().run_in_executor(self._executor, locked)

    async def commit(self, with_log: bool = False) -> None:
        """Return once every lease start queued so far is stored, and with ``with_log`` the lease log.

        With a SQLite file: written on the loop, a slice at a time with the loop's other work in
        between, in the write-ahead log (SQLite's NORMAL commit: a killed process cannot lose it,
        only a power cut could; the starts were in the journal already). Otherwise (PostgreSQL) a
        synchronous commit on the store's thread, one group at a time: whoever asks while one is
        under way joins the next (the lease log goes with every group)."""
        if self.inline:
            goal, log_due = self.leases.position, with_log
            while True:
                wrote = self._write_here(log_due)
                log_due = log_due and self.backlog
                if (self.leases.stored_up_to(goal) or not wrote) and not log_due:
                    return
                await asyncio.sleep(0)
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        with self._lock:
            self._waiting.append(done)
            start = not self._writing
            self._writing = True
        if start:
            asyncio.ensure_future(self._write_groups())
        await done

    def _write_here(self, with_log: bool) -> bool:
        """One slice, on the loop: the oldest lease starts, and with ``with_log`` the lease log
        once no start waits behind the slice (an end in the log must not reach the store before
        the start of the lease it cuts). False when there was nothing to write."""
        leases = self.leases
        writes = leases.take(with_log, max_starts=START_SLICE, max_events=LOG_SLICE)
        if writes.empty:
            if with_log:
                self.backlog = False
                if self.engine.recorder.due():  # visit counts of a worker with no lease traffic
                    with self.lock:
                        self.leases.write(writes, durable=False)  # nothing of the leases: the counts after it
            return False
        try:
            with self.lock:
                leases.write(writes, durable=False)  # one transaction: all of it or none (else requeued)
        except Exception as exc:
            log.error("writing %d lease starts and %d log events failed", len(writes.starts), len(writes.events),
                      exc_info=exc)
            raise
        if with_log:  # a write of starts alone says nothing of the log left
            self.backlog = leases.log_waiting
        return True

    async def _write_groups(self) -> None:
        """The one writer on the store's thread: group after group while requests wait."""
        group: list[asyncio.Future[None]] = []
        try:
            while True:
                with self._lock:
                    group, self._waiting = self._waiting, []
                    if not group:
                        self._writing = False
                        return
                writes = self.leases.take()  # after the group's starts were queued
                error: BaseException | None = None
                try:
                    await self.run(self.leases.write, writes, True)
                except Exception as exc:  # requeued by write(); the waiting requests are told
                    log.error("writing %d lease starts and %d log events failed", len(writes.starts),
                              len(writes.events), exc_info=exc)
                    error = exc
                for done in group:
                    _settle(done, error)
                group = []
        except BaseException as exc:  # cancelled with its loop (a test client's): tell who waits
            with self._lock:
                group, self._waiting, self._writing = group + self._waiting, [], False
            for done in group:
                _settle(done, exc if isinstance(exc, Exception) else RuntimeError("the store's writer stopped"))
            raise

    async def write_log_every(self, seconds: float) -> None:
        """Lease starts and renewals (heartbeats, returning visitors) reach the store within
        ``seconds``; cancel to stop."""
        while True:
            await asyncio.sleep(seconds)
            try:
                await self.commit(with_log=True)
            except Exception:  # logged by the write; the next round tries again
                pass

    async def close(self, close_engine: bool) -> None:
        """Write what is queued; then close the engine (when the app owns it) on the store's thread."""
        await self.commit(with_log=True)
        if close_engine:
            await self.run(self.engine.close)
        self.leases.defer_writes = False
        self._executor.shutdown(wait=True)



def _settle(done: asyncio.Future[None], error: BaseException | None) -> None:
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
