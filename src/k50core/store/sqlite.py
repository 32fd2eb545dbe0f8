"""The default store: one SQLite file, write-ahead log, versioned migrations."""
from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from .base import Store

log = logging.getLogger("k50core.store")
BACKSTOP_PAGES = 20_000  # with checkpoints in the background, a commit checkpoints only past this (~80 MB)


class SQLiteStore(Store):
    """``SQLiteStore("k50.db")``; ``":memory:"`` for a throwaway one.

    WAL lets readers work while a writer commits. Durable transactions (calls)
    run with ``synchronous=FULL``: the commit reaches the disk before it
    returns, so an acknowledged call survives even a power cut. Lease starts
    and the lease log run with ``NORMAL``: in the write-ahead log, which a
    killed process cannot lose, without waiting for the disk.
    """

    backend = "sqlite"

    def __init__(self, path: str) -> None:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        self.path = path
        self.persistent = path != ":memory:" and not path.startswith("file::memory:")
        self._lock = threading.RLock()
        self._checkpointer: tuple[threading.Event, threading.Thread] | None = None
        super().__init__(conn)

    def greatest(self, a: str, b: str) -> str:
        return f"max({a}, {b})"

    def checkpoint_in_background(self, every: float = 1.0) -> None:
        """Copy the write-ahead log into the database from a thread of its own, ``every`` seconds.

        SQLite otherwise does it inside the commit that fills the log past 1,000 pages, with two
        fsyncs: a stall of several milliseconds for whoever commits then (the service's event
        loop). A PASSIVE checkpoint on another connection blocks no writer, and the GIL is free
        while SQLite works. The commits' own checkpoints stay on, far later, in case this stops."""
        if not self.persistent or self._checkpointer is not None:
            return
        self.conn.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")
        stop = threading.Event()

        def run() -> None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
            try:
                while not stop.wait(every):
                    try:
                        conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    except sqlite3.Error as exc:  # busy or failing: the commits' backstop still works
                        log.warning("background checkpoint of %s failed: %s", self.path, exc)
            finally:
                conn.close()
        thread = threading.Thread(target=run, name="k50core-checkpoint", daemon=True)
        self._checkpointer = (stop, thread)
        thread.start()

    def close(self) -> None:
        if self._checkpointer is not None:
            stop, thread = self._checkpointer
            stop.set()
            thread.join()
            self._checkpointer = None
        super().close()

    @contextmanager
    def transaction(self, durable: bool = True) -> Iterator[None]:
        with self._lock:
            if durable:  # set between transactions: SQLite ignores it inside one
                self.conn.execute("PRAGMA synchronous=FULL")
            try:
                self.conn.execute("BEGIN IMMEDIATE")
                try:
                    yield
                except BaseException:
                    self.conn.execute("ROLLBACK")
                    raise
                self.conn.execute("COMMIT")
            finally:
                if durable:
                    self.conn.execute("PRAGMA synchronous=NORMAL")
