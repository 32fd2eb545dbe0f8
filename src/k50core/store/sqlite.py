"""The default store: one SQLite file, write-ahead log, versioned migrations."""
from __future__ import annotations

import sqlite3
import threading
from contextlib import contextmanager
from typing import Iterator

from .base import Store


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
        super().__init__(conn)

    def greatest(self, a: str, b: str) -> str:
        return f"max({a}, {b})"

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
