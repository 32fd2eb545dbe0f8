"""Number pools: placement (process memory or a shared segment), assignment, lease log.

The slots themselves live in the core's ``SlotTable`` (lock-free in the
compiled build). This module lays out the segment, maps each configured
number to its slot, and turns decisions into ``Assignment``s.

Segment layout (little-endian, version ``LAYOUT_VERSION``)::

    0     magic b"K50POOL\\x01", layout version u32, slot size u32, capacity u32, used u32
    32    the key of holder hashes (16 random bytes, made with the segment)
    48    the key of lease token tags (16 random bytes; see _csrc/siphash.h)
    64    pool registry: MAX_POOLS entries of 64 bytes: name (32 bytes UTF-8),
          counters u64 × 4 (claims, shares, defaults, spare)
    4096  slot heads, HEAD_SIZE bytes each (state word, token tag, last activity, pool), then
          slot records, SLOT_SIZE bytes each (see ``_pool.pyx``), then the holder index
          (see ``_holders.pxi``); ``table_bytes(capacity)`` in all

Opening, setting up numbers and reloading take an ``flock`` on the segment
file; assigning and renewing never lock.
"""
from __future__ import annotations

import fcntl
import functools
import hashlib
import mmap
import os
import struct
import threading
import weakref
from array import array
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any, NamedTuple

from ._engine_py.pool import (  # noqa: F401 (CLAIMING, NEVER: the layout's names, re-exported with the rest)
    CLAIMING,
    HEAD_SIZE,
    HOLDER_MAX,
    LEASED,
    NEVER,
    RETIRED,
    SESSION_MAX,
    SLOT_SIZE,
    _parse_token as parse_token_text,
)
from .config.model import Pool
from .config.phones import display as format_number
from .errors import SegmentError

LAYOUT_VERSION = 4  # 3: the holder index and the hash key; 4: token tags and their key
MAGIC = b"K50POOL\x01"
HEADER_SIZE = 4096
MAX_POOLS = 56
REGISTRY = 64
ENTRY = 64
NAME_MAX = 32
C_CLAIMS, C_SHARES, C_DEFAULTS = range(3)  # a pool's counters; the fourth is spare
_HEAD = struct.Struct("<8sIIII")
KEY_AT, KEY_SIZE = 32, 16
TAG_KEY_AT = 48


def _field(text: str | None, limit: int) -> bytes:
    """An id as the slot stores it: UTF-8, cut to the slot's field."""
    return (text or "").encode("utf-8", "replace")[:limit]


class Assignment(NamedTuple):
    """What the page shows: ``number`` None means the page keeps its own number."""
    number: str | None
    display: str | None
    pool: str | None
    rule: str | None
    token: str | None
    expires_at: float | None
    shared: bool


# A joiner's returns to a shared lease are logged at most this often (ms): attribution ranks
# joiners by recency on the scale of a fifth of the hold (minutes), and every page view of
# every joiner would otherwise be a row to write.
SEEN_EVERY_MS = 10_000


class LeaseEvent(NamedTuple):
    """One lease start, renewal or shared join; a lease ends at its last ``end``."""
    event: str              # "start", "renew", "share", "end" (cut short by retiring the number)
    pool: str
    number: str
    visitor_id: str | None
    session_id: str | None
    rule: str | None
    start: float
    last: float
    end: float
    shared: bool
    lease: str              # slot.gen: the id of this lease


def holder_hash(holder: bytes, key: bytes) -> int:
    """Stable across processes (unlike hash()), for matching returning visitors. Keyed with the
    segment's random key: visitor ids crafted to share a place in the holder index cannot be
    made in advance."""
    return int.from_bytes(hashlib.blake2b(holder, digest_size=8, key=key).digest(), "little")


def number_key(e164: str) -> int:
    return int(e164.lstrip("+"))


_new = tuple.__new__  # a named tuple made from a tuple, without its Python-level __new__


@dataclass
class _PoolSlots:
    index: int              # registry entry
    pool: Pool
    slots: array            # array('i') of slot indices in circulation
    hold_ms: int
    cooldown_ms: int
    display: dict[str, str]
    claims_at: int = 0      # the byte offset of its claims counter in the segment (each claim adds one)


