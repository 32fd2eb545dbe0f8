"""Number pools shared by many hosts through Redis, behind the interface ``Pools`` gives the engine.

Each state change of a pool is one server-side function (``pool.lua``) over the pool's keys,
which share one hash tag. A host keeps the leases it handed out or renewed (``leases.Lease``):
a returning visitor whose lease Redis has confirmed alive well past now is answered here, and
renewals reach Redis coalesced, one write per lease per window, pipelined with whatever the host
sends next (or by a background flusher). A new visitor costs one round trip (their live lease if
they have one, else a claim, else a share, in one function).

Why answering locally is safe: a host answers from memory only while the lease's end as Redis
last confirmed it (``cu``) is more than a margin away, and Redis gives a number to another visitor
no sooner than that end plus the cooldown; the renewals made meanwhile go to Redis within the
window, before the margin runs out.
"""
from __future__ import annotations

import hashlib
import itertools
import os
import struct
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from types import ModuleType
from typing import Any

import redis
from redis.exceptions import ClusterDownError, ConnectionError as RedisConnectionError, TimeoutError as RedisTimeout

from .. import _impl
from .._engine_py.pool import HOLDER_MAX
from ..clock import milliseconds
from ..config.model import Pool
from ..config.phones import display as format_number
from ..errors import ConfigError
from ..pools import Assignment, LeaseEvent, _field, number_key, parse_token_text
from .claims import Coalescer, FindFirst, NewVisitorClaims, Sender
from .client import connect, load_library, pool_keys, registry_key
from .leases import LEASED, MARGIN_MS, Lease, Unavailable, _fields, _PoolKeys, _records, _redacted, _start_flusher, log
from .log import LeaseLog

WINDOW_MS = 250       # a lease's renewals within this long are one write
RENEW_CHUNK = 200     # leases per k50_renew call
RETRY_AFTER_S = 0.5   # after a failed round trip, visitors get the default at once for this long
_DOWN = (RedisConnectionError, RedisTimeout, ClusterDownError)
_new_assignment, _Assignment = tuple.__new__, Assignment
_TAG_FIELDS = struct.Struct("<QQQ").pack  # a token's slot, pool << 32 | gen, start: the tag's message


