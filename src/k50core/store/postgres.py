"""PostgreSQL through psycopg 3: the same schema and behaviour as SQLite, for several hosts."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..errors import StoreError
from .base import Store


class PostgresStore(Store):
    """``PostgresStore("postgresql://user@host/db")``. Commits are durable (PostgreSQL's default
    ``synchronous_commit=on``); the schema is migrated on open, under an advisory lock so that
    several workers starting at once migrate it once."""

    backend = "postgresql"
    param = "%s"

    def __init__(self, dsn: str) -> None:
        try:
            import psycopg
        except ImportError as exc:  # an optional dependency
            raise StoreError("PostgreSQL storage needs psycopg: pip install 'k50core[postgres]'") from exc
        self.dsn = dsn
        self._lock = threading.RLock()
        conn = psycopg.connect(dsn, autocommit=True)
        conn.execute("SELECT pg_advisory_lock(5050)")
        try:
            super().__init__(conn)
        finally:
            conn.execute("SELECT pg_advisory_unlock(5050)")

    def greatest(self, a: str, b: str) -> str:
        return f"GREATEST({a}, {b})"

    @contextmanager
    def transaction(self, durable: bool = True) -> Iterator[Any]:
        with self._lock, self.conn.transaction():
            if not durable:  # the lease log: the server keeps it even if this process dies
                self.conn.execute("SET LOCAL synchronous_commit = off")
            yield