class Segment:
    """The memory the slots live in: private memory of this process, or an mmap'd file shared by
    workers."""

    def __init__(self, core: ModuleType, capacity: int, path: str | None = None) -> None:
        size = HEADER_SIZE + core.table_bytes(capacity)
        self._table_bytes = core.table_bytes
        self.path = path
        self.fd: int | None = None
        self._local_lock = threading.RLock()
        if path is None:
            # private memory, page-aligned (a bytearray's data sits 16 bytes into a cache line, so
            # half the 32-byte slot heads would straddle two lines); a fork copies it, as before
            self.buffer: Any = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
            self._start(capacity)
        else:
            self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            with self.locked():
                existing = os.fstat(self.fd).st_size
                if existing == 0:
                    os.ftruncate(self.fd, size)
                    self.buffer = mmap.mmap(self.fd, size)
                    self._start(capacity)
                else:
                    self.buffer = mmap.mmap(self.fd, existing)
                    version = self._check()
                    if version == 2:
                        self._grow_from_layout_2(core)
                    if version in (2, 3):
                        self._tag_leases(core, rebuild_index=version == 2)
        magic, version, slot_size, self.capacity, _ = _HEAD.unpack_from(self.buffer, 0)
        key = bytes(self.buffer[KEY_AT:KEY_AT + KEY_SIZE])
        self.key = key if key.strip(b"\0") else b""  # none: a segment grown from layout 2
        self.table = core.SlotTable(self.buffer, HEADER_SIZE, self.capacity, fd=self.fd)
        self.table.set_tag_key(bytes(self.buffer[TAG_KEY_AT:TAG_KEY_AT + KEY_SIZE]))

    def _grow_from_layout_2(self, core: ModuleType) -> None:
        """A segment made before the holder index (layout 2, the lock held): grown in place, its live
        leases kept. Its holder hashes were made without a key, so it keeps none; the index is
        built from the leases it holds once _tag_leases has moved the hashes. (Stop every worker
        of the older build first: one still running would claim without entering its leases.)"""
        capacity = _HEAD.unpack_from(self.buffer, 0)[3]
        self.buffer.close()
        assert self.fd is not None  # a segment file: the only kind with an older layout
        os.ftruncate(self.fd, HEADER_SIZE + core.table_bytes(capacity))  # the new bytes read as zeros
        self.buffer = mmap.mmap(self.fd, HEADER_SIZE + core.table_bytes(capacity))

    def _tag_leases(self, core: ModuleType, rebuild_index: bool = False) -> None:
        """A segment made before token tags (layout 3, or 2 grown; the lock held): a tag key made,
        each holder hash moved to its record and each lease tagged in its head. Its pages' tokens
        of the earlier form renew nothing; their visitors are still found by visitor id. (Stop
        every worker of the older build first.)"""
        capacity = _HEAD.unpack_from(self.buffer, 0)[3]
        self.buffer[TAG_KEY_AT:TAG_KEY_AT + KEY_SIZE] = os.urandom(KEY_SIZE)
        table = core.SlotTable(self.buffer, HEADER_SIZE, capacity, fd=None)  # the file lock is held
        table.set_tag_key(bytes(self.buffer[TAG_KEY_AT:TAG_KEY_AT + KEY_SIZE]))
        table.from_layout_3()
        if rebuild_index:  # a segment of layout 2 had none
            table.rebuild_index()
        del table
        struct.pack_into("<I", self.buffer, 8, LAYOUT_VERSION)  # last: a crash before leaves the old one

    def _start(self, capacity: int) -> None:
        _HEAD.pack_into(self.buffer, 0, MAGIC, LAYOUT_VERSION, SLOT_SIZE, capacity, 0)
        self.buffer[KEY_AT:KEY_AT + KEY_SIZE] = os.urandom(KEY_SIZE)
        self.buffer[TAG_KEY_AT:TAG_KEY_AT + KEY_SIZE] = os.urandom(KEY_SIZE)

    def _check(self) -> int:
        """Refuse what is not a segment of this build's layout; its layout version (2 and 3 grow)."""
        if len(self.buffer) < HEADER_SIZE:
            raise SegmentError(f"{self.path}: too small to be a k50core pool segment")
        magic, version, slot_size, capacity, used = _HEAD.unpack_from(self.buffer, 0)
        if magic[:7] != MAGIC[:7]:
            raise SegmentError(f"{self.path}: not a k50core pool segment")
        if version == 2 and slot_size == SLOT_SIZE and magic == MAGIC \
                and HEADER_SIZE + capacity * (HEAD_SIZE + SLOT_SIZE) <= len(self.buffer):
            return 2
        if version not in (3, LAYOUT_VERSION) or slot_size != SLOT_SIZE or magic != MAGIC:
            raise SegmentError(f"{self.path}: made by an incompatible k50core build (layout {version}, "
                               f"slot size {slot_size}; this build uses layout {LAYOUT_VERSION}, "
                               f"slot size {SLOT_SIZE}); remove it or point state_path elsewhere")
        if HEADER_SIZE + self._table_bytes(capacity) > len(self.buffer):
            raise SegmentError(f"{self.path}: truncated pool segment")
        return version

    def locked(self) -> _SegmentLock:
        return _SegmentLock(self)

    @property
    def used(self) -> int:
        return _HEAD.unpack_from(self.buffer, 0)[4]

    def _set_used(self, used: int) -> None:
        struct.pack_into("<I", self.buffer, 20, used)

    # -- registry of pools and numbers (under the lock) -----------------------------
    def pool_entry(self, name: str) -> int:
        raw = name.encode("utf-8")[:NAME_MAX].ljust(NAME_MAX, b"\0")
        free = -1
        for i in range(MAX_POOLS):
            at = REGISTRY + i * ENTRY
            current = bytes(self.buffer[at:at + NAME_MAX])
            if current == raw:
                return i
            if free < 0 and not current.strip(b"\0"):
                free = i
        if free < 0:
            raise SegmentError(f"more than {MAX_POOLS} pools in one segment")
        at = REGISTRY + free * ENTRY
        self.buffer[at:at + NAME_MAX] = raw
        return free

    def numbers(self) -> dict[int, int]:
        """number key → slot, for every slot set up so far."""
        table = self.table
        return {table.record(i).number: i for i in range(self.used)}

    def new_slot(self, number: int, pool: int) -> int:
        used = self.used
        if used >= self.capacity:
            raise SegmentError(f"the pool segment is full ({self.capacity} numbers); "
                               "start it afresh with a larger capacity")
        self.table.setup(used, number, pool)
        self._set_used(used + 1)
        return used

    def counter_offset(self, pool: int, counter: int) -> int:
        return REGISTRY + pool * ENTRY + NAME_MAX + counter * 8

    def close(self) -> None:
        if self.fd is not None:
            try:
                self.buffer.close()
            except BufferError:  # a table still points into it; the OS unmaps at exit
                pass
            os.close(self.fd)
            self.fd = None


