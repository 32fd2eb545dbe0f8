"""New visitors' claims of one host, coalesced: the claims that arrive while a round trip is out
go together in the next one (one ``k50_claim_many`` per pool, which runs them one after the other,
in order of arrival, exactly as that many ``k50_claim`` calls would).

A group commit: the first claim finds nothing in flight and goes alone at once (no wait: a lone
claim costs one round trip, as without batching); claims arriving meanwhile queue; when the round
trip is back, the first of them sends the whole queue, and so on. So a claim waits for at most
the round trip in flight and its own. Every caller gets its own claim's reply (or the error that
stopped the round trip); nothing is shared between callers but the wire.

A caller that must not wait (an event loop) hands its claims to a ``Sender`` instead: one thread
sends them the same way, those that arrived while its round trip was out together in the next,
and tells each caller when its reply is in.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from queue import Empty, SimpleQueue
from typing import Any

from .._engine_py.pool import HOLDER_MAX, SESSION_MAX
from ..errors import ConfigError
from ..pools import Assignment, LeaseEvent, _field
from .leases import Unavailable, _PoolKeys, log

BATCH_MAX = 128  # claims per k50_claim_many: short scripts, so Redis serves other hosts between them
SENDER_MAX = 4 * BATCH_MAX  # claims a Sender takes into one round trip


class Waiting:
    """One caller's claim: (now, rule, holder, session, lookup) for pool ``ps``, then its reply."""
    __slots__ = ("ps", "item", "reply", "error", "done", "ready", "then")

    def __init__(self, ps: Any, item: tuple[Any, ...]) -> None:
        self.ps, self.item = ps, item
        self.reply: Any = None
        self.error: BaseException | None = None
        self.done = False
        # made only when this claim has to wait: a lock held until its turn comes (cheaper than an Event)
        self.ready: Any = None
        self.then: Callable[[Any], None] | None = None  # a Sender's caller: told when the reply is in


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
                self.send_batch(batch)
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

    def send_batch(self, batch: list[Waiting]) -> None:
        """One round trip for the batch: each pool's claims in one call, in order of arrival; each
        claim's reply (or the error that stopped the round trip) left in it."""
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


class Sender:
    """Claims handed over by a caller that must not wait: ``submit(w)`` returns at once; one thread
    sends the claims through ``coalescer.send_batch`` (those that arrived while its round trip was out
    together in the next), runs ``after(batch)`` (replies that need more round trips), then calls
    each claim's ``then(w)`` on that thread. ``Find`` looks go the same way, through ``finds(looks)``.
    The thread starts with the first claim."""

    def __init__(self, coalescer: Coalescer, after: Callable[[list[Any]], None],
                 finds: Callable[[list[Any]], None], name: str = "k50core-claims") -> None:
        self._coalescer = coalescer
        self._after = after
        self._finds = finds
        self._name = name
        self._queue: SimpleQueue[Any] = SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, w: Any) -> None:
        """A Waiting claim or a Find look, sent by the thread."""
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                    self._thread.start()
        self._queue.put(w)

    def close(self) -> None:
        """The thread ends once the claims submitted before this are sent."""
        if self._thread is not None:
            self._queue.put(None)

    def _run(self) -> None:
        get, take = self._queue.get, self._queue.get_nowait
        stop = False
        while not stop:
            first = get()
            if first is None:
                return
            batch = [first]
            while len(batch) < SENDER_MAX:
                try:
                    w = take()
                except Empty:
                    break
                if w is None:
                    stop = True
                    break
                batch.append(w)
            claims = [w for w in batch if type(w) is not Find]
            looks = [w for w in batch if type(w) is Find] if len(claims) < len(batch) else []
            try:
                if claims:
                    self._coalescer.send_batch(claims)
                    self._after(claims)
                if looks:
                    self._finds(looks)
            except BaseException as exc:  # never let the thread die: these claims hear it
                for w in batch:
                    if w.error is None:
                        w.error = exc
            for w in batch:
                w.done = True
                try:
                    w.then(w)
                except Exception:  # a caller gone (its loop closed): nothing to tell
                    pass


