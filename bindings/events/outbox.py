"""The outbox: every attributed call's events, written to the store, sent until delivered.

``enqueue`` writes one row per configured target (a webhook, GA4) keyed ``call_id:target`` —
the idempotency key the receiver sees on every retry — and ignores a row that exists, so a
call reported twice is sent once. ``deliver_due`` claims due rows one at a time (a conditional
UPDATE: several workers on one store never send a row at the same moment), sends it with no
lock held, and records the outcome: delivered, retried later with jittered exponential backoff,
or dead. ``catch_up`` writes the rows of calls attributed but never enqueued (the process died
in between), so with the store as the only state nothing is lost to a crash or a restart.

Delivery is at least once: a worker that dies after sending but before recording sends again
after its claim expires; receivers deduplicate by the Idempotency-Key header.
"""
from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any, NamedTuple
from urllib.parse import urlencode

from k50core.attribution import Attribution
from k50core.config.model import GA4, Events, Webhook
from k50core.store import Store

from ..telephony.signing import signed_headers
from . import payloads
from .sender import DEAD, DELIVERED, USER_AGENT, Reply, Send, backoff, error_text, http_send, retry_after, verdict

log = logging.getLogger("k50core.events")

GA4_TARGET = "ga4"
CLAIM_SECONDS = 30.0   # longer than a send can take (connect + read timeouts): then another worker may retry
_ROW = ("id", "target", "call_id", "url", "body", "attempts")
_CALL = ("call_id", "number", "caller", "started_at", "duration_seconds", "answered", "received_at")
_ATTRIBUTION = ("status", "lease", "visitor_id", "session_id", "pool", "rule", "likelihood", "repeat_of",
                "candidates", "attributes", "more_candidates")


class Entry(NamedTuple):
    """One claimed outbox row."""
    id: str
    target: str
    call_id: str
    url: str
    body: str
    attempts: int


