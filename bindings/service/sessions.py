"""The dashboard's sessions, kept in the store (table ``dashboard_sessions``, migration 0006) so
that every worker sees the same ones: signing out deletes the row (the cookie stops working in
every worker at once), a session ends at its expiry (absolute, from sign-in), and one signed in
with a key the service no longer has is refused and deleted. The cookie is a random id; the store
keeps its SHA-256 only, so reading the table opens no session. Called on the store's thread."""
from __future__ import annotations

import hashlib
import secrets
from collections.abc import Collection
from typing import Any

PREFIX = "s1."
MAX_COOKIE = 100


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode("ascii", "replace")).hexdigest()


def open_session(store: Any, key_id: str, now: float, seconds: float) -> str:
    """A new session's cookie value; expired sessions are cleared on the way."""
    value = PREFIX + secrets.token_urlsafe(32)
    with store.transaction(durable=False):
        cur = store.conn.cursor()
        cur.execute(store._sql("DELETE FROM dashboard_sessions WHERE expires <= ?"), (now,))
        cur.execute(store._sql("INSERT INTO dashboard_sessions (id_hash, key_id, created, expires) "
                               "VALUES (?, ?, ?, ?)"), (_hash(value), key_id, now, now + seconds))
    return value


def session_key(store: Any, value: str | None, key_ids: Collection[str], now: float) -> str | None:
    """The key id of the live session this cookie value opens, else None (a session of a key no
    longer served is deleted)."""
    if not value or len(value) > MAX_COOKIE or not value.startswith(PREFIX):
        return None
    cur = store.conn.cursor()
    cur.execute(store._sql("SELECT key_id, expires FROM dashboard_sessions WHERE id_hash = ?"), (_hash(value),))
    row = cur.fetchone()
    if row is None or float(row[1]) <= now:
        return None
    if row[0] not in key_ids:
        close_session(store, value)
        return None
    return str(row[0])


def close_session(store: Any, value: str | None, everywhere: bool = False) -> int:
    """End the session of this cookie value (``everywhere``: every session of its key); how many ended."""
    if not value or len(value) > MAX_COOKIE:
        return 0
    with store.transaction(durable=False):
        cur = store.conn.cursor()
        if everywhere:
            cur.execute(store._sql("DELETE FROM dashboard_sessions WHERE key_id IN "
                                   "(SELECT key_id FROM dashboard_sessions WHERE id_hash = ?)"), (_hash(value),))
        else:
            cur.execute(store._sql("DELETE FROM dashboard_sessions WHERE id_hash = ?"), (_hash(value),))
        return int(cur.rowcount or 0)


def close_key(store: Any, key_id: str) -> int:
    """End every session signed in with this key."""
    with store.transaction(durable=False):
        cur = store.conn.cursor()
        cur.execute(store._sql("DELETE FROM dashboard_sessions WHERE key_id = ?"), (key_id,))
        return int(cur.rowcount or 0)
