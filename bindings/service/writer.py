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
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, List, Optional, TypeVar

from k50core.engine import Engine

log = logging.getLogger("k50core.service")
START_SLICE = 40  # lease starts written at a time on the loop (about a millisecond) ...
LOG_SLICE = 40  # ... and lease log rows
T = TypeVar("T")


class StoreThread:
    """``await run(fn, ...)`` runs ``fn`` on the store's thread (under ``lock``); ``await commit()``
    returns once every lease start queued before it is stored (as the module's note says where)."""

    def __init__(self, engine: Engine, inline: Optional[bool] = None) -> None:
        self.engine = engine
        engine.defer_writes = True
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
        self._waiting: List["asyncio.Future[None]"] = []
        self._writing = False
        self.backlog = False  # lease log rows left for the next writes

    @property
    def must_wait(self) -> bool:
        """Whether a request that queued a lease start awaits commit() before showing its number."""
        return self.engine.starts_need_commit

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
            goal, log_due = self.engine.lease_starts, with_log
            while True:
                wrote = self._write_here(log_due)
                log_due = log_due and self.backlog
                if (self.engine.starts_stored >= goal or not wrote) and not log_due:
                    return
                await asyncio.sleep(0)
        loop = asyncio.get_running_loop()
        done: "asyncio.Future[None]" = loop.create_future()
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
        starts, events = self.engine.take_writes(with_log)
        if not starts and not events:
            if with_log:
                self.backlog = False
                if self.engine.recorder.due():  # visit counts of a worker with no lease traffic
                    with self.lock:
                        self.engine.write([], [], False)
            return False
        now_starts, later_starts = starts[:START_SLICE], starts[START_SLICE:]
        now_events, later_events = ([], events) if later_starts else (events[:LOG_SLICE], events[LOG_SLICE:])
        try:
            with self.lock:
                self.engine.write(now_starts, now_events, False)  # one transaction: all of it or none
        except Exception as exc:
            self.engine.requeue(starts, events)
            log.error("writing %d lease starts and %d log events failed", len(starts), len(events), exc_info=exc)
            raise
        self.engine.requeue(later_starts, later_events)
        if with_log:  # a write of starts alone says nothing of the log left
            self.backlog = bool(later_events)
        return True

    async def _write_groups(self) -> None:
        """The one writer on the store's thread: group after group while requests wait."""
        group: List["asyncio.Future[None]"] = []
        try:
            while True:
                with self._lock:
                    group, self._waiting = self._waiting, []
                    if not group:
                        self._writing = False
                        return
                starts, events = self.engine.take_writes()  # after the group's starts were queued
                error: Optional[BaseException] = None
                try:
                    await self.run(self.engine.write, starts, events, True)
                except Exception as exc:  # kept for the next write; the waiting requests are told
                    self.engine.requeue(starts, events)
                    log.error("writing %d lease starts and %d log events failed", len(starts), len(events),
                              exc_info=exc)
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