class RedisPools(LeaseLog, NewVisitorClaims):
    """The engine's pools in Redis (see the module's doc); same methods as ``k50core.pools.Pools``."""

    def __init__(self, url: str, pools: Mapping[str, Pool], rule_names: Sequence[str], *,
                 lease_sink: Callable[[list[LeaseEvent]], None] | None = None, sink_batch: int = 1024,
                 checkpoint_ms: int = 30_000, now_ms: int, flusher: bool = True,
                 core: ModuleType | None = None) -> None:
        # the core's leases and returning visitors' path (compiled or reference: see k50core._impl)
        self.core = core if core is not None else _impl.core
        self._new_lease = self.core.RedisLease
        try:
            self.admin, options = connect(url, timeout=30.0)  # set-up (many numbers, the library): no visitor waits
            self.redis = connect(url, load=False)[0]  # a visitor's round trips: the URL's short timeout
        except (redis.RedisError, OSError) as exc:
            raise ConfigError([("state_url", f"Redis at {_redacted(url)} did not answer: {exc}")]) from None
        self.namespace = options["namespace"]
        self.timeout = options["timeout"]
        self.rule_names = list(rule_names)
        self._io = threading.RLock()
        self._dirty_lock = threading.Lock()
        self._dirty: dict[tuple[int, int], Lease] = {}
        self._marked: dict[tuple[int, int], _PoolKeys] = {}  # renewed since the last checkpoint
        self._leases: dict[tuple[int, int], Lease] = {}     # (pool id, slot) -> the lease this host knows
        self._visitors: dict[str, tuple[Lease, bool]] = {}  # visitor -> (lease, joined)
        self._joiner_seen: dict[str, int] = {}
        self._superseded: list[LeaseEvent] = []
        self._mine = threading.local()  # what the last lease() of each thread left for the engine to read
        self._state = threading.RLock()  # the host's memory of leases, while threads claim at once
        self._claims = Coalescer(self._send_claims)
        self._sender = Sender(self._claims, self._finish_claims, self._send_finds)  # callers that must not wait
        self._found: dict[tuple[str, int], tuple[list[_PoolKeys], list[Any] | None]] = {}  # finds made for them
        self._defaults: dict[str, int] = {}
        self._defaults_lock = threading.Lock()  # counted on the caller's thread, sent on a claim's
        self._epochs: dict[str, int] = {}
        self._reassert_later: list[_PoolKeys] = []  # pools whose epoch changed: live leases to re-assert
        self._log: list[LeaseEvent] = []
        self._sink = lease_sink
        self._sink_batch = sink_batch
        self._checkpoint_ms = checkpoint_ms
        self._checkpoint_due: int | None = None
        self._checkpoint_floor = 0
        self.window = self.core.RedisWindow()  # the renewals' write window, and renewals answered here
        self._down_until = 0.0
        self._last_stats: dict[str, dict[str, int]] = {}
        self.closed = False
        self.window_ms = WINDOW_MS
        # the flusher thread alone writes the renewals (every window): a caller on an event loop
        # never waits for that round trip (a renewal near Redis's end is written by its visit)
        self.flush_in_background = False
        self._flusher = flusher
        self.unreachable = 0       # round trips that failed (visitors then got the default)
        self.epoch_changes = 0     # restarts of Redis this host saw (its live leases re-asserted)
        self.table = self          # the engine reads .table.renewed and .table.index_overflowed()
        self.by_name: dict[str, _PoolKeys] = {}
        self.by_index: dict[int, _PoolKeys] = {}
        self._slot_of: dict[str, tuple[_PoolKeys, int]] = {}
        self.configure(pools, now_ms)
        if flusher:
            _start_flusher(self)

    @property
    def renewed(self) -> int:
        """Renewals answered by this host."""
        return int(self.window.renewed)

    @property
    def _replaced(self) -> LeaseEvent | None:
        return getattr(self._mine, "replaced", None)

    @_replaced.setter
    def _replaced(self, e: LeaseEvent | None) -> None:
        self._mine.replaced = e

    @property
    def _fresh_state(self) -> LeaseEvent | None:
        return getattr(self._mine, "fresh", None)

    @_fresh_state.setter
    def _fresh_state(self, e: LeaseEvent | None) -> None:
        self._mine.fresh = e

    # -- Redis round trips ---------------------------------------------------------
    def _pipeline(self, calls: list[tuple[Any, ...]], client: Any = None, carry: int | None = RENEW_CHUNK,
                  include: Lease | None = None) -> list[Any]:
        """FCALLs in one round trip, after (up to ``carry``) renewals waiting; Unavailable if Redis
        does not answer. No lock around the I/O: each thread has its own connection, and each waiting
        renewal is taken by one round trip only."""
        if time.monotonic() < self._down_until:
            raise Unavailable()
        renewals = self._take_renewals(carry, include)
        sent = [r[:3] for r in renewals] + list(calls)
        try:
            try:
                out = self._send(sent, client)
            except redis.ResponseError as exc:
                if "function not found" not in str(exc).lower():
                    raise
                # a server that came back without its data has no library either: load it, once
                load_library(self.admin, self.admin.__class__.__name__ == "RedisCluster")
                out = self._send(sent, client)
        except _DOWN as exc:
            self._failed(exc, renewals)
            raise Unavailable() from exc
        except redis.RedisError as exc:  # a script error, BUSY, …: the visitor still gets an answer
            if not ("LOADING" in str(exc) or "function not found" in str(exc).lower()):
                log.error("Redis refused a pool call", exc_info=exc)
            self._failed(exc, renewals)
            raise Unavailable() from exc
        for (_fn, _keys, _args, ps, leases), reply in zip(renewals, out):
            self._renewals_done(ps, leases, reply)
        return out[len(renewals):]

    def _send(self, sent: list[tuple[Any, ...]], client: Any) -> list[Any]:
        if len(sent) == 1:  # a new visitor's claim alone: no pipeline to build
            fn, keys, args = sent[0]
            return [(client or self.redis).execute_command("FCALL", fn, len(keys), *keys, *args)]
        pipe = (client or self.redis).pipeline(transaction=False)
        for fn, keys, args in sent:
            pipe.execute_command("FCALL", fn, len(keys), *keys, *args)
        return pipe.execute(raise_on_error=True)

    def _failed(self, exc: Exception, renewals: list[tuple[Any, ...]]) -> None:
        self.unreachable += 1
        self._down_until = time.monotonic() + RETRY_AFTER_S
        log.warning("Redis unreachable (%s): default numbers for new visitors", exc)
        for *_, leases in renewals:  # written again with the next round trip
            for lease, first, last in leases:
                self._mark_dirty(lease, first, last)

    @property
    def healthy(self) -> bool:
        return time.monotonic() >= self._down_until

    def health(self) -> str:
        """"ok", or "degraded" while Redis is unreachable (visitors get default numbers)."""
        if not self.healthy:
            return "degraded"
        try:
            self.redis.ping()
            return "ok"
        except Exception as exc:
            self._failed(exc, [])
            return "degraded"

    # -- renewals waiting for Redis -------------------------------------------------------
    def _mark_dirty(self, lease: Lease, first: int, last: int) -> None:
        with self._dirty_lock:
            if not lease.first or first < lease.first:
                lease.first = first
            lease.last = max(lease.last, last)
            self._dirty[(lease.ps.index, lease.slot)] = lease

    def _take_renewals(self, limit: int | None = None, include: Lease | None = None) -> list[tuple[Any, ...]]:
        """The waiting renewals (at most ``limit`` leases, ``include`` among them) as k50_renew calls:
        (fn, keys, args, pool, [(lease, first, last)])."""
        if not self._dirty:
            return []
        with self._dirty_lock:
            if limit is None or len(self._dirty) <= limit:
                chosen, self._dirty = list(self._dirty.values()), {}
            else:  # a visitor's round trip carries a few; the flusher writes the rest
                first = [self._dirty.pop(include.key)] if include is not None and include.key in self._dirty else []
                chosen = first + [self._dirty.pop(k) for k in list(itertools.islice(self._dirty, limit))]
            taken = []
            for lease in chosen:
                taken.append((lease, lease.first, lease.last))
                lease.first = 0
        by_pool: dict[int, list[tuple[Lease, int, int]]] = {}
        for item in taken:
            if not item[0].gone:
                by_pool.setdefault(item[0].ps.index, []).append(item)
        out = []
        for _index, all_items in by_pool.items():
            ps = all_items[0][0].ps
            for at in range(0, len(all_items), RENEW_CHUNK):  # short scripts: Redis serves others between them
                items = all_items[at:at + RENEW_CHUNK]
                args: list[Any] = [max(i[2] for i in items), ps.hold_ms, ps.cooldown_ms]
                for lease, first_ms, last_ms in items:
                    args += [lease.slot, lease.gen, first_ms, last_ms, lease.lu]
                out.append(("k50_renew", ps.keys, args, ps, items))
        return out

    def _renewals_done(self, ps: _PoolKeys, items: list[tuple[Lease, int, int]], reply: list[Any]) -> None:
        changed = self._saw_epoch(ps, reply[0])
        for k, (lease, _first, _last) in enumerate(items):
            until, shared = int(reply[1 + 2 * k]), int(reply[2 + 2 * k])
            if until:
                lease.cu = max(lease.cu, until)
                if bool(shared) != lease.made.shared:
                    lease.made = lease.made._replace(shared=bool(shared))
            elif not changed:
                self._forget(lease)

    def flush(self) -> None:
        """Write the waiting renewals now (the flusher calls this every window)."""
        if self._dirty:
            try:  # the long-timeout client: no visitor waits for this one
                self._pipeline([], self.admin, carry=None)
            except Unavailable:
                pass

    def _saw_epoch(self, ps: _PoolKeys, epoch: Any) -> bool:
        """A reply's epoch: a new one (Redis restarted) makes this host re-assert its live leases."""
        epoch = int(epoch)
        known = self._epochs.get(ps.pool.name)
        self._epochs[ps.pool.name] = epoch
        if known is None or known == epoch:
            return False
        self.epoch_changes += 1
        self._reassert_later.append(ps)
        return True

    def _reassert(self, now_ms: int) -> None:
        while self._reassert_later:
            ps = self._reassert_later.pop()
            live = [le for le in list(self._leases.values()) if le.ps is ps and not le.gone and le.lu > now_ms]
            if not live:
                continue
            args: list[Any] = [now_ms, ps.hold_ms, ps.cooldown_ms]
            for le in live:
                m = le.made
                args += [le.slot, le.gen, le.start, le.lu, max(le.last, le.start), int(m.shared),
                         self._rule_index(m.rule), le.holder, ""]
            reply = self._pipeline([("k50_assert", ps.keys, args)])[0]
            for le, ok in zip(live, reply[1:]):
                if int(ok):
                    le.cu = le.lu
                else:
                    self._forget(le)

    def _rule_index(self, name: str | None) -> int:
        try:
            return self.rule_names.index(name)  # type: ignore[arg-type]
        except ValueError:
            return 0

    # -- set-up and reload -------------------------------------------------------------
    def configure(self, pools: Mapping[str, Pool], now_ms: int, lost: bool = False) -> None:
        """Register pools and numbers, retire numbers no longer configured (their live leases end
        now, logged as "end"); live leases of numbers that stay are untouched. ``lost``: Redis lost the
        pools (this host had set them up): their numbers wait hold + cooldown, as after a restart, since
        leases this or another host still honours may name them."""
        self._configured = (pools, self.rule_names)
        dynamic = [p for p in pools.values() if p.type == "dynamic"]
        for p in dynamic:
            if any(c in p.name for c in "{}"):
                raise ConfigError([(f"pools.{p.name}", "a pool kept in Redis needs a name without braces")])
        reg = registry_key(self.namespace)
        names = [f"p:{p.name}" for p in dynamic]
        numbers = [f"n:+{number_key(n)}" for p in dynamic for n in p.numbers]
        try:
            with self._io:
                reply = self.admin.execute_command("FCALL", "k50_register", 1, reg, os.urandom(16).hex(), *names,
                                                   *numbers)
                known = [k.decode() for k in self.admin.hkeys(reg) if k.startswith(b"p:")]
        except redis.RedisError as exc:
            raise ConfigError([("state_url", f"Redis did not answer: {exc}")]) from None
        self.set_tag_key(bytes.fromhex(reply[0].decode()))
        ids = [int(x) for x in reply[1:]]
        pool_ids, slot_ids = ids[:len(names)], ids[len(names):]
        if any(i > 255 for i in pool_ids):
            raise ConfigError([("pools", "more than 256 pools registered in this Redis namespace")])
        by_name: dict[str, _PoolKeys] = {}
        at = 0
        for p, index in zip(dynamic, pool_ids):
            slots = {}
            for n in p.numbers:
                slots[slot_ids[at]] = f"+{number_key(n)}"
                at += 1
            by_name[p.name] = _PoolKeys(index, p, pool_keys(self.namespace, p.name), p.hold_seconds * 1000,
                                        p.cooldown_seconds * 1000, {n: format_number(n, p.display) for n in p.numbers},
                                        slots)
        calls = []
        for ps in by_name.values():
            args: list[Any] = [now_ms, ps.cooldown_ms, ps.index, now_ms + ps.hold_ms + ps.cooldown_ms if lost else 0]
            for slot, number in ps.slots.items():
                args += [slot, number]
            calls.append(("k50_setup", ps.keys, args))
        gone = [name[2:] for name in known if name[2:] not in by_name]
        for name in gone:  # a pool the config no longer has: all its numbers retire
            calls.append(("k50_setup", pool_keys(self.namespace, name), [now_ms, 0, 0, 0]))
        old = self.by_name
        with self._io:
            replies = self._pipeline_now(calls)
        cut: list[LeaseEvent] = []
        for (_fn, keys, _args), reply in zip(calls, replies):
            owner = next((p for p in by_name.values() if p.keys == keys), None)
            name = owner.pool.name if owner else keys[0].decode().split(":", 1)[1].split("}", 1)[0]
            for slot, rec in _records(reply):
                cut.append(self._event("end", name, slot, rec, last=now_ms))
                for le in [le for le in list(self._leases.values()) if le.slot == slot]:
                    self._forget(le)
        self.by_name = by_name
        self.by_index = {p.index: p for p in by_name.values()}
        self._slot_of = {number: (ps, slot) for ps in by_name.values() for slot, number in ps.slots.items()}
        for le in list(self._leases.values()):  # a changed hold applies to the leases kept here too
            now_ps = self.by_name.get(le.ps.pool.name)
            if now_ps is None or le.slot not in now_ps.slots:
                self._forget(le)
            else:
                le.ps = now_ps
        for e in cut:
            self._logged(e)
        del old

    def _pipeline_now(self, calls: list[tuple[Any, ...]]) -> list[Any]:
        """Set-up round trips: Redis must answer (an error names the state URL's server)."""
        self._down_until = 0.0
        try:
            return self._pipeline(calls, self.admin)
        except Unavailable as exc:
            raise ConfigError([("state_url", f"Redis did not answer: {exc.__cause__}")]) from None

    # -- assignment --------------------------------------------------------------------
    def _send_claims(self, calls: list[tuple[Any, ...]]) -> list[Any]:
        """The coalescer's round trip: the defaults counted meanwhile ride along."""
        counted = self._counted_defaults()
        return self._pipeline(counted + calls)[len(counted):]

    def _claimed(self, ps: _PoolKeys, reply: Sequence[Any], visitor: str | None, session: str | None,
                 now_ms: int) -> tuple[Assignment | None, LeaseEvent | None]:
        """A claim's reply: the visitor's assignment and the lease event to log."""
        status = reply[0].decode()
        self._saw_epoch(ps, reply[1])
        if status == "none":
            return None, None
        slot, rec = int(reply[2]), reply[3:14]
        gen, shared, until, number, rule_i, start, last, rholder, rsess = _fields(rec)
        lease_id = f"{slot}.{gen}"
        if len(reply) > 14:  # the lease this claim replaced, as it ended
            self._replaced = self._event("renew", ps.pool.name, slot, reply[14:25])
            self._superseded.append(self._replaced)
        made = self._adopt(ps, slot, gen, start, until, bool(shared), rule_i, rholder, visitor, last)
        if status == "back":
            return made, None
        if status == "claim":
            started = LeaseEvent("start", ps.pool.name, number, rholder or None, rsess or None,
                                 self._rule_name(rule_i), now_ms / 1000.0, now_ms / 1000.0, until / 1000.0, False,
                                 lease_id)
            self._logged(started)
            return made, started
        joined = LeaseEvent("share", ps.pool.name, number, visitor if status == "join" else (rholder or None),
                            (session if status == "join" else rsess) or None, self._rule_name(rule_i),
                            start / 1000.0, now_ms / 1000.0, until / 1000.0, True, lease_id)
        self._fresh_state = self._event("state", ps.pool.name, slot, rec)
        self._logged(joined)
        return made, joined

    def share(self, pool_name: str, rule: int, visitor: str | None, session: str | None,
              now_ms: int) -> tuple[Assignment | None, LeaseEvent | None]:
        """Nothing more to do: lease() has shared already, in the same round trip, when it could."""
        return None, None

    def replaced_by_last_claim(self) -> LeaseEvent | None:
        return self._replaced

    def count_default(self, pool_name: str) -> None:
        """Counted here, written to Redis with the next round trip."""
        with self._defaults_lock:
            self._defaults[pool_name] = self._defaults.get(pool_name, 0) + 1

    def _counted_defaults(self) -> list[tuple[Any, ...]]:
        if not self._defaults:
            return []
        with self._defaults_lock:
            counted, self._defaults = self._defaults, {}
        return [("k50_defaults", self.by_name[name].keys, [n]) for name, n in counted.items() if name in self.by_name]

    def _adopt(self, ps: _PoolKeys, slot: int, gen: int, start: int, until: int, shared: bool, rule: int,
               holder: str, visitor: str | None, last: int = 0) -> Assignment:
        """Remember a lease Redis has just confirmed; the visitor's assignment of it."""
        number = ps.slots.get(slot, "")
        made = Assignment(number, ps.display.get(number, number), ps.pool.name, self._rule_name(rule),
                          self.make_token(ps, slot, gen, start), until / 1000.0, shared)
        key = (ps.index, slot)
        lease = self._leases.get(key)
        if lease is None or lease.gen != gen or lease.start != start:
            if lease is not None:
                lease.gone = True
            lease = self._leases[key] = self._new_lease(ps, slot, gen, start, until, made, holder)
        else:
            lease.cu = max(lease.cu, until)
            lease.lu = max(lease.lu, until)
            lease.made = made
        lease.last = max(lease.last, last)
        if visitor:
            if len(self._visitors) > 400_000:  # bounded: a visitor forgotten costs one round trip
                self._visitors.clear()
            self._visitors[visitor] = (lease, _field(visitor, HOLDER_MAX).decode("utf-8", "replace") != holder)
        return made

    def _forget(self, lease: Lease) -> None:
        lease.gone = True
        key = (lease.ps.index, lease.slot)
        if self._leases.get(key) is lease:
            del self._leases[key]

    # -- returning visitors ------------------------------------------------------------------
    def local(self, visitor: Any, ms: int) -> Assignment | None:
        """The fast path: a returning visitor's lease renewed here, if Redis's end of it is far off."""
        entry = self._visitors.get(visitor)
        if entry is None:
            return None
        lease = entry[0]
        if lease.gone or lease.cu - MARGIN_MS <= ms:
            return None
        if entry[1] or ms >= self.window.due or ms < self.window.floor:
            return self._renew_here(lease, ms, visitor if entry[1] else None)
        # the common case, inline: a holder back within the window
        until = ms + lease.ps.hold_ms
        made = lease.made
        if until > lease.lu:
            lease.lu = until
            made = lease.made = _new_assignment(_Assignment, (made[0], made[1], made[2], made[3], made[4],
                                                              until / 1000.0, made[6]))
        if not lease.first:
            self._mark_dirty(lease, ms, ms)
        elif ms > lease.last:
            lease.last = ms
        self._marked[lease.key] = lease.ps
        self.window.renewed += 1
        return made

    def _renew_here(self, lease: Lease, ms: int, joiner: str | None) -> Assignment:
        until = ms + lease.ps.hold_ms
        made = lease.made
        if until > lease.lu:
            lease.lu = until
        if made.expires_at is None or made.expires_at * 1000 != lease.lu:
            made = lease.made = made._replace(expires_at=lease.lu / 1000.0)
        if not lease.first:
            self._mark_dirty(lease, ms, ms)
        elif ms > lease.last:
            lease.last = ms
        self._marked[lease.key] = lease.ps
        self.window.renewed += 1
        if joiner is not None:
            self._seen_again(joiner, lease, ms)
        if ms >= self.window.due or ms < self.window.floor:
            self.window.due, self.window.floor = ms + WINDOW_MS, ms - min(ms, WINDOW_MS)
            if not self.flush_in_background:
                self.flush()
        self._check_log(ms)
        return made

    def returning(self, visitor: str | None, token: str | None, now_ms: int) -> Assignment | None:
        """The live lease of a returning visitor (by token or visitor id), renewed; else None."""
        if token:
            parsed = self._token_lease(token, visitor, now_ms)
            if parsed is not None:
                return parsed
        if not visitor:
            return None
        entry = self._visitors.get(visitor)
        if entry is not None:
            got = self._renewed(entry[0], now_ms, visitor if entry[1] else None)
            if got is not None:
                return got
            self._visitors.pop(visitor, None)
        if len(self.by_name) > 1:  # their lease may be in any pool: looked for in all, one round trip
            return self.late_return(visitor, now_ms)
        return None  # one pool: the claim looks for their lease first, in the same round trip

    def after_rules(self, visitor: str | None, now_ms: int) -> Assignment | None:
        """A visitor the rules send to no dynamic pool (excluded, unmatched, static): their live lease
        made by another host, which they keep before any rule. (With several pools returning() has
        looked already.)"""
        if not visitor or len(self.by_name) != 1 or visitor in self._visitors:
            return None
        return self.late_return(visitor, now_ms)

    def late_return(self, visitor: str | None, now_ms: int,
                    pools: Sequence[str] | None = None) -> Assignment | None:
        """A visitor this host does not know: their live lease in any pool (another host made it).
        A caller that must not wait (``claims.NewVisitorClaims.finding_first``) gets FindFirst
        instead of the round trip, unless the look was made for it already (``find_soon``)."""
        if not visitor:
            return None
        order = list(self.by_name.values())
        found = self._found.get((visitor, now_ms))  # for every step of this visit (same instant)
        if found is not None and found[0] == order:
            replies = found[1]
            if replies is None:  # Redis did not answer
                return None
        elif getattr(self._mine, "no_wait", False):
            raise FindFirst(visitor, now_ms)
        else:
            try:
                replies = self._pipeline(self._find_calls(visitor, now_ms, order))
                self._reassert(now_ms)
            except Unavailable:
                return None
        for ps, reply in zip(order, replies):
            self._saw_epoch(ps, reply[1])
            if reply[0] == b"back":
                slot, rec = int(reply[2]), reply[3:14]
                gen, shared, until, number, rule_i, start, last, rholder, rsess = _fields(rec)
                return self._adopt(ps, slot, gen, start, until, bool(shared), rule_i, rholder, visitor, last)
        return None

    def _find_calls(self, visitor: str, now_ms: int, order: list[_PoolKeys]) -> list[tuple[Any, ...]]:
        holder = _field(visitor, HOLDER_MAX).decode("utf-8", "replace")
        return [("k50_find", ps.keys, [now_ms, ps.hold_ms, ps.cooldown_ms, holder]) for ps in order]

    def _renewed(self, lease: Lease, now_ms: int, joiner: str | None) -> Assignment | None:
        """A lease this host knows, renewed: here if Redis's end is far off, else in Redis now."""
        if lease.gone:
            return None
        if lease.cu - MARGIN_MS > now_ms:
            return self._renew_here(lease, now_ms, joiner)
        if lease.lu <= now_ms and lease.cu <= now_ms:
            return None  # ended as far as this host knows; Redis cannot know a later end
        self._mark_dirty(lease, now_ms, now_ms)
        lease.lu = max(lease.lu, now_ms + lease.ps.hold_ms)
        try:
            self._pipeline([], include=lease)
            if not lease.gone and lease.cu <= now_ms:  # the flusher had taken it, its reply not in yet
                self._mark_dirty(lease, now_ms, now_ms)
                self._pipeline([], include=lease)
            self._reassert(now_ms)
        except Unavailable:  # alive as far as Redis confirmed: still this visitor's
            return lease.made if lease.cu > now_ms else None
        if lease.gone or lease.cu <= now_ms:
            return None
        self._marked[lease.key] = lease.ps
        self.window.renewed += 1
        if joiner is not None:
            self._seen_again(joiner, lease, now_ms)
        self._check_log(now_ms)
        made = lease.made
        if made.expires_at is None or made.expires_at * 1000 != lease.lu:
            made = lease.made = made._replace(expires_at=lease.lu / 1000.0)
        return made

    def _token_lease(self, token: Any, visitor: str | None, now_ms: int) -> Assignment | None:
        fields = parse_token_text(token)
        if fields is None:
            return None
        p, slot, gen, tag = fields
        ps = self.by_index.get(p)
        if ps is None or slot not in ps.slots:
            return None
        lease = self._leases.get((p, slot))
        if lease is not None and lease.gen == gen and self._tag(slot, p, gen, lease.start) == tag:
            got = self._renewed(lease, now_ms, None)
            if got is not None and visitor:
                joined = _field(visitor, HOLDER_MAX).decode("utf-8", "replace") != lease.holder
                self._visitors[visitor] = (lease, joined)
            return got
        # a token another host handed out: its record read, its tag checked, then renewed
        try:
            reply = self._pipeline([("k50_records", ps.keys, [slot])])[0]
        except Unavailable:
            return None
        recs = _records(reply)
        if not recs:
            return None
        rgen, shared, until, number, rule_i, start, last, rholder, rsess = _fields(recs[0][1])
        kind = int(recs[0][1][9])
        if kind != LEASED or rgen != gen or until <= now_ms or self._tag(slot, p, gen, start) != tag:
            return None
        self._adopt(ps, slot, gen, start, until, bool(shared), rule_i, rholder, None, last)
        lease = self._leases[(p, slot)]
        got = self._renewed(lease, now_ms, None)
        if got is not None and visitor:
            self._visitors[visitor] = (lease, _field(visitor, HOLDER_MAX).decode("utf-8", "replace") != lease.holder)
        return got

    def renew(self, token: str, now_ms: int) -> bool:
        return self._token_lease(token, None, now_ms) is not None

    def renew_many(self, tokens: Sequence[str], now_ms: int) -> int:
        return sum(1 for t in tokens if self._token_lease(t, None, now_ms) is not None)

    def heartbeat(self, token: Any, now: Any = None) -> bool:
        """One page's heartbeat at ``now`` seconds (None: the clock); a bad clock raises, as the core's."""
        return self.renew(token, milliseconds(now))

    def heartbeat_many(self, tokens: Sequence[Any], now: Any = None) -> int:
        return self.renew_many(list(tokens), milliseconds(now))

    def _tag(self, slot: int, pool: int, gen: int, start: int) -> int:
        """The lease's keyed tag (BLAKE2b keyed with the namespace's secret, which Redis keeps)."""
        h = self._tag_base.copy()  # the key's block hashed once, not per token
        h.update(_TAG_FIELDS(slot, (pool << 32) | gen, start))
        return int.from_bytes(h.digest(), "little")

    def make_token(self, ps: _PoolKeys, slot: int, gen: int, start: int) -> str:
        return f"{ps.index:02x}{slot:08x}{gen:06x}{self._tag(slot, ps.index, gen, start):016x}"

    def set_tag_key(self, key: bytes) -> None:
        """The key of this host's token tags (the namespace's, which Redis keeps; tests give another)."""
        self._tag_key = bytes(key)
        self._tag_base = hashlib.blake2b(digest_size=8, key=self._tag_key)

    @property
    def shared_secret(self) -> bytes:
        """A secret every host on this Redis namespace has (the service keys claim tickets with it)."""
        return hashlib.blake2b(b"k50core hosts", key=self._tag_key, digest_size=32).digest()

    def index_overflowed(self) -> bool:
        return False

    # -- lease log --------------------------------------------------------------------
    def claim_counts(self) -> dict[str, int]:
        """New visitors' claims sent by this host, and the round trips that carried them."""
        return {"claims": self._claims.claims, "claim_round_trips": self._claims.round_trips}

    def close(self) -> None:
        self._sender.close()
        self.flush()
        self.closed = True
        for client in (self.redis, self.admin):
            try:
                client.close()
            except Exception:
                pass
