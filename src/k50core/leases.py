"""Lease recording: pool → lease log → store. Who was shown which number, kept safe and stored.

A ``LeaseRecorder`` takes what the pools report (the lease log, through ``sink``) and what the
engine starts (a new lease with its visit, through ``record_start``), and writes both to the
store, once each (a start's event in the log is the row stored with its visit):

* a SQLite file: each start goes to an append-only journal (``k50core.store.journal``) before
  its number is shown, and to the store in batches;
* PostgreSQL: each start is committed before its number is shown (by the recorder, or by a host
  that defers the writes: see ``commit_before_showing``);
* a store in memory: batches only (a crash loses the memory too).

Most callers never see it: the ``Engine`` builds one over its store, writes through it from
``assign`` and hands the lease log to the store at ``flush``/``checkpoint``/``close``. A host that
places the store's I/O itself (the HTTP service, see ``bindings/service/writer.py``) sets
``defer_writes`` and drives it through a small interface:

``commit_before_showing()``   after assign: must a queued start be committed before its number shows?
``take(...)`` / ``write(w)``  the queued starts and lease log, taken where the host likes and written
                              where it likes (a failed write puts them back, in order)
``position`` / ``stored_up_to(p)``  how far the starts queued so far are stored (a host waits on it)
``log_waiting``               whether lease log rows taken from the pools still wait for a write
"""
from __future__ import annotations

import logging
import os
import weakref
from collections.abc import Callable
from typing import Any, NamedTuple

from .pools import LeaseEvent
from .store import LeaseRow, Store
from .store.journal import StartJournal, catch_up as catch_up_journals, recover as recover_journals

log = logging.getLogger("k50core.engine")

Start = tuple[dict[str, Any], LeaseRow]  # a lease start with its visit, as the store saves it
Drain = Callable[[bool], list[LeaseEvent]]  # the pools' lease log since the last drain (checkpoint: renewals too)
EventSink = Callable[[list[LeaseEvent]], None]
BATCH_STARTS = 512  # queued starts written together (an embedding engine writes them itself) ...
BATCH_SECONDS = 1.0  # ... or once the oldest has waited this long


class Writes(NamedTuple):
    """What ``LeaseRecorder.take`` gives and ``write`` stores: lease starts with their visits (the
    oldest first) and lease log events."""
    starts: list[Start]
    events: list[LeaseEvent]

    @property
    def empty(self) -> bool:
        return not self.starts and not self.events