class Claim(Waiting):
    """A new visitor's claim on its way (see ``RedisPools.claim_soon``): the pool, the call's items,
    then its reply or error."""
    __slots__ = ("visitor", "session", "now_ms")

    def __init__(self, ps: _PoolKeys, item: tuple[Any, ...], visitor: str | None, session: str | None,
                 now_ms: int) -> None:
        super().__init__(ps, item)
        self.visitor, self.session, self.now_ms = visitor, session, now_ms


class Find:
    """A look for a visitor's live lease in every pool, handed to the claims' thread (``find_soon``)."""
    __slots__ = ("visitor", "now_ms", "order", "error", "done", "then")

    def __init__(self, visitor: str, now_ms: int, order: list[_PoolKeys]) -> None:
        self.visitor, self.now_ms, self.order = visitor, now_ms, order
        self.error: BaseException | None = None
        self.done = False
        self.then: Callable[[Any], None] | None = None


class FindFirst(Exception):
    """Raised instead of a round trip on a thread that must not wait (``finding_first``): look for
    this visitor's lease elsewhere (``find_soon``), then take the visit's steps again."""

    def __init__(self, visitor: str, now_ms: int) -> None:
        super().__init__(visitor, now_ms)
        self.visitor, self.now_ms = visitor, now_ms


