"""Storage for visits, leases, calls and attributions: SQLite (default) or PostgreSQL."""
from __future__ import annotations

from .base import LeaseRow, Store, lease_key, migrations, row_of
from .sqlite import SQLiteStore


def open_store(target: str | Store) -> Store:
    """A store from a path (SQLite), ``sqlite:///path`` or ``postgresql://…``; a Store passes through."""
    if isinstance(target, Store):
        return target
    text = str(target)
    if text.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresStore
        return PostgresStore(text)
    if text.startswith("sqlite:///"):
        text = text[len("sqlite:///"):]
    return SQLiteStore(text)


__all__ = ["LeaseRow", "SQLiteStore", "Store", "lease_key", "migrations", "open_store", "row_of"]