class LeaseRecorder:
    """The lease starts and the lease log on their way to ``store`` (see the module's note).

    Build it over the engine's store (``Engine`` makes one by default); the engine then connects
    the pools (``attach``) and opens it (``open``: a journal for a SQLite file, after replaying
    those a killed process left). ``lease_sink`` also receives every lease log event, once.
    """

    def __init__(self, store: Store, *, lease_sink: EventSink | None = None) -> None:
        self.store = store
        self.lease_sink = lease_sink
        # A host that places the store's writes itself (the HTTP service) sets this: starts and
        # the log are only queued, and the host takes them (take) and writes them (write).
        self.defer_writes = False
        self.journal: StartJournal | None = None  # a SQLite file's, once opened
        self.lease_starts = 0  # lease starts and joins queued or stored, ever: the position ...
        self.starts_stored = 0  # ... and how many of them (the oldest first) the store has
        self._durable = bool(getattr(store, "persistent", False))  # a crash must not lose a start
        self._commit_first = False  # a queued start waits for the store before its number shows
        self._start_queued = False  # since commit_before_showing() was last asked
        self._starts: list[Start] = []  # lease starts waiting for the store, oldest first
        self._first_queued: float | None = None  # when the oldest of them came
        self._events: list[LeaseEvent] = []  # the lease log waiting for the store
        # log events the store has already with their start (see _not_saved), by identity
        self._saved_with_start: dict[int, LeaseEvent] = {}
        self._drain: Drain = lambda checkpoint: []
        self._after_write: Callable[[bool], None] = lambda checkpoint: None
        self._report_due = False  # a checkpoint was taken: after_write hears of it

    # -- set up by the engine ------------------------------------------------------------
    def attach(self, drain: Drain, after_write: Callable[[bool], None] | None = None) -> None:
        """Where the lease log comes from (the pools' ``drain``), and what runs after each store
        write (the engine's visit counts and pool samples; its argument says a checkpoint was taken)."""
        self._drain = drain
        if after_write is not None:
            self._after_write = after_write

    def open(self) -> None:
        """For a SQLite file: replay the journals a killed process left, then open this process's
        own. Done last when an engine starts, once nothing else can fail (no journal is left behind)."""
        store = self.store
        if self.journal is None and store.backend == "sqlite" and self._durable:
            recover_journals(store.path, store)
            self.journal = StartJournal(store.path)
            me = weakref.ref(self)  # a recorder made before a fork (gunicorn --preload): see _forked
            os.register_at_fork(after_in_child=lambda: getattr(me(), "_forked", lambda: None)())
        self._commit_first = self._durable and self.journal is None

    def _forked(self) -> None:
        """In a forked child: a journal of its own; the starts it inherited queued are in the
        parent's journal, not in this one (the order the journal counts in)."""
        if self.journal is not None:
            self.journal = self.journal.reopened()
            self.journal.skip(len(self._starts))

    # -- what the pools and the engine report ------------------------------------------------
    def sink(self, events: list[LeaseEvent]) -> None:
        """The pools' lease log, in batches (called from inside assign() or a heartbeat: a failed
        write is kept and logged, never raised)."""
        if self.defer_writes:
            self._events.extend(events)
        else:
            starts, self._starts, self._first_queued = self._starts, [], None
            try:
                self.write(Writes(starts, self._not_saved(events)), durable=False)
            except Exception as exc:  # back in the queue (write put it there)
                log.error("writing lease starts and log events failed; kept for the next write", exc_info=exc)
        if self.lease_sink is not None:
            self.lease_sink(events)

    def record_start(self, event: LeaseEvent, visit: dict[str, Any], row: LeaseRow) -> None:
        """A new lease (or a join of a shared one) with its visit: safe before the page shows its
        number when the store is on disk (journaled, or committed), so a restart or a kill -9
        cannot lose who held the number. ``event`` is the pools' log event for it (stored once)."""
        saved = self._saved_with_start
        if self.journal is not None:
            try:
                self.journal.append(((visit, row),))
            except OSError as exc:  # a full or failing disk: the store's own commit instead
                saved[id(event)] = event
                self._store_past_journal(visit, row, exc)
                return
        elif self._commit_first and not self.defer_writes:  # PostgreSQL: committed right here
            self.store.save_start(visit, row)
            saved[id(event)] = event
            self.lease_starts += 1
            self.starts_stored += 1
            return
        # journaled, or a store in memory (nothing to lose to a crash): to the store in batches
        saved[id(event)] = event  # the same event reaches the lease log: stored once, with this
        self._queue_start(visit, row)
        if not self.defer_writes and (len(self._starts) >= BATCH_STARTS
                                      or row.last - (self._first_queued or row.last) >= BATCH_SECONDS):
            try:  # the starts alone: the lease log stays for drain() and the sink
                self._write_starts()
            except Exception as exc:  # safe in the journal (or nothing to lose): kept for the next write
                log.error("writing %d lease starts failed; kept for the next write", len(self._starts),
                          exc_info=exc)

    def _queue_start(self, visit: dict[str, Any], row: LeaseRow) -> None:
        if not self._starts:
            self._first_queued = row.last
        self._starts.append((visit, row))
        self.lease_starts += 1
        self._start_queued = True

    def _store_past_journal(self, visit: dict[str, Any], row: LeaseRow, exc: OSError) -> None:
        """The journal refused a start: the store takes it now, after everything queued before it
        (the order the journal counts in). If the store fails too, the start stays queued for the
        next write and the caller hears of it (the service answers 503)."""
        log.error("lease start journal failed (%s): storing directly", exc)
        assert self.journal is not None
        self.journal.skip(1)
        self._queue_start(visit, row)
        self._write_starts()

    def _write_starts(self) -> None:
        starts, self._starts, self._first_queued = self._starts, [], None
        self.write(Writes(starts, []), durable=False)

    # -- for a host that writes (defer_writes) ------------------------------------------------
    def commit_before_showing(self) -> bool:
        """After an ``assign()`` with ``defer_writes``: True when it queued a lease start that the
        store must commit before its number is shown (a store kept elsewhere: PostgreSQL). A
        SQLite file has the journal, a store in memory has nothing to keep: False. Asking clears it."""
        queued, self._start_queued = self._start_queued, False
        return queued and self._commit_first

    @property
    def position(self) -> int:
        """How many lease starts were queued so far: ``stored_up_to(position)`` says when all of
        them are in the store."""
        return self.lease_starts

    def stored_up_to(self, position: int) -> bool:
        return self.starts_stored >= position

    @property
    def log_waiting(self) -> bool:
        """Lease log events taken from the pools are waiting for a write (see ``take``'s limits)."""
        return bool(self._events)

    def take(self, log: bool = True, checkpoint: bool = False, max_starts: int | None = None,
             max_events: int | None = None) -> Writes:
        """The queued lease starts (with their visits, the oldest first, at most ``max_starts``)
        and, with ``log`` and no start left behind, the lease log (at most ``max_events``), taken
        for ``write``: an end in the log never reaches the store before the start of the lease it
        cuts. What is left stays queued, in order. Renewals join the log at checkpoints (the
        core's, every ``store.checkpoint_seconds`` of renewal clock, or ``checkpoint``): a
        heartbeat costs no store write of its own."""
        starts = self._starts
        if max_starts is not None and len(starts) > max_starts:
            starts, self._starts = starts[:max_starts], starts[max_starts:]
            self._first_queued = self._starts[0][1].last
        else:
            self._starts, self._first_queued = [], None
        if log:
            drained = self._drain(checkpoint)
            self._events += drained
            if drained and self.lease_sink is not None:
                self.lease_sink(drained)
            if checkpoint:
                self._report_due = True
        if not log or self._starts or not self._events:
            return Writes(starts, [])
        events = self._not_saved(self._events)
        if max_events is not None and len(events) > max_events:
            events, self._events = events[:max_events], events[max_events:]
        else:
            self._events = []
        return Writes(starts, events)

    def write(self, writes: Writes, durable: bool = True) -> None:
        """Store what ``take`` gave, in one transaction (all of it, or none). ``durable``: the
        starts are on disk when this returns. On failure it goes back to the queue, ahead of
        anything queued since, and the error is raised."""
        try:
            self.store.save_writes(writes.starts, writes.events, durable)
        except Exception:
            self._requeue(writes)
            raise
        if writes.starts:
            self.starts_stored += len(writes.starts)
            if self.journal is not None:
                self.journal.stored(len(writes.starts))
        report_due, self._report_due = self._report_due, False
        self._after_write(report_due)

    def _requeue(self, writes: Writes) -> None:
        if writes.starts:
            self._first_queued = writes.starts[0][1].last
            self._starts[:0] = writes.starts
        if writes.events:
            self._events[:0] = writes.events

    # -- for everyone -------------------------------------------------------------------------
    def flush(self, checkpoint: bool = False) -> None:
        """Write the queued lease starts and lease log to the store (on failure they stay queued);
        with ``checkpoint`` also every lease's activity since the last checkpoint."""
        self.write(self.take(checkpoint=checkpoint), durable=False)

    def drain(self) -> list[LeaseEvent]:
        """The lease log since the last drain, renewals included, for a caller who keeps it
        (``Engine.drain_leases``): nothing of it is left to match against the starts saved with
        their visits."""
        self._saved_with_start.clear()
        return self._drain(True)

    def catch_up(self) -> None:
        """Other processes' lease starts of the last second, still in their journals, into the
        store now (a call is attributed against them)."""
        if self.journal is not None:
            catch_up_journals(self.store.path, self.store, self.journal)

    def close(self) -> None:
        """Close the journal (its files go once everything in them is stored). Call ``flush`` first."""
        if self.journal is not None:
            self.journal.close()

    def _not_saved(self, events: list[LeaseEvent]) -> list[LeaseEvent]:
        """The lease log less the starts and joins saved with their visits: the same rows again
        (a busy shared number makes one per new visitor). Sinks still get every event."""
        saved = self._saved_with_start
        if not saved:
            return events
        return [e for e in events if saved.pop(id(e), None) is not e]