class NewVisitorClaims:
    """New visitors' claims, made here or handed to the claims' thread (a part of ``RedisPools``)."""
    by_name: dict[str, _PoolKeys]
    _claims: Coalescer
    _sender: Sender
    _state: Any
    _down_until: float
    _configured: Any
    _reassert_later: list[_PoolKeys]
    _replaced: LeaseEvent | None
    _fresh_state: LeaseEvent | None
    _pipeline: Any
    _reassert: Any
    _claimed: Any
    configure: Any
    _mine: Any
    _found: dict[tuple[str, int], tuple[list[_PoolKeys], list[Any] | None]]
    _find_calls: Any

    def finding_first(self, on: bool) -> None:
        """On this thread, a look for a visitor's lease another host made raises FindFirst instead
        of making its round trip (while ``on``)."""
        self._mine.no_wait = on

    def find_soon(self, visitor: str, now_ms: int, then: Callable[[Find], None]) -> Find:
        """The look FindFirst asked for, on the claims' thread (with others waiting, one round trip);
        ``then(find)`` once it is back, and the next late_return(visitor, now_ms) uses it. While Redis
        is marked down: done at once (no lease found), no ``then``."""
        look = Find(visitor, now_ms, list(self.by_name.values()))
        if time.monotonic() < self._down_until:
            self._keep_found(look, None)
            look.done = True
            return look
        look.then = then
        self._sender.submit(look)
        return look

    def find_now(self, visitor: str, now_ms: int) -> None:
        """find_soon's look on this thread (a caller that holds no lock while it is out)."""
        self._send_finds([Find(visitor, now_ms, list(self.by_name.values()))])

    def _send_finds(self, looks: list[Find]) -> None:
        calls: list[tuple[Any, ...]] = []
        for look in looks:
            calls += self._find_calls(look.visitor, look.now_ms, look.order)
        try:
            replies = self._pipeline(calls)
        except Unavailable:
            for look in looks:
                self._keep_found(look, None)
            return
        at = 0
        for look in looks:
            self._keep_found(look, replies[at:at + len(look.order)])
            at += len(look.order)
        try:
            self._reassert(max(look.now_ms for look in looks))
        except Unavailable:
            pass

    def _keep_found(self, look: Find, replies: list[Any] | None) -> None:
        if len(self._found) > 10_000:  # looks whose visits never came back for them
            self._found.clear()
        self._found[(look.visitor, look.now_ms)] = (look.order, replies)

    def lease(self, pool_name: str, rule: int, visitor: str | None, session: str | None,
              now_ms: int) -> tuple[Assignment | None, LeaseEvent | None]:
        """A new visitor: their live lease in this pool, else a claim, else (policy share) a join;
        one round trip, shared with the claims of other threads of this host that arrive while one is
        out (``claims.Coalescer``). (None, None) when the pool is exhausted or Redis unreachable."""
        return self.claimed(self.claim_now(pool_name, rule, visitor, session, now_ms))

    def claim_now(self, pool_name: str, rule: int, visitor: str | None, session: str | None,
                  now_ms: int) -> Claim:
        """lease()'s round trip, on this thread (coalesced with other threads' claims); ``claimed``
        makes its outcome. Takes none of the host's memory of leases: a caller may hold no lock."""
        claim = self._claim_of(pool_name, rule, visitor, session, now_ms)
        try:
            claim.reply = self._claims.claim(claim.ps, claim.item)
        except BaseException as exc:
            claim.error = exc
        self._finish_claims([claim])
        return claim

    def claim_soon(self, pool_name: str, rule: int, visitor: str | None, session: str | None, now_ms: int,
                   then: Callable[[Claim], None]) -> Claim:
        """lease()'s round trip without waiting for it (an event loop's): the claim goes with the
        others waiting, on the claims' thread (``claims.Sender``), which calls ``then(claim)`` once its
        reply is in; ``claimed`` makes its outcome. While Redis is marked down: failed at once, no
        ``then``, nothing sent (``claim.done``)."""
        claim = self._claim_of(pool_name, rule, visitor, session, now_ms)
        if time.monotonic() < self._down_until:
            claim.error, claim.done = Unavailable(), True
            return claim
        claim.then = then
        self._sender.submit(claim)
        return claim

    def claimed(self, claim: Claim) -> tuple[Assignment | None, LeaseEvent | None]:
        """A claim's outcome, on the caller's thread (the one that holds the engine's memory): the
        visitor's assignment and the lease event to log; (None, None) when the pool is exhausted or
        Redis did not answer."""
        self._replaced = self._fresh_state = None
        if claim.error is not None:
            if isinstance(claim.error, (Unavailable, ConfigError)):
                return None, None
            raise claim.error
        with self._state:
            return self._claimed(claim.ps, claim.reply, claim.visitor, claim.session, claim.now_ms)

    def _claim_of(self, pool_name: str, rule: int, visitor: str | None, session: str | None,
                  now_ms: int) -> Claim:
        holder = _field(visitor, HOLDER_MAX).decode("utf-8", "replace")
        sess = _field(session, SESSION_MAX).decode("utf-8", "replace")
        return Claim(self.by_name[pool_name], (now_ms, rule, holder, sess, "1" if holder else "0"),
                     visitor, session, now_ms)

    def _finish_claims(self, claims: list[Claim]) -> None:
        """After a claims' round trip, on its thread: a pool Redis lost is set up again and its claims
        made anew; leases to re-assert after a restart are. Touches no lease a reply names."""
        latest = None
        for claim in claims:
            if claim.error is not None:
                continue
            latest = claim.now_ms if latest is None else max(latest, claim.now_ms)
            if claim.reply[0] == b"unset":  # Redis lost the pool (a restart without its data): set up again
                name = claim.ps.pool.name
                try:
                    with self._state:
                        if self.by_name[name] is claim.ps:  # not yet set up again by another claim
                            log.warning("pool %s missing from Redis: setting it up again", name)
                            self.configure(self._configured[0], claim.now_ms, lost=True)
                    claim.ps = self.by_name[name]
                    claim.reply = self._pipeline([claim_call(claim.ps, claim.item)])[-1]
                except (Unavailable, ConfigError, KeyError) as exc:
                    claim.error = exc if not isinstance(exc, KeyError) else Unavailable()
        if latest is not None and self._reassert_later:
            try:
                self._reassert(latest)
            except Unavailable:  # the claims stand; the next round trip's reply tells again
                pass
