"""Reference number slots: the compiled SlotTable's semantics with a lock.

Same buffer layout and API as ``SlotTable`` in ``_pool.pyx``. Instead of
compare-and-swap it holds a lock around every operation: a thread lock, and
``flock`` on the segment file when one is given, so processes sharing a
segment stay correct too (just not lock-free).
"""
from __future__ import annotations

import fcntl
import struct
import threading
from array import array
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from ..clock import milliseconds
from .records import SlotRecord, SupersededLease
from .tags import lease_tag

HEAD_SIZE, HEAD_TAG, HEAD_LAST, HEAD_POOL = 32, 8, 16, 24  # per slot: state, token tag, last, pool
SLOT_SIZE = 128                # per slot: the lease record
OFF_HASH, OFF_NUMBER, OFF_RULE, OFF_START, OFF_END0 = 0, 8, 20, 24, 32  # the holder's hash first
OFF_HLEN, OFF_SLEN, OFF_HOLDER, OFF_SESSION = 48, 49, 56, 104
HOLDER_MAX, SESSION_MAX = 48, 24
POOLS_MAX = 64
NEVER, CLAIMING, LEASED, RETIRED = 0, 1, 2, 3
CLAIM_DEADLINE_MS = 5000  # a claim interrupted mid-write strands its slot this long at most
UNTIL_MASK = (1 << 43) - 1
SHARED_BIT = 1 << 43
GEN_MASK = (1 << 18) - 1
U64 = struct.Struct("<Q")
U32 = struct.Struct("<I")
TOKEN_LENGTH = 32  # pool (2) slot (8) gen (6) tag (16), in lowercase hex
LAYOUT = {"HEAD_SIZE": HEAD_SIZE, "HEAD_TAG": HEAD_TAG, "HEAD_LAST": HEAD_LAST, "HEAD_POOL": HEAD_POOL,
          "SLOT_SIZE": SLOT_SIZE, "OFF_NUMBER": OFF_NUMBER, "OFF_RULE": OFF_RULE, "OFF_START": OFF_START,
          "OFF_END0": OFF_END0, "OFF_HASH": OFF_HASH, "OFF_HLEN": OFF_HLEN, "OFF_SLEN": OFF_SLEN,
          "OFF_HOLDER": OFF_HOLDER, "HOLDER_MAX": HOLDER_MAX, "OFF_SESSION": OFF_SESSION,
          "SESSION_MAX": SESSION_MAX, "NEVER": NEVER, "CLAIMING": CLAIMING, "LEASED": LEASED,
          "RETIRED": RETIRED, "CLAIM_DEADLINE_MS": CLAIM_DEADLINE_MS, "POOLS_MAX": POOLS_MAX,
          "TOKEN_LENGTH": TOKEN_LENGTH}  # as the compiled build's (a test keeps them equal)
# the holder index after the records (see _holders.pxi): overflow flag, padding, then places
INDEX_WINDOW, INDEX_HEADER = 16, 64


def _index_places(capacity: int) -> int:
    n = 64
    while n < 4 * capacity:
        n <<= 1
    return n


def table_bytes(capacity: int) -> int:
    """The bytes a SlotTable of ``capacity`` slots takes in its buffer: heads, records, holder index."""
    if capacity < 0 or capacity >= 0xFFFFFFFF:  # a slot's index is kept in 32 bits
        raise ValueError("capacity: expected a count of slots, 0 to 2**32 - 2")
    return capacity * (HEAD_SIZE + SLOT_SIZE) + INDEX_HEADER + _index_places(capacity) * 8


def _set_candidate_list_max(n: int) -> int:
    """(For tests; see _claims.pxi.) The reference keeps no list of free numbers: every claim
    scans, so there is no limit to set; returns 0."""
    return 0


def unpack_state(s: int) -> tuple[int, int, bool, int]:
    """(kind, gen, shared, until) of a state word."""
    return (s >> 44) & 3, s >> 46, bool(s & SHARED_BIT), s & UNTIL_MASK


def pack_state(gen: int, kind: int, shared: bool, until: int) -> int:
    return ((gen & GEN_MASK) << 46) | (kind << 44) | (SHARED_BIT if shared else 0) | (until & UNTIL_MASK)


