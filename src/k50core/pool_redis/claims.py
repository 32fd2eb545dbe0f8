"""New visitors' claims of one host, coalesced: the claims that arrive while a round trip is out
go together in the next one (one ``k50_claim_many`` per pool, which runs them one after the other,
in order of arrival, exactly as that many ``k50_claim`` calls would).

A group commit: the first claim finds nothing in flight and goes alone at once (no wait: a lone
claim costs one round trip, as without batching); claims arriving meanwhile queue; when the round
trip is back, the first of them sends the whole queue, and so on. So a claim waits for at most
the round trip in flight and its own. Every caller gets its own claim's reply (or the error that
stopped the round trip); nothing is shared between callers but the wire.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

BATCH_MAX = 128  # claims per k50_claim_many: short scripts, so Redis serves other hosts between them


class Waiting:
    """One caller's claim: (now, rule, holder, session, lookup) for pool ``ps``, then its reply."""
    __slots__ = ("ps", "item", "reply", "error", "done", "ready")

    def __init__(self, ps: Any, item: tuple[Any, ...]) -> None:
        self.ps, self.item = ps, item
        self.reply: Any = None
        self.error: BaseException | None = None
        self.done = False
        # made only when this claim has to wait: a lock held until its turn comes (cheaper than an Event)
        self.ready: Any = None


def claim_call(ps: Any, item: tuple[Any, ...]) -> tuple[str, Any, list[Any]]:
    """One claim as a ``k50_claim`` call."""
    now_ms, rule, holder, session, lookup = item
    return ("k50_claim", ps.keys, [now_ms, ps.hold_ms, ps.cooldown_ms, rule, holder, session, policy(ps), lookup])


def policy(ps: Any) -> str:
    return "share" if ps.pool.on_exhausted == "share" else "claim"


class Coalescer:
    """Sends claims through ``send`` (a list of FCALL calls -> their replies, in one round trip;
    raises when Redis did not answer), batching those that arrive while one is out."""

    def __init__(self, send: Callable[[list[tuple[Any, ...]]], list[Any]]) -> None:
        self._send = send
        self._lock = threading.Lock()
        self._queue: list[Waiting] = []
        self._sending = False
        self.round_trips = 0  # claim round trips sent
        self.claims = 0       # claims they carried

    def claim(self, ps: Any, item: tuple[Any, ...]) -> Any:
        """The ``k50_claim`` reply of this claim; raises what stopped its round trip."""
        me = Waiting(ps, item)
        with self._lock:
            leads = not self._sending
            if leads:
                self._sending = True
            else:
                me.ready = threading.Lock()
                me.ready.acquire()
                self._queue.append(me)
        if leads:
            batch = [me]
        else:
            me.ready.acquire()  # released when done, or when it is this claim's turn to send
            if not me.done:  # woken to send: the queue as it is now, this claim first
                with self._lock:
                    batch, self._queue = self._queue, []
        if not me.done:
            try:
                self._round_trip(batch)
            finally:
                with self._lock:
                    if self._queue:  # the next to send: it takes whatever queued meanwhile
                        self._queue[0].ready.release()
                    else:
                        self._sending = False
                for w in batch:
                    w.done = True
                    if w is not me:
                        w.ready.release()
        if me.error is not None:
            raise me.error
        return me.reply

    def _round_trip(self, batch: list[Waiting]) -> None:
        """One round trip for the batch: each pool's claims in one call, in order of arrival."""
        try:
            groups: list[list[Waiting]] = []
            by_pool: dict[int, list[Waiting]] = {}
            for w in batch:
                group = by_pool.get(w.ps.index)
                if group is None or len(group) >= BATCH_MAX:
                    group = by_pool[w.ps.index] = []
                    groups.append(group)
                group.append(w)
            calls: list[tuple[Any, ...]] = []
            for group in groups:
                if len(group) == 1:
                    calls.append(claim_call(group[0].ps, group[0].item))
                else:
                    ps = group[0].ps
                    args: list[Any] = [ps.hold_ms, ps.cooldown_ms, policy(ps)]
                    for w in group:
                        args += w.item
                    calls.append(("k50_claim_many", ps.keys, args))
            self.round_trips += 1
            self.claims += len(batch)
            replies = self._send(calls)
            for group, reply in zip(groups, replies):
                if len(group) == 1:
                    group[0].reply = reply
                else:
                    for w, one in zip(group, reply):
                        w.reply = one
        except BaseException as exc:  # Redis did not answer (or worse): every claim of the batch hears it
            for w in batch:
                w.error = exc