class Dispatcher:
    """The outbox over ``store`` for the targets of ``events`` (``Config.events``).

    ``lock`` is the caller's lock around the store's connection (the HTTP service's): it is held
    for every store access here and never during network I/O — so do not call these methods
    while holding it. ``send`` replaces the HTTP sender (see ``sender.http_send``); ``now`` is the
    clock, and every method also takes ``now=`` for tests.
    """

    def __init__(self, store: Store, events: Events, *, now: Callable[[], float] = time.time,
                 lock: AbstractContextManager[Any] | None = None, send: Send | None = None,
                 timeout: float = 10.0, claim_seconds: float = CLAIM_SECONDS) -> None:
        self.store = store
        self.now = now
        self.lock: AbstractContextManager[Any] = lock if lock is not None else threading.Lock()
        self.send: Send = send or http_send
        self.timeout = float(timeout)
        self.claim_seconds = float(claim_seconds)
        self.configure(events)

    def configure(self, events: Events) -> None:
        """New targets (a config reload). Pending rows of a target no longer configured go dead
        when their turn comes; a renamed webhook is a new target."""
        self.events = events
        self.webhooks: dict[str, Webhook] = {w.name: w for w in events.webhooks}

    def _t(self, now: float | None) -> float:
        return float(self.now() if now is None else now)

    # -- writing ---------------------------------------------------------------------------------
    def enqueue(self, attribution: Attribution, now: float | None = None, *, held: bool = False) -> int:
        """Rows written for this call (one per matching target; 0 when they exist already). The call
        is read back from the store, so call this after ``Engine.attribute`` returned. ``held``: the
        caller holds ``lock`` already (e.g. attributes and enqueues in one locked step)."""
        if not self.events.configured:
            return 0
        t = self._t(now)
        with nullcontext() if held else self.lock:
            cur = self.store.conn.cursor()
            cur.execute(self.store._sql(f"SELECT {', '.join(_CALL)} FROM calls WHERE call_id = ?"),
                        (attribution.call_id,))
            row = cur.fetchone()
            if row is None:
                log.warning("call %s is not in the store: no events written", attribution.call_id)
                return 0
            return self._write([(dict(zip(_CALL, row)), attribution)], t)

    def catch_up(self, since: float, now: float | None = None, page: int = 500) -> int:
        """Rows written for calls received at or after ``since`` that have no outbox row at all:
        attributed just before a crash. Run at start-up (and now and then: it is idempotent)."""
        if not self.events.configured:
            return 0
        t = self._t(now)
        written, after = 0, (float(since), "")
        cols = ", ".join([f"c.{c}" for c in _CALL] + [f"a.{c}" for c in _ATTRIBUTION])
        sql = self.store._sql(
            f"SELECT {cols} FROM calls c JOIN attributions a ON a.call_id = c.call_id "
            "WHERE (c.received_at > ? OR (c.received_at = ? AND c.call_id > ?)) "
            "AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.call_id = c.call_id) "
            "ORDER BY c.received_at, c.call_id LIMIT ?")
        while True:
            with self.lock:
                cur = self.store.conn.cursor()
                cur.execute(sql, (after[0], after[0], after[1], int(page)))
                rows = cur.fetchall()
                found = []
                for r in rows:
                    call = dict(zip(_CALL, r[:len(_CALL)]))
                    stored = dict(zip(_ATTRIBUTION, r[len(_CALL):]), call_id=call["call_id"])
                    found.append((call, payloads.attribution_from_row(stored)))
                written += self._write(found, t)
            if len(rows) < page:
                return written
            last = rows[-1]
            after = (last[_CALL.index("received_at")], last[0])

    def _write(self, calls: list[tuple[dict[str, Any], Attribution]], t: float) -> int:
        """Insert the rows of these calls in one durable transaction (lock held by the caller)."""
        rows = [r for call, a in calls for r in self._rows(call, a)]
        if not rows:
            return 0
        n = 0
        with self.store.transaction(durable=True):
            cur = self.store.conn.cursor()
            for key, target, call_id, url, body in rows:
                cur.execute(self.store._sql(
                    "INSERT INTO outbox (id, target, call_id, url, body, attempts, next_at, status, created_at) "
                    "VALUES (?, ?, ?, ?, ?, 0, ?, 'pending', ?) ON CONFLICT (id) DO NOTHING"),
                    (key, target, call_id, url, body, t, t))
                n += max(cur.rowcount, 0)
        return n

    def _rows(self, call: dict[str, Any], a: Attribution) -> list[tuple[str, str, str, str, str]]:
        out = []
        for hook in self.events.webhooks:
            if a.status in hook.statuses:
                key = f"{a.call_id}:{hook.name}"
                out.append((key, hook.name, a.call_id, hook.url, payloads.dumps(payloads.call_event(call, a, key))))
        ga4 = self.events.ga4
        if ga4 is not None and a.status in ga4.statuses:
            body = payloads.ga4_event(call, a, ga4)
            if body is not None:
                out.append((f"{a.call_id}:{GA4_TARGET}", GA4_TARGET, a.call_id, ga4.endpoint, payloads.dumps(body)))
        return out

    # -- sending -----------------------------------------------------------------------------------
    def deliver_due(self, now: float | None = None, limit: int = 100,
                    stop: Callable[[], bool] | None = None) -> tuple[int, int]:
        """Send up to ``limit`` due rows: (delivered, failed). ``stop()`` true ends the batch early."""
        with self.lock:
            cur = self.store.conn.cursor()
            t = self._t(now)
            cur.execute(self.store._sql(
                "SELECT id FROM outbox WHERE status = 'pending' AND next_at <= ? "
                "AND (claimed_until IS NULL OR claimed_until < ?) ORDER BY next_at, id LIMIT ?"), (t, t, int(limit)))
            due = [r[0] for r in cur.fetchall()]
        delivered = failed = 0
        for key in due:
            if stop is not None and stop():
                break
            entry = self._claim(key, self._t(now))
            if entry is None:  # another worker has it, or delivered it meanwhile
                continue
            ok = self._attempt(entry, now)
            delivered += ok
            failed += not ok
        return delivered, failed

    def _claim(self, key: str, t: float) -> Entry | None:
        with self.lock, self.store.transaction(durable=False):
            cur = self.store.conn.cursor()
            cur.execute(self.store._sql(
                "UPDATE outbox SET claimed_until = ? WHERE id = ? AND status = 'pending' AND next_at <= ? "
                "AND (claimed_until IS NULL OR claimed_until < ?)"), (t + self.claim_seconds, key, t, t))
            if cur.rowcount != 1:
                return None
            cur.execute(self.store._sql(f"SELECT {', '.join(_ROW)} FROM outbox WHERE id = ?"), (key,))
            row = cur.fetchone()
        return Entry._make((*row[:5], int(row[5]))) if row else None

    def _attempt(self, e: Entry, now: float | None) -> bool:
        """Send one claimed row (no lock held) and record the outcome; True when delivered."""
        t = self._t(now)
        request = self._request(e, t)
        if request is None:
            self._record(e, DEAD, "target not configured", None, t)
            return False
        url, body, headers = request
        error: str | None = None
        try:
            reply = self.send(url, body, headers, self.timeout)
        except Exception as exc:  # the network, a bad URL: every failure is recorded, none escapes
            reply, error = None, error_text(exc)
        t = self._t(now)
        if reply is not None:
            error = None if 200 <= reply.status < 300 else f"HTTP {reply.status}"
            outcome = verdict(reply.status)
        else:
            outcome = "retry"
        self._record(e, outcome, error, reply, t)
        return outcome == DELIVERED

    def _request(self, e: Entry, t: float) -> tuple[str, bytes, dict[str, str]] | None:
        """URL, body and headers as sent now: secrets come from the current config, never the store."""
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        if e.target == GA4_TARGET:
            ga4: GA4 | None = self.events.ga4
            if ga4 is None:
                return None
            body = payloads.dumps(payloads.ga4_at_send(json.loads(e.body), t)).encode("utf-8")
            query = urlencode({"measurement_id": ga4.measurement_id, "api_secret": ga4.api_secret})
            return f"{ga4.endpoint}{'&' if '?' in ga4.endpoint else '?'}{query}", body, headers
        hook = self.webhooks.get(e.target)
        if hook is None:
            return None
        body = e.body.encode("utf-8")
        headers.update(signed_headers(hook.secret, body, timestamp=int(t)))
        headers["Idempotency-Key"] = e.id
        return hook.url, body, headers

    def _record(self, e: Entry, outcome: str, error: str | None, reply: Reply | None, t: float) -> None:
        attempts = e.attempts + 1
        retry = self.events.retry
        args: tuple[Any, ...]
        if outcome == DELIVERED:
            sql, args = ("UPDATE outbox SET status = 'delivered', attempts = ?, delivered_at = ?, last_error = NULL, "
                         "claimed_until = NULL WHERE id = ? AND status = 'pending'"), (attempts, t, e.id)
        else:
            if outcome != DEAD and attempts >= retry.max_attempts:
                outcome = DEAD
            wait = backoff(e.id, attempts, retry.base_seconds, retry.max_seconds)
            asked = retry_after(reply.retry_after, t) if reply is not None else None
            if asked is not None:  # a 429 or 503 saying when: honoured, within max_seconds
                wait = min(retry.max_seconds, max(wait, asked))
            status = "dead" if outcome == DEAD else "pending"
            sql, args = ("UPDATE outbox SET status = ?, attempts = ?, next_at = ?, last_error = ?, "
                         "claimed_until = NULL WHERE id = ? AND status = 'pending'"),\
                (status, attempts, t + wait, error, e.id)
            if outcome == DEAD:
                log.warning("event %s gave up after %d attempt(s): %s", e.id, attempts, error)
        with self.lock, self.store.transaction(durable=False):
            self.store.conn.cursor().execute(self.store._sql(sql), args)

    # -- running and watching ------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event, interval: float = 1.0, *, limit: int = 100,
                  catch_up_window: float = 7 * 86400.0, catch_up_every: float = 300.0,
                  catch_up_recent: float = 3600.0) -> None:
        """Deliver due rows every ``interval`` seconds (at once while a backlog lasts) until ``stop``
        is set. Catches up on calls received in the last ``catch_up_window`` seconds at start (the
        process may have been down a while), then every ``catch_up_every`` on the last
        ``catch_up_recent`` (a sibling worker that died mid-call). Store or network trouble is
        logged and retried, never raised."""
        next_catch_up, window = float("-inf"), catch_up_window
        while not stop.is_set():
            busy = False
            try:
                t = self._t(None)
                if t >= next_catch_up:
                    await asyncio.to_thread(self.catch_up, t - window)
                    next_catch_up, window = t + catch_up_every, catch_up_recent
                delivered, failed = await asyncio.to_thread(self.deliver_due, None, limit, stop.is_set)
                busy = delivered + failed >= limit
            except Exception:
                log.exception("event delivery failed; retrying in %s s", interval)
            if busy:
                await asyncio.sleep(0)
                continue
            try:
                await asyncio.wait_for(stop.wait(), timeout=interval)
            except asyncio.TimeoutError:
                pass

    def stats(self, now: float | None = None) -> dict[str, float]:
        """Rows by status (pending, delivered, dead) and the age of the oldest pending one, for /metrics."""
        t = self._t(now)
        with self.lock:
            cur = self.store.conn.cursor()
            cur.execute("SELECT status, count(*), min(created_at) FROM outbox GROUP BY status")
            rows = cur.fetchall()
        out: dict[str, float] = {"pending": 0, "delivered": 0, "dead": 0, "oldest_pending_seconds": 0.0}
        for status, count, oldest in rows:
            out[status] = int(count)
            if status == "pending" and oldest is not None:
                out["oldest_pending_seconds"] = max(0.0, t - float(oldest))
        return out

    def entries(self, call_id: str | None = None) -> list[dict[str, Any]]:
        """Outbox rows (of one call, or all), for inspection and tests."""
        cols = ("id", "target", "call_id", "url", "body", "attempts", "next_at", "status", "last_error",
                "created_at", "delivered_at", "claimed_until")
        where, args = ("WHERE call_id = ?", (call_id,)) if call_id is not None else ("", ())
        with self.lock:
            cur = self.store.conn.cursor()
            cur.execute(self.store._sql(f"SELECT {', '.join(cols)} FROM outbox {where} ORDER BY created_at, id"),
                        args)
            return [dict(zip(cols, r)) for r in cur.fetchall()]