class _SegmentLock:
    def __init__(self, segment: Segment) -> None:
        self.segment = segment

    def __enter__(self) -> None:
        self.segment._local_lock.acquire()
        if self.segment.fd is not None:
            fcntl.flock(self.segment.fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: Any) -> None:
        if self.segment.fd is not None:
            fcntl.flock(self.segment.fd, fcntl.LOCK_UN)
        self.segment._local_lock.release()


def _reset_in_child(ref: weakref.ref[Pools]) -> None:
    """The fork hook of a Pools: registered for the process's life, so it outlives a collected one."""
    pools = ref()
    if pools is not None:
        pools._after_fork()


class Pools:
    """Dynamic pools of one engine: assignment, renewal, stats and the lease log."""

    def __init__(self, core: ModuleType, pools: Mapping[str, Pool], rule_names: Sequence[str], *,
                 state_path: str | None = None, capacity: int | None = None,
                 lease_sink: Callable[[list[LeaseEvent]], None] | None = None, sink_batch: int = 1024,
                 checkpoint_ms: int = 30_000, now_ms: int) -> None:
        dynamic = [p for p in pools.values() if p.type == "dynamic"]
        total = sum(len(p.numbers) for p in dynamic)
        self.segment = Segment(core, capacity or max(256, 2 * total + 64), state_path)
        self.table = self.segment.table
        self.rule_names = list(rule_names)
        self.hint = os.getpid() * 2654435761 % 1000003  # spreads where workers start scanning
        # returning visitors: the engine's assign fast path. Sized by the numbers, not a constant: a
        # cache smaller than the live leases is emptied each time it fills (a cliff at its size).
        self.returns = core.ReturnCache(self.table, max(200_000, 4 * self.segment.capacity))
        self.returns.seen = self._seen_again
        self._tokens: dict[str, tuple[_PoolSlots, int, int, int]] = {}  # parsed tokens (pool, slot, gen, tag)
        # "slot.gen visitor" -> when last logged (ms); text keys and int values: a dict the cyclic
        # collector does not track, however many joiners it holds
        self._joiner_seen: dict[str, int] = {}
        self._log: list[Any] = []
        self._sink = lease_sink
        self._checkpoint_ms = checkpoint_ms
        self.set_sink_batch(sink_batch)
        self.by_name: dict[str, _PoolSlots] = {}
        self.by_index: dict[int, _PoolSlots] = {}
        self._slot_pool: dict[int, _PoolSlots] = {}
        self._last_holder: tuple[str | None, bytes, int] = (None, b"", 0)
        self.configure(pools, now_ms)
        os.register_at_fork(after_in_child=functools.partial(_reset_in_child, weakref.ref(self)))

    def _after_fork(self) -> None:
        """A forked worker: its own scan start, and none of the parent's buffered events."""
        self.hint = os.getpid() * 2654435761 % 1000003
        self._log = []
        self.table.discard_renewals()  # reads no slot (nor the lock another thread may have held)

    # -- set-up and reload ---------------------------------------------------------
    def configure(self, pools: Mapping[str, Pool], now_ms: int) -> None:
        """Map configured numbers to slots; retire numbers no longer configured.

        Live leases of numbers that stay are untouched: a number keeps its slot.
        A retired number's live lease ends now (logged as an "end").
        """
        seg = self.segment
        with seg.locked():
            known = seg.numbers()
            wanted: dict[int, int] = {}
            by_name: dict[str, _PoolSlots] = {}
            for pool in pools.values():
                if pool.type != "dynamic":
                    continue
                index = seg.pool_entry(pool.name)
                slots = array("i")
                for number in pool.numbers:
                    key = number_key(number)
                    slot = known.get(key)
                    if slot is None:
                        slot = known[key] = seg.new_slot(key, index)
                    else:
                        self.table.setup(slot, key, index)
                        self.table.revive(slot)
                    wanted[key] = slot
                    slots.append(slot)
                by_name[pool.name] = _PoolSlots(index, pool, slots, pool.hold_seconds * 1000,
                                                pool.cooldown_seconds * 1000,
                                                {n: format_number(n, pool.display) for n in pool.numbers},
                                                seg.counter_offset(index, C_CLAIMS))
            cut = [slot for key, slot in known.items() if key not in wanted and self.table.retire(slot, now_ms)]
        for slot in cut:
            ps = self._slot_pool.get(slot)
            if ps is not None:
                self._record("end", ps, slot, self.table.state(slot)[1], now_ms, None, None)
        old_holds = {n: p.hold_ms for n, p in self.by_name.items()}
        self.by_name = by_name
        self.by_index = {p.index: p for p in by_name.values()}
        self._slot_pool = {slot: ps for ps in by_name.values() for slot in ps.slots}
        self._all_slots = array("i", self._slot_pool)  # every dynamic pool's, for a rare scan
        self._slot_of = {f"+{number_key(n)}": (ps, slot) for ps in by_name.values()
                         for n, slot in zip(ps.pool.numbers, ps.slots)}
        self._number_at = {slot: number for number, (_ps, slot) in self._slot_of.items()}
        self._pool_names: list[str | None] = [None] * MAX_POOLS  # registry entry → configured pool
        for ps in by_name.values():
            self._pool_names[ps.index] = ps.pool.name
        holds = [0] * MAX_POOLS  # hold per registry entry, for token renewals
        for ps in by_name.values():
            holds[ps.index] = ps.hold_ms
        self.table.set_holds(holds)
        if any(old_holds.get(n, p.hold_ms) != p.hold_ms for n, p in by_name.items()):
            self.returns.rehold(holds)  # entries carry their hold; a retired slot just fails to renew
        self._tokens.clear()

    # -- assignment ---------------------------------------------------------------------
    def lease(self, pool_name: str, rule: int, visitor: str | None, session: str | None,
              now_ms: int) -> tuple[Assignment | None, LeaseEvent | None]:
        """A new lease for a visitor whose live lease ``returning()`` did not find, and its start
        event; (None, None) when the pool is exhausted."""
        ps = self.by_name[pool_name]
        holder, h = self._holder(visitor)
        got = self.table.claim(ps.slots, self.hint, now_ms, ps.hold_ms, ps.cooldown_ms, rule, h, holder,
                               _field(session, SESSION_MAX))
        if got is None:
            return None, None
        slot, gen = got
        self.hint += 1  # like sbitmap's per-CPU hints: the next scan starts further on
        self.table.add(ps.claims_at)
        return self._claimed(ps, slot, gen, rule, holder, visitor, session, now_ms)

    def _claimed(self, ps: _PoolSlots, slot: int, gen: int, rule: int, holder: bytes, visitor: str | None,
                 session: str | None, now_ms: int) -> tuple[Assignment, LeaseEvent]:
        """A lease this process has just claimed and its start, from what the claim wrote (each new
        visitor's two reads of the slot back saved): ids as the slot keeps them, cut to its fields."""
        number, rule_name, until_ms = self._number_at[slot], self._rule_name(rule), now_ms + ps.hold_ms
        at, until = now_ms / 1000.0, until_ms / 1000.0
        started = _new(LeaseEvent, ("start", ps.pool.name, number, holder.decode("utf-8", "replace") or None,
                                    _field(session, SESSION_MAX).decode("utf-8", "replace") or None, rule_name,
                                    at, at, until, False, f"{slot}.{gen}"))
        made = _new(Assignment, (number, ps.display.get(number, number), ps.pool.name, rule_name,
                                 self.make_token(ps, slot, gen), until, False))
        if visitor:
            self.returns.put(visitor, slot, gen, ps.hold_ms, made, False)
        self._logged(started)
        return made, started

    def share(self, pool_name: str, rule: int, visitor: str | None, session: str | None,
              now_ms: int) -> tuple[Assignment | None, LeaseEvent | None]:
        """Exhaustion: a number shared with its holder (or a new shared lease of an ended one)."""
        ps = self.by_name[pool_name]
        self.table.add(self.segment.counter_offset(ps.index, C_SHARES))
        holder, h = self._holder(visitor)
        got = self.table.share(ps.slots, now_ms, ps.hold_ms, rule, h, holder, _field(session, SESSION_MAX))
        if got is None:
            return None, None
        slot, gen = got
        joined = self._record("share", ps, slot, gen, now_ms, visitor, session)
        return self._made(ps, slot, gen, self.table.state(slot)[3], True, visitor), joined

    def replaced_by_last_claim(self) -> LeaseEvent | None:
        """The lease the latest lease() or share() replaced, in its final state (a "renew" event),
        if it moved since its start: the one record of its last activity once the slot holds
        the new lease (the renewal log has it too, until the next drain). None otherwise."""
        raw = self.table.last_superseded()
        if raw is None:
            return None
        name = self._pool_names[raw.pool] if 0 <= raw.pool < len(self._pool_names) else None
        if name is None:
            return None
        return LeaseEvent("renew", name, f"+{raw.number}", raw.holder, raw.session, self._rule_name(raw.rule),
                          raw.start / 1000.0, raw.last / 1000.0, raw.until / 1000.0, raw.shared,
                          f"{raw.slot}.{raw.gen}")

    def _holder(self, visitor: str | None) -> tuple[bytes, int]:
        """The visitor id as the slot keeps it, and its hash: the last one kept, as a new visitor's
        lease (and share) follows the look for their live lease."""
        last = self._last_holder  # read once: another thread may replace it
        if last[0] != visitor:
            holder = _field(visitor, HOLDER_MAX)
            last = self._last_holder = (visitor, holder, holder_hash(holder, self.segment.key) if visitor else 0)
        return last[1], last[2]

    def count_default(self, pool_name: str) -> None:
        self.table.add(self.segment.counter_offset(self.by_name[pool_name].index, C_DEFAULTS))

    def returning(self, visitor: str | None, token: str | None, now_ms: int) -> Assignment | None:
        """The live lease of a returning visitor (by token or visitor id), renewed; else None.

        Before any rule, as the core's fast path answers: a visitor keeps a live lease even if
        the rules would now send them elsewhere. A visitor this process does not remember (its
        cache is bounded; another worker made the lease) is looked for in the slots."""
        if token:
            parsed = self.parse_token(token)
            if parsed is not None:
                ps, slot, gen = parsed
                return self._renewed(ps, slot, gen, now_ms, visitor)
        if not visitor:
            return None
        back = self.returns.renew(visitor, now_ms)
        if back is not None:
            return back
        holder, h = self._holder(visitor)
        found = self.table.lease_of(h, holder, now_ms)
        if found is not None and found[0] not in self._slot_pool:  # a number this config does not have
            found = self.table.find(self._all_slots, h, holder, now_ms)  # (another lease of theirs, if any)
        held = self._slot_pool.get(found[0]) if found is not None else None
        return self._renewed(held, found[0], found[1], now_ms, visitor) if held is not None else None


    def renew(self, token: str, now_ms: int) -> bool:
        return self.table.renew_tokens((token,), now_ms) > 0

    def renew_many(self, tokens: Sequence[str], now_ms: int) -> int:
        """Heartbeats: parsed and renewed in the core, logged there as a bit per slot (the core
        calls the sink at each checkpoint, see set_log_limit)."""
        return self.table.renew_tokens(tokens, now_ms)

    def _renew(self, ps: _PoolSlots, slot: int, gen: int, now_ms: int) -> int:
        return self.table.renew(slot, gen, now_ms, ps.hold_ms)

    def set_sink_batch(self, events: int) -> None:
        """Hand the sink lease starts (and leases superseded) once this many wait; renewals go at
        checkpoints only: each lease renewed since the last is then one event, however often it was
        renewed (a heartbeat costs no store write of its own)."""
        self._sink_batch = events
        if self._sink is not None:
            self.table.set_log_limit(events, self._sink_now, self._checkpoint_ms)

    def set_checkpoint(self, ms: int) -> None:
        """Renewals reach the sink every ``ms`` of renewal clock (a reload may change it)."""
        if ms != self._checkpoint_ms:
            self._checkpoint_ms = ms
            self.set_sink_batch(self._sink_batch)

    def _sink_now(self, checkpoint: bool) -> None:
        if self._sink is not None:
            self._sink(self.drain(checkpoint))

    def _renewed(self, ps: _PoolSlots, slot: int, gen: int, now_ms: int,
                 visitor: str | None) -> Assignment | None:
        until = self._renew(ps, slot, gen, now_ms)
        if not until:
            return None
        return self._made(ps, slot, gen, until, self.table.state(slot)[2], visitor)

    def _made(self, ps: _PoolSlots, slot: int, gen: int, until_ms: int, shared: bool,
              visitor: str | None) -> Assignment:
        record = self.table.record(slot)
        number, rule = f"+{record.number}", record.rule
        made = Assignment(number, ps.display.get(number, number), ps.pool.name,
                          self.rule_names[rule] if 0 <= rule < len(self.rule_names) else None,
                          self.make_token(ps, slot, gen), until_ms / 1000.0, shared)
        if visitor:  # the holder returns to it, and so does a visitor who joined it while shared
            joined = record.holder != _field(visitor, HOLDER_MAX)
            self.returns.put(visitor, slot, gen, ps.hold_ms, made, joined)
        return made

    def _seen_again(self, visitor: str, slot: int, gen: int, now_ms: int) -> None:
        """A joiner of a shared lease is back: logged as a join at ``now_ms``, so attribution
        ranks them by when they were last on the page, as it ranks the holder."""
        key = f"{slot}.{gen} {visitor}"
        if now_ms - self._joiner_seen.get(key, -SEEN_EVERY_MS) < SEEN_EVERY_MS:
            return  # logged moments ago: the ranking works on the scale of minutes
        if len(self._joiner_seen) > 200_000:  # bounded: forgetting only logs one return more
            self._joiner_seen.clear()
        self._joiner_seen[key] = now_ms
        ps = self._slot_pool.get(slot)
        if ps is not None:
            self._record("share", ps, slot, gen, now_ms, visitor, None)

    # -- tokens -----------------------------------------------------------------------
    def make_token(self, ps: _PoolSlots, slot: int, gen: int) -> str:
        """32 hex digits, pool (2) slot (8) gen (6) and the lease's tag (16): a fixed width the core
        parses without a loop; the tag (keyed with the segment's secret) makes it unguessable."""
        return f"{ps.index:02x}{slot:08x}{gen:06x}{self.table.tag(slot):016x}"

    def parse_token(self, token: Any) -> tuple[_PoolSlots, int, int] | None:
        """(pool, slot, gen) of a token whose tag is the one of the lease its slot holds; else None."""
        known = self._tokens.get(token) if type(token) is str else None
        if known is None:
            fields = parse_token_text(token)
            if fields is None:
                return None
            p, s, g, tag = fields
            ps = self.by_index.get(p)
            if ps is None or self._slot_pool.get(s) is not ps:
                return None
            if len(self._tokens) > 200_000:  # bounded: a miss just parses again
                self._tokens.clear()
            known = self._tokens[token] = (ps, s, g, tag)
        ps, s, g, tag = known
        if self.table.tag(s) != tag:  # a forged token, or one of an earlier lease of the slot
            return None
        return ps, s, g

    # -- lease log ------------------------------------------------------------------
    def _record(self, event: str, ps: _PoolSlots, slot: int, gen: int, now_ms: int, visitor: str | None,
                session: str | None, until_ms: int | None = None) -> LeaseEvent:
        rec = self.table.record(slot)
        if event != "share":
            visitor = rec.holder.decode("utf-8", "replace") or None
            session = rec.session.decode("utf-8", "replace") or None
        made = LeaseEvent(event, ps.pool.name, f"+{rec.number}", visitor, session, self._rule_name(rec.rule),
                          rec.start / 1000.0, now_ms / 1000.0, (until_ms or rec.until) / 1000.0, rec.shared,
                          f"{slot}.{gen}")
        self._logged(made)
        return made

    def _logged(self, e: LeaseEvent) -> None:
        """Into the lease log; a full batch goes to the sink."""
        self._log.append(e)
        if self._sink is not None and len(self._log) >= self._sink_batch:
            self._sink(self.drain(checkpoint=False))

    def drain(self, checkpoint: bool = True) -> list[LeaseEvent]:
        """The events since the last drain, oldest first; the renewals only with ``checkpoint``
        (until then each lease's latest activity is in the pool state, where attribution reads it)."""
        out, self._log = self._log, []
        out += self.table.take_renewal_events(LeaseEvent, self._pool_names, self.rule_names, checkpoint)
        out.sort(key=lambda e: e.last)  # starts and renewals in time order
        return out

    def _rule_name(self, rule: int) -> str | None:
        return self.rule_names[rule] if 0 <= rule < len(self.rule_names) else None

    def holders(self) -> list[LeaseEvent]:
        """The last lease of every number, read from the pool state itself."""
        found = (self._state_event(ps, slot) for ps in self.by_name.values() for slot in ps.slots)
        return [e for e in found if e is not None]

    def holder_of(self, number: str) -> LeaseEvent | None:
        """The last lease of one configured number (E.164), from the pool state; None if never leased."""
        at = self._slot_of.get(number)
        return self._state_event(*at) if at is not None else None

    def _state_event(self, ps: _PoolSlots, slot: int) -> LeaseEvent | None:
        rec = self.table.record(slot)
        if rec.kind not in (LEASED, RETIRED) or not rec.until:
            return None
        return LeaseEvent("state", ps.pool.name, f"+{rec.number}", rec.holder.decode("utf-8", "replace") or None,
                          rec.session.decode("utf-8", "replace") or None, self._rule_name(rec.rule),
                          rec.start / 1000.0, rec.last / 1000.0, rec.until / 1000.0, rec.shared,
                          f"{slot}.{rec.gen}")

    def stats(self, now_ms: int) -> dict[str, dict[str, int]]:
        out = {}
        for name, ps in self.by_name.items():
            leased = cooling = 0
            for slot in ps.slots:
                kind, gen, shared, until = self.table.state(slot)
                if kind == LEASED and now_ms < until:
                    leased += 1
                elif kind == LEASED and now_ms < until + ps.cooldown_ms:
                    cooling += 1
            c = [self.table.counter(self.segment.counter_offset(ps.index, k)) for k in range(3)]
            out[name] = {"numbers": len(ps.slots), "leased": leased, "cooling": cooling,
                         "free": len(ps.slots) - leased - cooling, "claims": c[C_CLAIMS],
                         "exhausted_shared": c[C_SHARES], "exhausted_default": c[C_DEFAULTS]}
        return out
