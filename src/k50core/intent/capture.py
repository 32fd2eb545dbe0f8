"""Capturing call intents: a tap on (or a click of) the shown number or its ``tel:`` link, or a copy
of its text, reported by the page the moment it happens (``Engine.intent``, ``POST /v1/intent``).

An intent renews its lease like a heartbeat (the page is open) and is stored with the lease and the
visitor who made it: on a number shared by several visitors, the one who tapped it seconds before
the call is almost surely the caller (see ``k50core.intent.signals``). It goes to the store at once
(one small row: intents are rare next to page views), so a restart keeps it.
"""
from __future__ import annotations

import logging
from typing import Any, NamedTuple

from ..enrich import clean_text
from ..store.base import Store, lease_key

log = logging.getLogger("k50core.intent")

KINDS = ("click", "copy")
TOKEN_MAX = 64  # what /v1/visit gives is 32 characters; a heartbeat takes up to 64 too


class IntentRow(NamedTuple):
    """One intent as stored: the lease it belongs to, the number shown, who made it, what and when."""
    lease: str
    number: str
    visitor_id: str | None
    kind: str
    at: float


def valid(token: Any, kind: Any) -> bool:
    """Whether a token and a kind are worth looking up at all (anything else is a reject)."""
    return isinstance(token, str) and 0 < len(token) <= TOKEN_MAX and kind in KINDS


def capture(pools: Any, token: Any, kind: Any, now: float, visitor: Any = None,
            time_first: bool = False) -> IntentRow | None:
    """The intent of a live lease's token, its lease renewed (as a heartbeat renews it); None for a
    token that is not alive (or not one at all) or a kind not in KINDS. Memory work only.

    ``pools`` is the engine's (in process or in Redis). ``visitor`` is who made it: on a shared
    number every visitor holds the same token, so the page says who it is; by default the holder.
    ``time_first``: the store's lease key format (``Store.time_first_keys``)."""
    if not valid(token, kind):
        return None
    got = pools.returning(None, token, int(now * 1000))  # by token alone: the visitor id takes nothing
    if got is None or got.number is None:
        return None
    held = pools.holder_of(got.number)
    if held is None:
        return None
    who = clean_text(visitor, 256) if isinstance(visitor, str) else None
    if who is not None and not who.isprintable():  # a NUL cannot go into PostgreSQL, a control into a report
        who = None
    return IntentRow(lease_key(held.pool, held.number, held.start, held.lease, time_first), held.number,
                     who or held.visitor_id, kind, now)


def save(store: Store, row: IntentRow) -> None:
    """One intent into the store (the write-ahead log of a SQLite file: a killed process keeps it)."""
    with store.transaction(durable=False):
        store.conn.cursor().execute(store._sql(
            "INSERT INTO intents (lease, number, visitor_id, kind, at) VALUES (?, ?, ?, ?, ?)"), tuple(row))


def record(engine: Any, token: Any, kind: Any, now: float, visitor: Any = None) -> bool:
    """``Engine.intent``: capture, then store. True when the lease was alive (its intent is kept;
    a store that fails is logged and the lease stays renewed: the page is never refused)."""
    row = capture(engine.pools, token, kind, now, visitor, engine.store.time_first_keys)
    if row is None:
        return False
    try:
        save(engine.store, row)
    except Exception as exc:  # the visitor's page is not the place to hear of it
        log.error("storing a call intent failed", exc_info=exc)
    return True


def intents_near(store: Store, number: str, since: float, until: float
                 ) -> dict[tuple[str, str | None], list[tuple[float, str]]]:
    """The intents made on ``number`` in [since, until], by (lease, visitor): [(at, kind)] oldest first."""
    cur = store.conn.cursor()
    cur.execute(store._sql("SELECT lease, visitor_id, at, kind FROM intents WHERE number = ? AND at >= ? AND at <= ? "
                           "ORDER BY at"), (number, since, until))
    out: dict[tuple[str, str | None], list[tuple[float, str]]] = {}
    for lease, visitor, at, kind in cur.fetchall():
        out.setdefault((lease, visitor), []).append((float(at), kind))
    return out


def stored_intents(store: Store, lease: str) -> list[IntentRow]:
    """Every intent kept with a lease, oldest first."""
    cur = store.conn.cursor()
    cur.execute(store._sql("SELECT lease, number, visitor_id, kind, at FROM intents WHERE lease = ? ORDER BY at"),
                (lease,))
    return [IntentRow(r[0], r[1], r[2], r[3], float(r[4])) for r in cur.fetchall()]
