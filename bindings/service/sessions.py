"""The dashboard's sessions, kept in the store (table ``dashboard_sessions``, migration 0006) so
that every worker sees the same ones: signing out deletes the row (the cookie stops working in
every worker at once), a session ends when it has been idle too long or at its absolute expiry
(from sign-in), whichever comes first, and one signed in with a key the service no longer has is
refused and deleted. The cookie is a random id; the store
keeps its SHA-256 only, so reading the table opens no session. Called on the store's thread."""
from __future__ import annotations

import hashlib
import secrets
from collections.abc import Collection
from typing import Any

PREFIX = "s1."
MAX_COOKIE = 100
SLIDE_SECONDS = 60.0  # a used session's idle deadline moves when it would move by more than this (a
                      # write a minute at most, not one per request)


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode("ascii", "replace")).hexdigest()


def open_session(store: Any, key_id: str, now: float, seconds: float, idle: float) -> str:
    """A new session's cookie value, alive for ``idle`` seconds unless used (at most ``seconds`` in
    all); expired sessions are cleared on the way."""
    value = PREFIX + secrets.token_urlsafe(32)
    with store.transaction(durable=False):
        cur = store.conn.cursor()
        cur.execute(store._sql("DELETE FROM dashboard_sessions WHERE expires <= ?"), (now,))
        cur.execute(store._sql("INSERT INTO dashboard_sessions (id_hash, key_id, created, expires) "
                               "VALUES (?, ?, ?, ?)"), (_hash(value), key_id, now, now + min(idle, seconds)))
    return value


def session_key(store: Any, value: str | None, key_ids: Collection[str], now: float, seconds: float,
                idle: float) -> str | None:
    """The key id of the live session this cookie value opens, else None (a session of a key no
    longer served is deleted). Used, a session lives ``idle`` seconds more, never past ``seconds``
    from its sign-in (``expires`` is the earlier of the two deadlines)."""
    if not value or len(value) > MAX_COOKIE or not value.startswith(PREFIX):
        return None
    cur = store.conn.cursor()
    cur.execute(store._sql("SELECT key_id, created, expires FROM dashboard_sessions WHERE id_hash = ?"),
                (_hash(value),))
    row = cur.fetchone()
    if row is None or float(row[2]) <= now:
        return None
    if row[0] not in key_ids:
        close_session(store, value)
        return None
    moved = min(float(row[1]) + seconds, now + idle)
    if moved > float(row[2]) + SLIDE_SECONDS:
        with store.transaction(durable=False):
            cur = store.conn.cursor()  # only ever later: two workers moving it at once agree enough
            cur.execute(store._sql("UPDATE dashboard_sessions SET expires = ? WHERE id_hash = ? AND expires < ?"),
                        (moved, _hash(value), moved))
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