_HEX = frozenset("0123456789abcdef")


def _parse_token(token: Any) -> tuple[int, int, int, int] | None:
    """(pool, slot, gen, tag) from the 32 lowercase hex digits make_token writes; else None."""
    if type(token) is not str or len(token) != TOKEN_LENGTH or not _HEX.issuperset(token):
        return None
    v = int(token[:16], 16)
    return v >> 56, (v >> 24) & 0xFFFFFFFF, v & 0xFFFFFF, int(token[16:], 16)


class SlotTable:
    """Number slots in a writable buffer; times in integer milliseconds."""

    def __init__(self, buffer: Any, offset: int, capacity: int, fd: int | None = None) -> None:
        view = memoryview(buffer).cast("B")
        if offset < 0 or capacity < 0 or capacity >= 0xFFFFFFFF or offset + table_bytes(capacity) > len(view):
            raise ValueError("the slot table does not fit in the buffer (see table_bytes)")
        self._view = view
        self.offset = offset
        self._records = offset + capacity * HEAD_SIZE
        self.capacity = capacity
        self._overflow = self._records + capacity * SLOT_SIZE  # the holder index
        self._places, self._mask = self._overflow + INDEX_HEADER, _index_places(capacity) - 1
        self._fd = fd
        self._lock = threading.RLock()
        self._marked: set = set()  # slots this process renewed since the last drain (see _pool.pyx)
        self._superseded: list[SupersededLease] = []  # final states of leases this process's claims replaced
        self._replaced: SupersededLease | None = None  # the one the latest claim or share replaced
        self.renewed = 0  # this process's renewals, ever
        self._log_limit, self._on_full = 0, None
        self._checkpoint_every, self._checkpoint_floor = 0, 0
        self._checkpoint_due: int | None = None
        self._holds = [0] * POOLS_MAX
        self._tag_key = bytes(16)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with self._lock:
            if self._fd is None:
                yield
                return
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _slot_list(self, slots: Any) -> Any:
        """A pool's slots: an array('i') of indices in the table (as the compiled build insists)."""
        if type(slots) is not array or slots.typecode != "i":
            raise TypeError("slots: expected an array('i') of slot indices")
        for i in slots:
            self._at(i)
        return slots

    def _at(self, slot: int) -> int:
        if not 0 <= slot < self.capacity:
            raise IndexError(f"slot {slot} outside the table")
        return self._records + slot * SLOT_SIZE

    def _head(self, slot: int) -> int:
        self._at(slot)
        return self.offset + slot * HEAD_SIZE

    def _get(self, slot: int) -> int:
        return U64.unpack_from(self._view, self._head(slot))[0]

    def _put(self, slot: int, state: int) -> None:
        U64.pack_into(self._view, self._head(slot), state)

    def _hash(self, slot: int) -> int:
        return self._u64(slot, OFF_HASH)

    def _u64(self, slot: int, off: int, value: int | None = None) -> int:
        at = self._at(slot) + off
        if value is not None:
            U64.pack_into(self._view, at, value)
            return value
        return U64.unpack_from(self._view, at)[0]

    # -- claiming a free number -------------------------------------------------------
    def claim(self, slots: Sequence[int], hint: int, now: int, hold: int, cooldown: int,
              rule: int, holder_hash: int, holder: bytes, session: bytes) -> tuple[int, int] | None:
        """Lease the free number idle longest; None when none is free."""
        n = len(self._slot_list(slots))
        self._replaced = None
        if n == 0:
            return None
        with self._locked():
            best, best_idle = -1, 0
            for k in range(n):
                i = slots[(k + hint % n) % n]
                kind, gen, shared, until = unpack_state(self._get(i))
                if kind == NEVER:
                    idle = 0
                elif kind == LEASED and now >= until + cooldown:
                    idle = until
                elif kind == CLAIMING and now >= until:
                    idle = until
                else:
                    continue
                if best < 0 or idle < best_idle:
                    best, best_idle = i, idle
            if best < 0:
                return None
            self._supersede(best)
            gen = (unpack_state(self._get(best))[1] + 1) & GEN_MASK
            self._write_lease(best, gen, now, now + hold, rule, holder_hash, holder, session)
            self._put(best, pack_state(gen, CLAIMING, False, now + CLAIM_DEADLINE_MS))  # as the compiled
            self._index_put(best, gen, holder_hash, holder)  # claim: the replaced lease's entry is not current
            self._put(best, pack_state(gen, LEASED, False, now + hold))
            return best, gen

    def _write_lease(self, slot: int, gen: int, now: int, until: int, rule: int, holder_hash: int,
                     holder: bytes, session: bytes) -> None:
        at = self._at(slot)
        U64.pack_into(self._view, self._head(slot) + HEAD_TAG, self._tag_of(slot, gen, now))
        holder, session = holder[:HOLDER_MAX], session[:SESSION_MAX]
        U32.pack_into(self._view, at + OFF_RULE, rule)
        U64.pack_into(self._view, at + OFF_START, now)
        U64.pack_into(self._view, at + OFF_END0, until)
        U64.pack_into(self._view, self._head(slot) + HEAD_LAST, now)
        U64.pack_into(self._view, at + OFF_HASH, holder_hash)
        self._view[at + OFF_HLEN] = len(holder)
        self._view[at + OFF_SLEN] = len(session)
        self._view[at + OFF_HOLDER:at + OFF_HOLDER + HOLDER_MAX] = holder.ljust(HOLDER_MAX, b"\0")
        self._view[at + OFF_SESSION:at + OFF_SESSION + SESSION_MAX] = session.ljust(SESSION_MAX, b"\0")

    # -- keeping a lease ------------------------------------------------------------
    def renew(self, slot: int, gen: int, now: int, hold: int) -> int:
        """Extend a live lease to now + hold; returns the new expiry, or 0 if the lease is gone."""
        until = self._renew(slot, gen, now, hold)
        self._check_log(now)  # outside the lock: the engine's drain reads slots
        return until

    def _renew(self, slot: int, gen: int, now: int, hold: int) -> int:
        self._at(slot)
        with self._locked():
            kind, g, shared, until = unpack_state(self._get(slot))
            if kind != LEASED or g != gen or now >= until:
                return 0
            until = max(until, now + hold)
            self._put(slot, pack_state(g, LEASED, shared, until))
            last = self._head(slot) + HEAD_LAST
            if now > U64.unpack_from(self._view, last)[0]:  # the latest activity
                U64.pack_into(self._view, last, now)
            self.renewed += 1
            self._marked.add(slot)
            return until

    def _moved(self, slot: int, rec: SlotRecord) -> bool:
        """Whether the lease was renewed or extended since its start (see _pool.pyx)."""
        return rec.last > rec.start or rec.until != self._u64(slot, OFF_END0)

    def _supersede(self, slot: int) -> None:
        """A claim replaces the slot's lease (the lock held): log its final state if it moved since
        its start (see _pool.pyx)."""
        rec = self._record(slot)
        if rec.kind == LEASED and self._moved(slot, rec):
            self._replaced = self._raw(slot, rec)
            self._superseded.append(self._replaced)

    @staticmethod
    def _raw(slot: int, rec: SlotRecord) -> SupersededLease:
        return SupersededLease(slot, rec.gen, rec.shared, rec.start, rec.last, rec.until, rec.pool, rec.rule,
                               rec.number, rec.holder.decode("utf-8", "replace") or None,
                               rec.session.decode("utf-8", "replace") or None)

    def _take(self, marks: bool = True) -> list:
        """Superseded leases, then (with ``marks``) the marked slots in slot order (see _pool.pyx)."""
        out, self._superseded = self._superseded, []
        if not marks:
            return out
        marked, self._marked = self._marked, set()  # swapped first: a renewal meanwhile lands in the new set
        for slot in sorted(marked):
            with self._locked():
                rec = self._record(slot)
                moved = self._moved(slot, rec)
            if rec.kind in (LEASED, RETIRED) and moved:
                out.append(self._raw(slot, rec))
        return out

    def discard_renewals(self) -> None:
        """Forget the pending renewal log without reading the slots (a forked child)."""
        self._marked, self._superseded = set(), []

    def take_renewal_events(self, cls: Any, pools: Sequence[str | None], rules: Sequence[str],
                            marks: bool = True) -> list:
        """This process's renewals since the last call, as lease events (see _pool.pyx); without
        ``marks`` only the superseded."""
        out = []
        for slot, gen, shared, start, last, until, pool, rule, number, holder, session in self._take(marks):
            name = pools[pool] if pool < len(pools) else None
            if name is not None:
                out.append(cls("renew", name, f"+{number}", holder, session, rules[rule] if rule < len(rules) else None,
                               start / 1000.0, last / 1000.0, until / 1000.0, shared, f"{slot}.{gen}"))
        return out

    def set_log_limit(self, limit: int, on_full: Any, checkpoint_ms: int = 0) -> None:
        """``on_full(True)`` at checkpoints, ``on_full(False)`` when ``limit`` superseded leases wait
        (see _pool.pyx)."""
        self._log_limit, self._on_full = max(limit, 0), on_full
        self._checkpoint_every = checkpoint_ms if on_full is not None else 0
        self._checkpoint_due, self._checkpoint_floor = None, 0

    def _check_log(self, now: int) -> None:
        due = False
        every = self._checkpoint_every
        if every and (self._checkpoint_due is None or now >= self._checkpoint_due or now < self._checkpoint_floor):
            due = self._checkpoint_due is not None and now >= self._checkpoint_due
            self._checkpoint_due, self._checkpoint_floor = now + every, now - min(now, every)
        full = bool(self._log_limit) and len(self._superseded) >= self._log_limit
        if self._on_full is not None and (due or full):
            self._on_full(due)

    def pending_renewals(self) -> int:
        return len(self._marked) + len(self._superseded)

    def last_superseded(self) -> SupersededLease | None:
        """The final state of the lease this process's latest claim or share replaced (see _pool.pyx)."""
        return self._replaced

    def set_tag_key(self, key: bytes) -> None:
        """The 16-byte secret lease tags are keyed with (the segment keeps it)."""
        if len(key) != 16:
            raise ValueError("a tag key is 16 bytes")
        self._tag_key = bytes(key)

    def _tag_of(self, slot: int, gen: int, start: int) -> int:
        pool = U32.unpack_from(self._view, self._head(slot) + HEAD_POOL)[0]
        return lease_tag(self._tag_key, slot, pool, gen, start)

    def tag(self, slot: int) -> int:
        """The tag of the lease the slot holds (or last held): the end of its tokens."""
        return U64.unpack_from(self._view, self._head(slot) + HEAD_TAG)[0]

    def from_layout_3(self) -> None:
        """A segment of layout 3 (the lock held): each slot's holder hash moves from its head to its
        record, and its lease gets its tag where the hash was (see _pool.pyx)."""
        with self._locked():
            for slot in range(self.capacity):
                head = self._head(slot) + HEAD_TAG
                self._u64(slot, OFF_HASH, U64.unpack_from(self._view, head)[0])
                gen = unpack_state(self._get(slot))[1]
                U64.pack_into(self._view, head, self._tag_of(slot, gen, self._u64(slot, OFF_START)))

    def set_holds(self, holds: Sequence[int]) -> None:
        """Each pool's hold (ms) by registry entry, for renew_tokens(); 0 marks no pool."""
        if len(holds) > POOLS_MAX:
            raise ValueError(f"at most {POOLS_MAX} pools")
        self._holds = list(holds) + [0] * (POOLS_MAX - len(holds))

    def renew_tokens(self, tokens: Sequence[Any], now: int) -> int:
        """Renew leases given page tokens (see _parse_token); returns how many were alive."""
        alive = 0
        for token in tokens:
            fields = _parse_token(token)
            if fields is None:
                continue
            pool, slot, gen, tag = fields
            holds = self._holds
            if pool >= POOLS_MAX or slot >= self.capacity or not holds[pool]:
                continue
            if U32.unpack_from(self._view, self._head(slot) + HEAD_POOL)[0] != pool or self.tag(slot) != tag:
                continue
            if self._renew(slot, gen, now, holds[pool]):
                alive += 1
        self._check_log(now)
        return alive

    def heartbeat(self, token: Any, now: Any = None) -> bool:
        """One page's heartbeat: renew_tokens((token,), now) for ``now`` in seconds (None: the
        clock); True when the lease was alive."""
        return self.renew_tokens((token,), milliseconds(now)) > 0

    def heartbeat_many(self, tokens: Sequence[Any], now: Any = None) -> int:
        """Heartbeats of many pages at ``now`` in seconds (None: the clock); how many leases were
        alive."""
        return self.renew_tokens(tokens, milliseconds(now))

    def renew_many(self, slots: Sequence[int], gens: Sequence[int], now: int, hold: int) -> int:
        """renew() for many leases; returns how many were alive."""
        if len(gens) != len(slots):
            raise ValueError("one gen per slot expected")
        return sum(1 for s, g in zip(slots, gens) if self.renew(s, g, now, hold))

    def share(self, slots: Sequence[int], now: int, hold: int, rule: int, holder_hash: int,
              holder: bytes, session: bytes) -> tuple[int, int] | None:
        """Exhaustion: join the least recently active number, marked shared (see _pool.pyx)."""
        self._slot_list(slots)
        self._replaced = None
        with self._locked():
            best, best_until = -1, 0
            for i in slots:
                kind, gen, shared, until = unpack_state(self._get(i))
                if kind == LEASED and (best < 0 or until < best_until):
                    best, best_until = i, until
            if best < 0:
                return None
            kind, gen, shared, until = unpack_state(self._get(best))
            if now < until:  # still held: join it (a join is not the holder's activity)
                self._put(best, pack_state(gen, LEASED, True, max(until, now + hold)))
                return best, gen
            self._supersede(best)
            gen = (gen + 1) & GEN_MASK  # ended: a new shared lease for this holder
            self._write_lease(best, gen, now, now + hold, rule, holder_hash, holder, session)
            self._put(best, pack_state(gen, CLAIMING, True, now + CLAIM_DEADLINE_MS))  # as the compiled
            self._index_put(best, gen, holder_hash, holder)  # claim: the replaced lease's entry is not current
            self._put(best, pack_state(gen, LEASED, True, now + hold))
            return best, gen

    def find(self, slots: Sequence[int], holder_hash: int, holder: bytes, now: int) -> tuple[int, int] | None:
        """The live lease this holder has in these slots, or None (a scan; see lease_of)."""
        self._slot_list(slots)
        with self._locked():
            return self._first_held(slots, holder_hash, holder, now)

    def lease_of(self, holder_hash: int, holder: bytes, now: int) -> tuple[int, int] | None:
        """The live lease this holder has in any slot, or None: from the holder index (every slot
        is scanned once it has overflowed; see _holders.pxi)."""
        if not holder:
            return None  # anonymous leases are not entered (see _index_put)
        with self._locked():
            if self.index_overflowed():
                return self._first_held(range(self.capacity), holder_hash, holder, now)
            for k in range(INDEX_WINDOW):
                w = U64.unpack_from(self._view, self._places + ((holder_hash + k) & self._mask) * 8)[0]
                if w == 0:
                    return None  # places never empty again: the holder's entry is not further on
                slot = (w & 0xFFFFFFFF) - 1
                if w >> 50 == holder_hash >> 50 and 0 <= slot < self.capacity:
                    found = self._first_held((slot,), holder_hash, holder, now)
                    if found is not None:
                        return found
            return None

    def _first_held(self, slots: Any, holder_hash: int, holder: bytes, now: int) -> tuple[int, int] | None:
        for i in slots:
            kind, gen, shared, until = unpack_state(self._get(i))
            if kind != LEASED or now >= until or self._hash(i) != holder_hash:
                continue
            if self._record(i).holder == holder[:HOLDER_MAX]:
                return i, gen
        return None

    def _index_put(self, slot: int, gen: int, holder_hash: int, holder: bytes) -> None:
        """Enter a lease being claimed in the holder index (the lock held; see _holders.pxi)."""
        if not holder:
            return
        e = ((holder_hash >> 50) << 50) | ((gen & GEN_MASK) << 32) | (slot + 1)
        for k in range(INDEX_WINDOW):
            at = self._places + ((holder_hash + k) & self._mask) * 8
            w = U64.unpack_from(self._view, at)[0]
            if w == e:
                return
            if w == 0 or not self._current(w):
                U64.pack_into(self._view, at, e)
                return
        U64.pack_into(self._view, self._overflow, 1)  # no place: lookups scan from now on

    def _current(self, w: int) -> bool:
        """Whether index entry w still names its slot's lease (claimed or leased at its gen)."""
        slot = (w & 0xFFFFFFFF) - 1
        if slot >= self.capacity:
            return False
        kind, gen, _, _ = unpack_state(self._get(slot))
        return kind in (LEASED, CLAIMING) and gen == (w >> 32) & GEN_MASK

    def rebuild_index(self) -> None:
        """Enter every claimed or leased slot's lease in the holder index: for a segment made before
        the index (nothing else may use the table meanwhile)."""
        with self._locked():
            for i in range(self.capacity):
                rec = self._record(i)
                if rec.kind in (LEASED, CLAIMING):
                    self._index_put(i, rec.gen, self._hash(i), rec.holder)

    def index_overflowed(self) -> bool:
        """Whether an entry of the holder index found no place (lease_of() then scans)."""
        return U64.unpack_from(self._view, self._overflow)[0] != 0

    # -- reading and administering slots --------------------------------------------------
    def state(self, slot: int) -> tuple[int, int, bool, int]:
        return unpack_state(self._get(slot))

    def record(self, slot: int) -> SlotRecord:
        """The slot's lease, read consistently."""
        self._at(slot)
        with self._locked():
            return self._record(slot)

    def _record(self, slot: int) -> SlotRecord:
        """record() for callers that hold the lock (flock does not nest: an inner unlock frees it)."""
        at = self._at(slot)
        kind, gen, shared, until = unpack_state(self._get(slot))
        v = self._view
        hl, sl = min(v[at + OFF_HLEN], HOLDER_MAX), min(v[at + OFF_SLEN], SESSION_MAX)
        head = self._head(slot)
        return SlotRecord(kind, gen, shared, until, self._u64(slot, OFF_NUMBER),
                          U32.unpack_from(v, head + HEAD_POOL)[0],
                U32.unpack_from(v, at + OFF_RULE)[0], self._u64(slot, OFF_START),
                U64.unpack_from(v, head + HEAD_LAST)[0],
                bytes(v[at + OFF_HOLDER:at + OFF_HOLDER + hl]), bytes(v[at + OFF_SESSION:at + OFF_SESSION + sl]))

    def setup(self, slot: int, number: int, pool: int) -> None:
        self._at(slot)  # a slot outside the table: IndexError, as the compiled build
        self._u64(slot, OFF_NUMBER, number)
        U32.pack_into(self._view, self._head(slot) + HEAD_POOL, pool)

    def retire(self, slot: int, now: int) -> bool:
        """Out of circulation, ending a live lease now; True if one was cut short."""
        with self._locked():
            kind, gen, shared, until = unpack_state(self._get(slot))
            ends = kind in (LEASED, CLAIMING) and until > now  # a claim in progress ends too
            self._put(slot, pack_state(gen, RETIRED, shared, now if ends else until))
            if ends and kind == LEASED:  # the cut is logged as its end (see _pool.pyx)
                U64.pack_into(self._view, self._at(slot) + OFF_END0, now)
            return ends and kind == LEASED

    def revive(self, slot: int) -> None:
        with self._locked():
            kind, gen, shared, until = unpack_state(self._get(slot))
            if kind == RETIRED:
                self._put(slot, pack_state(gen, LEASED if until else NEVER, False, until))

    def _counter_at(self, byte_offset: int) -> int:
        if byte_offset < 0 or byte_offset % 8 or byte_offset + 8 > self.offset:
            raise ValueError("counters live 8-byte aligned in the header, before the slots")
        return byte_offset

    def add(self, byte_offset: int, n: int = 1) -> int:
        at = self._counter_at(byte_offset)
        with self._locked():
            old = U64.unpack_from(self._view, at)[0]
            U64.pack_into(self._view, at, (old + n) & (2**64 - 1))
            return old

    def counter(self, byte_offset: int) -> int:
        return U64.unpack_from(self._view, self._counter_at(byte_offset))[0]
