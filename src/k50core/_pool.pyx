# cython: language_level=3
# Lock-free number slots (compiled). Segment layout: k50core/pools.py; its constants, the state word's
# fields and the declarations of this module's classes: _pool.pxd.
#
# A slot's lease state is one 64-bit word changed only by compare-and-swap
# (GCC __atomic builtins), so worker processes sharing a segment never lock:
#   gen (18 bits) | kind (2) | shared (1) | until_ms (43)
# kind NEVER: free, idle since forever. CLAIMING: a process is writing the
# lease fields, until = a short deadline after which anyone may take it (a
# claimer killed mid-write strands nothing). LEASED: held while now < until,
# cooling until until + cooldown, then free and idle since until. RETIRED:
# out of circulation. Expiry is implicit in the clock, so a killed process's
# leases just run out.
#
# The table is two arrays: heads (HEAD_SIZE bytes per slot: the state word, the
# lease's token tag, last activity, pool), then records (SLOT_SIZE bytes: the
# holder's hash, number, rule, start, the end the lease started with, holder,
# session). Scans for a free number and renewals (a heartbeat checks the tag)
# touch only the heads, which sit two to a cache line.

cimport cython
from cpython cimport array as carray
from cpython.dict cimport PyDict_GetItemWithError
from cpython.float cimport PyFloat_CheckExact
from cpython.list cimport PyList_GET_SIZE
from cpython.long cimport PyLong_CheckExact
from cpython.object cimport Py_SIZE, PyObject
from cpython.pyport cimport PY_SSIZE_T_MAX
from cpython.sequence cimport PySequence_Fast, PySequence_Fast_GET_SIZE, PySequence_Fast_ITEMS
from cpython.tuple cimport PyTuple_Check
from cpython.unicode cimport PyUnicode_CheckExact, PyUnicode_DecodeUTF8
from libc.stdint cimport UINT64_MAX, uint8_t, uint64_t
from libc.stdlib cimport calloc, free, malloc, realloc
from libc.string cimport memcmp, memcpy, memset

from k50core._csrc.atomics cimport k50_add, k50_cas, k50_load, k50_popcount, k50_store
from k50core._csrc.bounds cimport GEN_MASK, LOW32, SHARED_BIT, UNTIL_MASK, k50_any_outside
from k50core._csrc.prefetch cimport k50_prefetch, k50_prefetch_object, k50_prefetch_write
from k50core._csrc.records cimport k50_lease_text, k50_named, k50_number_text
from k50core._csrc.siphash cimport k50_lease_tag
from k50core._csrc.token_text cimport k50_ascii, k50_token32

from k50core._engine_py.records import SlotRecord, SupersededLease  # one record type per concept, both builds
from k50core.clock import milliseconds as _milliseconds  # the error for a bad ``now``

# The layout as this build compiled it; the reference (_engine_py/pool.py) has the same dict, and a
# test keeps the two (and pools.py, which takes its constants from the reference) equal.
LAYOUT = {"HEAD_SIZE": HEAD_SIZE, "HEAD_TAG": HEAD_TAG, "HEAD_LAST": HEAD_LAST, "HEAD_POOL": HEAD_POOL,
          "SLOT_SIZE": SLOT_SIZE, "OFF_NUMBER": OFF_NUMBER, "OFF_RULE": OFF_RULE, "OFF_START": OFF_START,
          "OFF_END0": OFF_END0, "OFF_HASH": OFF_HASH, "OFF_HLEN": OFF_HLEN, "OFF_SLEN": OFF_SLEN,
          "OFF_HOLDER": OFF_HOLDER, "HOLDER_MAX": HOLDER_MAX, "OFF_SESSION": OFF_SESSION,
          "SESSION_MAX": SESSION_MAX, "NEVER": KIND_NEVER, "CLAIMING": KIND_CLAIMING, "LEASED": KIND_LEASED,
          "RETIRED": KIND_RETIRED, "CLAIM_DEADLINE_MS": CLAIM_DEADLINE_MS, "POOLS_MAX": POOLS_MAX,
          "TOKEN_LENGTH": TOKEN_LENGTH}


cdef object _text(const uint8_t* at, Py_ssize_t n):
    """A holder or session id field as text (None when empty); bad UTF-8 replaced."""
    return PyUnicode_DecodeUTF8(<const char*>at, n, "replace") if n else None


cdef enum:
    # renew_tokens' look-ahead (tokens): the str objects this far ahead are fetched, the slots
    # of those half as far ahead (their tokens parsed by then); a ring keeps the parsed fields
    AHEAD_TOKEN = 16
    AHEAD_SLOT = 8
    AHEAD_RING = 16  # a power of two, > AHEAD_SLOT (an entry is read after the one AHEAD_SLOT on is parsed)


cdef inline bint _parse_token(const char* s, Py_ssize_t n, uint64_t* fields) noexcept nogil:
    """(pool, slot, gen, tag) from the 32 lowercase hex digits make_token writes."""
    return n == TOKEN_LENGTH and k50_token32(s, fields)


@cython.final
cdef class SlotTable:
    """Number slots in a writable buffer (bytearray or mmap); same API as the reference.

    Times are integer milliseconds. ``slots`` arguments are ``array('i')`` of
    slot indices (one pool's numbers). Returns ``(slot, gen)`` pairs.
    """

    def __cinit__(self):
        self.marks = NULL
        self.n_marked = 0
        self.superseded = []
        self.replaced = None
        self.candidates = {}
        self.version = 0
        self.lists_bound = -1
        self.renewed = 0
        self.log_limit = PY_SSIZE_T_MAX
        self.on_full = None
        self.checkpoint_every = 0
        self.checkpoint_due = UINT64_MAX
        self.checkpoint_floor = 0
        self.tag_k0 = self.tag_k1 = 0
        memset(self.holds, 0, sizeof(self.holds))

    def __dealloc__(self):
        free(self.marks)

    def __init__(self, buffer, Py_ssize_t offset, Py_ssize_t capacity, fd=None):
        # fd: the segment file; the reference locks it, the compiled table needs no lock
        cdef uint8_t[::1] view = buffer
        if offset < 0 or capacity < 0 or capacity >= <Py_ssize_t>LOW32 \
                or offset + table_bytes(capacity) > view.shape[0]:
            raise ValueError("the slot table does not fit in the buffer (see table_bytes)")
        if (<size_t>&view[0] + offset) % 8:
            raise ValueError("the slot table must be 8-byte aligned")
        self._buffer = buffer
        self.heads = &view[0] + offset
        self.base = self.heads + capacity * HEAD_SIZE
        self.capacity = capacity
        self.index_overflow = <uint64_t*>(self.base + capacity * SLOT_SIZE)
        self.index_places = self.index_overflow + INDEX_HEADER // 8
        self.index_mask = <uint64_t>_index_places(capacity) - 1
        self.offset = offset
        self.marks = <uint64_t*>calloc(capacity // 64 + 1, sizeof(uint64_t))
        if self.marks == NULL:
            raise MemoryError()

    cdef inline uint8_t* _slot(self, Py_ssize_t i) except NULL:
        if i < 0 or i >= self.capacity:
            raise IndexError(f"slot {i} outside the table")
        return self.base + i * SLOT_SIZE

    cdef inline uint64_t* _state(self, Py_ssize_t i) noexcept nogil:
        return <uint64_t*>(self.heads + i * HEAD_SIZE)

    cdef inline uint64_t* _hash(self, Py_ssize_t i) noexcept nogil:
        return <uint64_t*>(self.base + i * SLOT_SIZE + OFF_HASH)

    cdef inline uint64_t* _tag(self, Py_ssize_t i) noexcept nogil:
        return <uint64_t*>(self.heads + i * HEAD_SIZE + HEAD_TAG)

    cdef inline uint64_t* _last(self, Py_ssize_t i) noexcept nogil:
        return <uint64_t*>(self.heads + i * HEAD_SIZE + HEAD_LAST)

    cdef inline unsigned int* _pool(self, Py_ssize_t i) noexcept nogil:
        return <unsigned int*>(self.heads + i * HEAD_SIZE + HEAD_POOL)

    cdef int _check(self, const int[::1] slots) except -1:
        cdef Py_ssize_t k
        cdef bint bad = False
        with nogil:
            for k in range(slots.shape[0]):
                bad |= slots[k] < 0 or slots[k] >= self.capacity
        if bad:
            raise IndexError("a slot outside the table")
        return 0

    cdef inline const int* _slot_list(self, object slots, Py_ssize_t* n, bint checked=True) except? NULL:
        """A pool's slots, an array('i'), read in place: no buffer to acquire on each new visitor
        (a typed memoryview cost ~0.5 us a call). Every index is checked first (unless ``checked``
        is False: the caller checks what it reads, see _in_table), in one branchless pass the
        compiler vectorises. The pointer is good while the GIL is held: callers keep it."""
        cdef const int* at
        if type(slots) is not carray.array or (<carray.array>slots).ob_descr.typecode != c'i':
            raise TypeError("slots: expected an array('i') of slot indices")
        n[0] = Py_SIZE(<object>slots)
        if n[0] == 0:
            return NULL
        at = (<carray.array>slots).data.as_ints
        if checked:
            self._in_table(at, n[0])
        return at

    cdef inline int _in_table(self, const int* at, Py_ssize_t n) except -1:
        if k50_any_outside(at, n, <unsigned int>self.capacity):
            raise IndexError("a slot outside the table")
        return 0

    cdef Py_ssize_t _idlest(self, const int* slots, Py_ssize_t start, Py_ssize_t stop, uint64_t now,
                            uint64_t cooldown, Py_ssize_t best) noexcept nogil:
        """The free slot idle longest among slots[start:stop] and ``best`` (-1: none yet)."""
        cdef Py_ssize_t k, i
        cdef long long idle, best_idle = _idle(k50_load(self._state(best)), now, cooldown) if best >= 0 else -1
        if best_idle == 0:
            return best  # never used: nothing is idle longer
        for k in range(start, stop):
            i = slots[k]
            idle = _idle(k50_load(self._state(i)), now, cooldown)
            if idle < 0 or (best >= 0 and idle >= best_idle):
                continue
            best, best_idle = i, idle
            if idle == 0:
                break
        return best

    # -- claiming a free number -------------------------------------------------------
    def claim(self, slots, Py_ssize_t hint, uint64_t now, uint64_t hold, uint64_t cooldown,
              unsigned int rule, uint64_t holder_hash, bytes holder, bytes session):
        """Lease the free number idle longest; None when none is free."""
        cdef Py_ssize_t n, j, k, best
        cdef uint64_t best_state, claimed
        cdef int attempt = 0, scans
        cdef bint fresh, taken = False
        cdef _Candidates free_now
        cdef const int* at = self._slot_list(slots, &n, False)  # each scan checks it, each pick its index
        self.replaced = None
        if n == 0:
            return None
        hint = hint % n
        # (The GIL is kept: the slot array is read in place, so no other thread may resize it.)
        free_now = _candidates_for(self, slots, at, n, now, cooldown, &fresh)
        scans = fresh
        while attempt < CAS_ATTEMPTS:  # attempts: compare-and-swaps lost to another worker
            # idle longest, from the process's hint on, then wrapping: ties spread across workers
            if free_now is None:  # a pool too large for the list's keys: a scan each time
                self._in_table(at, n)
                best = self._idlest(at, hint, n, now, cooldown, -1)
                best = self._idlest(at, 0, hint, now, cooldown, best)
                if best < 0:
                    return None
                best_state = k50_load(self._state(best))
                if _idle(best_state, now, cooldown) < 0:
                    attempt += 1
                    continue  # taken meanwhile: look again
            else:
                j = free_now.pick(hint, fresh)
                if j < 0 and (not fresh or taken) and scans < 3:  # stale, used up, or emptied by
                    free_now.scan(self, slots, at, n, now, cooldown, self.version)  # others: look again
                    fresh, taken, scans = True, False, scans + 1
                    j = free_now.pick(hint, True)
                if j < 0:
                    return None
                k = free_now.position(j)
                self._in_table(&at[k], 1)  # (the slot list changed in place since the scan?)
                best = at[k]
                best_state = free_now.take(j)
                taken = True
                if k50_load(self._state(best)) != best_state:
                    continue  # taken (or changed) since the scan: the next entry (each is looked at once)
            claimed = _pack(_gen(best_state) + 1, KIND_CLAIMING, False, now + CLAIM_DEADLINE_MS)
            if not k50_cas(self._state(best), best_state, claimed):
                attempt += 1
                continue  # another worker took it first: look again
            self._supersede(best, best_state)
            self._write_lease(best, _gen(claimed), now, now + hold, rule, holder_hash, holder, session)
            _index_put(self, best, _gen(claimed), holder_hash, len(holder))
            if k50_cas(self._state(best), claimed, _pack(_gen(claimed), KIND_LEASED, False, now + hold)):
                self._ends_at(now + hold)
                return best, <long long>(_gen(claimed))
            attempt += 1  # retired while being claimed: another number
        return None

    cdef _write_lease(self, Py_ssize_t slot, uint64_t gen, uint64_t now, uint64_t until, unsigned int rule,
                      uint64_t holder_hash, bytes holder, bytes session):
        cdef Py_ssize_t hl = min(len(holder), HOLDER_MAX), sl = min(len(session), SESSION_MAX)
        cdef uint8_t* p = self.base + slot * SLOT_SIZE
        # the token's tag, computed once here: a heartbeat compares it, it does not hash
        self._tag(slot)[0] = k50_lease_tag(self.tag_k0, self.tag_k1, slot, self._pool(slot)[0], gen, now)
        self._hash(slot)[0] = holder_hash
        (<unsigned int*>(p + OFF_RULE))[0] = rule
        (<uint64_t*>(p + OFF_START))[0] = now
        (<uint64_t*>(p + OFF_END0))[0] = until
        self._last(slot)[0] = now
        p[OFF_HLEN] = <uint8_t>hl
        p[OFF_SLEN] = <uint8_t>sl
        memset(p + OFF_HOLDER, 0, HOLDER_MAX)
        memset(p + OFF_SESSION, 0, SESSION_MAX)
        memcpy(p + OFF_HOLDER, <const char*>holder, hl)
        memcpy(p + OFF_SESSION, <const char*>session, sl)

    # -- keeping a lease ------------------------------------------------------------
    def renew(self, Py_ssize_t slot, uint64_t gen, uint64_t now, uint64_t hold):
        """Extend a live lease to now + hold; returns the new expiry, or 0 if the lease is gone."""
        self._slot(slot)
        cdef uint64_t until = self._renew(slot, gen, now, hold)
        self._check_log(now)
        return until

    cdef inline uint64_t _extend(self, Py_ssize_t slot, uint64_t gen, uint64_t now, uint64_t hold) noexcept nogil:
        """The lease's CAS: its end moved to now + hold (never back), its last activity to now."""
        cdef uint64_t s, until
        cdef int attempt
        cdef uint64_t* state = self._state(slot)
        cdef uint64_t* last
        for attempt in range(CAS_ATTEMPTS):
            s = k50_load(state)
            if _kind(s) != KIND_LEASED or _gen(s) != gen or now >= _until(s):
                return 0
            until = max(_until(s), now + hold)
            if k50_cas(state, s, _pack(_gen(s), KIND_LEASED, (s & SHARED_BIT) != 0, until)):
                self._ends_at(until)
                last = self._last(slot)
                if now > last[0]:  # the latest activity, whichever clock renewed last (two renewals at
                    last[0] = now  # once may leave the earlier: a lock-prefixed max was not worth it)
                return until
        return 0

    cdef inline void _ends_at(self, uint64_t until) noexcept nogil:
        """A lease was given this end. One at or before a candidate list's bound (a clock behind
        the list's scan, or no hold and no cooldown) may free its number sooner than the list's
        order allows for: the lists rescan. (One compare on the renewal's path.)"""
        if <long long>until <= self.lists_bound:
            self.version += 1

    cdef inline uint64_t _renew(self, Py_ssize_t slot, uint64_t gen, uint64_t now, uint64_t hold) noexcept nogil:
        """Extend a live lease and log it (callers hold the GIL: the marks are this process's)."""
        cdef uint64_t until = self._extend(slot, gen, now, hold)
        if until:
            self._mark(slot)
        return until

    cdef inline void _mark(self, Py_ssize_t slot) noexcept nogil:
        cdef uint64_t bit = (<uint64_t>1) << (slot & 63)
        cdef uint64_t* word = self.marks + (slot >> 6)
        self.renewed += 1
        if not (word[0] & bit):
            word[0] |= bit
            self.n_marked += 1

    cdef inline bint _moved(self, Py_ssize_t slot, uint64_t s) noexcept nogil:
        """Whether the lease in state ``s`` was renewed or extended since its start (its start
        event, or the end event of a retirement that cut it, holds everything else)."""
        cdef uint8_t* p = self.base + slot * SLOT_SIZE
        return self._last(slot)[0] > (<uint64_t*>(p + OFF_START))[0] or _until(s) != (<uint64_t*>(p + OFF_END0))[0]

    cdef _supersede(self, Py_ssize_t slot, uint64_t s):
        """A claim is about to replace the lease in state ``s`` (the slot is CLAIMING, so nothing
        else writes it): if that lease moved since its start, log its final activity and end now,
        as the renewal log cannot once the slot holds the new lease."""
        cdef uint8_t* p = self.base + slot * SLOT_SIZE
        cdef uint64_t start = (<uint64_t*>(p + OFF_START))[0], last = self._last(slot)[0]
        if _kind(s) != KIND_LEASED or not self._moved(slot, s):
            return
        self.replaced = k50_named(SupersededLease, (
            slot, <long long>_gen(s), (s & SHARED_BIT) != 0, start, last, _until(s),
            self._pool(slot)[0], (<unsigned int*>(p + OFF_RULE))[0], (<uint64_t*>(p + OFF_NUMBER))[0],
            _text(p + OFF_HOLDER, min(<Py_ssize_t>p[OFF_HLEN], HOLDER_MAX)),
            _text(p + OFF_SESSION, min(<Py_ssize_t>p[OFF_SLEN], SESSION_MAX))))
        self.superseded.append(self.replaced)

    cdef list _take(self, cls, pools, rules, bint marks=True):
        """The renewal log since the last call: superseded leases first, then (with ``marks``) the
        marked slots in slot order, each read consistently (the state word before and after). As
        ``cls`` events (see take_renewal_events), or (slot, gen, last, until) when ``cls`` is None."""
        cdef list out = [], earlier = self.superseded
        cdef Py_ssize_t w, b, slot, words = self.capacity // 64 + 1, n_pools = len(pools)
        cdef uint64_t bits, s, start, last
        cdef unsigned int pool, rule
        cdef uint8_t* p
        cdef int attempt
        self.superseded = []
        for slot, gen, shared, start, last, until, pool, rule, number, holder, session in earlier:
            self._append(out, cls, pools, rules, slot, gen, shared, start, last, until, pool, rule, number,
                         holder, session)
        if not marks:
            return out
        for w in range(words):
            bits = self.marks[w]
            if not bits:
                continue
            self.marks[w] = 0
            self.n_marked -= k50_popcount(bits)  # (marks made meanwhile, by code a collection runs, stay counted)
            for b in range(64):
                if not (bits >> b) & 1:
                    continue
                slot = w * 64 + b
                p = self.base + slot * SLOT_SIZE
                pool = self._pool(slot)[0]
                if cls is not None and (pool >= n_pools or pools[pool] is None):
                    continue
                for attempt in range(CAS_ATTEMPTS):
                    s = k50_load(self._state(slot))
                    start, last = (<uint64_t*>(p + OFF_START))[0], self._last(slot)[0]
                    rule = (<unsigned int*>(p + OFF_RULE))[0]
                    holder = session = None
                    if cls is not None:  # events name the holder
                        holder = _text(p + OFF_HOLDER, min(<Py_ssize_t>p[OFF_HLEN], HOLDER_MAX))
                        session = _text(p + OFF_SESSION, min(<Py_ssize_t>p[OFF_SLEN], SESSION_MAX))
                    if k50_load(self._state(slot)) == s:
                        break
                # a mark may be stale (its lease passed on, and its claimer logged it): what holds
                # the slot now is logged only if it moved since its start
                if (_kind(s) == KIND_LEASED or _kind(s) == KIND_RETIRED) and self._moved(slot, s):
                    self._append(out, cls, pools, rules, slot, _gen(s), (s & SHARED_BIT) != 0, start, last,
                                 _until(s), pool, rule, (<uint64_t*>(p + OFF_NUMBER))[0], holder, session)
        return out

    cdef int _append(self, list out, cls, pools, rules, Py_ssize_t slot, uint64_t gen, bint shared, uint64_t start,
                     uint64_t last, uint64_t until, unsigned int pool, unsigned int rule, uint64_t number,
                     holder, session) except -1:
        if cls is None:
            out.append((slot, <long long>gen, <long long>last, <long long>until))
            return 0
        name = pools[pool] if pool < <size_t>len(pools) else None
        if name is not None:
            out.append(k50_named(cls, (
                "renew", name, k50_number_text(number), holder, session,
                rules[rule] if rule < <size_t>len(rules) else None, start / 1000.0, last / 1000.0, until / 1000.0,
                shared, k50_lease_text(slot, gen))))
        return 0

    def discard_renewals(self):
        """Forget the pending renewal log without reading the slots (a forked child: its parent
        logs them)."""
        memset(self.marks, 0, (self.capacity // 64 + 1) * sizeof(uint64_t))
        self.n_marked = 0
        self.superseded = []

    def take_renewal_events(self, cls, pools, rules, bint marks=True):
        """This process's renewals since the last call, as lease events: ``cls(event, pool, number, visitor_id, session_id, rule,
        start, last, end, shared, lease)`` (a tuple subclass), each a "renew" with the lease's latest
        activity and end. ``pools[i]`` names registry entry i (None: skip its slots); ``rules[i]``
        names rule i. Without ``marks`` only the superseded leases (the renewals stay marked)."""
        if not (isinstance(cls, type) and issubclass(cls, tuple)):
            raise TypeError("cls: expected a tuple subclass")
        return self._take(cls, tuple(pools), tuple(rules), marks)  # tuples: nothing run meanwhile can shrink them

    def set_log_limit(self, Py_ssize_t limit, on_full, uint64_t checkpoint_ms=0):
        """After a renewal at clock ``now``: ``on_full(True)`` when ``checkpoint_ms`` (0: never) have
        passed since the last checkpoint, ``on_full(False)`` when ``limit`` (0: no limit) superseded
        leases wait. The engine drains then: renewals only at checkpoints."""
        self.log_limit = limit if limit > 0 else PY_SSIZE_T_MAX
        self.on_full = on_full
        self.checkpoint_every = checkpoint_ms if on_full is not None else 0
        self.checkpoint_due = 0 if self.checkpoint_every else UINT64_MAX  # the first renewal sets it
        self.checkpoint_floor = 0

    cdef inline int _check_log(self, uint64_t now) except -1:
        # the test inlined into every renewal; the call (rare) out of line
        if now >= self.checkpoint_due or now < self.checkpoint_floor \
                or PyList_GET_SIZE(self.superseded) >= self.log_limit:
            return self._log_full(now)
        return 0

    cdef int _log_full(self, uint64_t now) except -1:
        cdef bint due = False
        if self.checkpoint_every and (now >= self.checkpoint_due or now < self.checkpoint_floor):
            # the first renewal, or a clock set back by more than an interval, starts the count anew
            due = self.checkpoint_due != 0 and now >= self.checkpoint_due
            self.checkpoint_due = now + self.checkpoint_every
            self.checkpoint_floor = now - min(now, self.checkpoint_every)
        if self.on_full is not None and (due or PyList_GET_SIZE(self.superseded) >= self.log_limit):
            self.on_full(due)
        return 0

    def pending_renewals(self):
        return self.n_marked + len(self.superseded)

    def last_superseded(self):
        """The final state of the lease that this process's latest claim() or share() replaced
        (if it moved since its start): a SupersededLease; else None. Also in the renewal log until the next drain: a caller that
        stores it with the new lease's start keeps it through a kill before that drain."""
        return self.replaced

    def set_tag_key(self, bytes key):
        """The 16-byte secret lease tags are keyed with (the segment keeps it)."""
        if len(key) != 16:
            raise ValueError("a tag key is 16 bytes")
        self.tag_k0 = int.from_bytes(key[:8], "little")
        self.tag_k1 = int.from_bytes(key[8:], "little")

    def tag(self, Py_ssize_t slot):
        """The tag of the lease the slot holds (or last held): the end of its tokens."""
        self._slot(slot)
        return self._tag(slot)[0]

    def from_layout_3(self):
        """A segment of layout 3 (the lock held): each slot's holder hash moves from its head to its
        record, and its lease gets its tag, under the current key, where the hash was."""
        cdef Py_ssize_t i
        cdef uint8_t* p
        for i in range(self.capacity):
            p = self.base + i * SLOT_SIZE
            self._hash(i)[0] = self._tag(i)[0]  # layout 3 keeps the hash where layout 4 keeps the tag
            self._tag(i)[0] = k50_lease_tag(self.tag_k0, self.tag_k1, i, self._pool(i)[0],
                                            _gen(k50_load(self._state(i))), (<uint64_t*>(p + OFF_START))[0])

    def set_holds(self, holds):
        """Each pool's hold (ms) by registry entry, for renew_tokens(); 0 marks no pool."""
        cdef Py_ssize_t k, n = len(holds)
        if n > POOLS_MAX:
            raise ValueError(f"at most {POOLS_MAX} pools")
        for k in range(POOLS_MAX):
            self.holds[k] = holds[k] if k < n else 0

    @cython.binding(False)  # builtin methods: called without the bound-method wrapper
    def renew_tokens(self, tokens, uint64_t now):
        """Renew leases given page tokens (see _parse_token); returns how many were alive.

        A token renews only a live lease of that generation in a slot of that
        pool (set_holds() gives each pool's hold); anything else is ignored.
        """
        cdef Py_ssize_t alive = 0, n = 0, k, count
        cdef const char* s
        cdef PyObject** items
        # a list or tuple is read in place (borrowed items, no iterator); anything else is copied once
        cdef object seq = PySequence_Fast(tokens, "tokens: expected an iterable of token strings")
        cdef uint64_t parsed[AHEAD_RING][4]
        cdef bint ok[AHEAD_RING]
        count = PySequence_Fast_GET_SIZE(seq)
        items = PySequence_Fast_ITEMS(seq)
        for k in range(min(count, AHEAD_SLOT)):
            ok[k] = self._token_ahead(items[k], parsed[k])
        for k in range(count):
            if k + AHEAD_TOKEN < count:
                k50_prefetch_object(items[k + AHEAD_TOKEN])
            if k + AHEAD_SLOT < count:
                ok[(k + AHEAD_SLOT) & (AHEAD_RING - 1)] = self._token_ahead(
                    items[k + AHEAD_SLOT], parsed[(k + AHEAD_SLOT) & (AHEAD_RING - 1)])
            if ok[k & (AHEAD_RING - 1)] and self._renew_fields(parsed[k & (AHEAD_RING - 1)], now):
                alive += 1
        self._check_log(now)
        return alive

    cdef inline bint _token_ahead(self, PyObject* item, uint64_t* fields) noexcept:
        """A token of the batch parsed ahead of its turn, its slot's head fetched meanwhile."""
        cdef Py_ssize_t n = 0
        cdef const char* s = k50_ascii(item, &n)
        if s == NULL or not _parse_token(s, n, fields) or fields[0] >= POOLS_MAX \
                or fields[1] >= <uint64_t>self.capacity:
            return False
        k50_prefetch_write(self._state(<Py_ssize_t>fields[1]))
        return True

    cdef inline bint _renew_token(self, const char* s, Py_ssize_t n, uint64_t now) noexcept nogil:
        """One token's renewal: a live lease of that generation in a slot of that pool."""
        cdef uint64_t fields[4]
        if not _parse_token(s, n, fields) or fields[0] >= POOLS_MAX or fields[1] >= <uint64_t>self.capacity:
            return False
        return self._renew_fields(fields, now)

    cdef inline bint _renew_fields(self, uint64_t* fields, uint64_t now) noexcept nogil:
        """A parsed token's renewal (pool, slot and gen in range: _parse_token and the caller)."""
        if self._pool(<Py_ssize_t>fields[1])[0] != fields[0] or self.holds[fields[0]] == 0 \
                or self._tag(<Py_ssize_t>fields[1])[0] != fields[3]:
            return False  # (a tag of another generation fails the renewal's check of the gen)
        return self._renew(<Py_ssize_t>fields[1], fields[2], now, self.holds[fields[0]]) != 0

    @cython.binding(False)
    def heartbeat_many(self, tokens, now=None):
        """Heartbeats of many pages at ``now`` in seconds (None: the clock): renew_tokens() with
        the clock read in C; how many leases were alive. (Engine.heartbeat_many is this, bound.)"""
        cdef double ms = _clock_ms(now)
        return self.renew_tokens(tokens, <uint64_t>ms if ms >= 0.0 else _milliseconds(now))

    @cython.binding(False)
    def heartbeat(self, token, now=None):
        """One page's heartbeat: renew_tokens((token,), now) for ``now`` in seconds (None: the
        clock); True when the lease was alive. (Engine.heartbeat is this, bound.)"""
        cdef const char* s
        cdef double ms = _clock_ms(now)
        cdef Py_ssize_t n = 0
        cdef bint alive
        if ms < 0.0:  # a clock of another type, or out of range: the general path judges it
            return self.renew_tokens((token,), _milliseconds(now)) > 0
        s = k50_ascii(<PyObject*>token, &n)
        alive = s != NULL and self._renew_token(s, n, <uint64_t>ms)
        self._check_log(<uint64_t>ms)
        return alive

    def renew_many(self, const int[::1] slots, const long long[::1] gens, uint64_t now, uint64_t hold):
        """renew() for many leases; returns how many were alive."""
        cdef Py_ssize_t k, n = slots.shape[0], alive = 0
        if gens.shape[0] != n:
            raise ValueError("one gen per slot expected")
        self._check(slots)
        cdef Py_ssize_t i
        cdef Py_ssize_t* done = <Py_ssize_t*>calloc(n + 1, sizeof(Py_ssize_t))
        if done == NULL:
            raise MemoryError()
        with nogil:  # the CASes without the GIL; the marks (this process's, unsynchronised) after
            for k in range(n):
                i = slots[k]  # read once, checked here: another thread may change the array meanwhile
                if 0 <= i < self.capacity and self._extend(i, <uint64_t>gens[k], now, hold):
                    done[alive] = i
                    alive += 1
        for k in range(alive):
            self._mark(done[k])
        free(done)
        self._check_log(now)
        return alive

    def share(self, slots, uint64_t now, uint64_t hold, unsigned int rule,
              uint64_t holder_hash, bytes holder, bytes session):
        """Exhaustion: join the least recently active number, marked shared.

        A number still held is joined as it is (its holder keeps it too); one
        whose lease has ended (cooling) starts a new shared lease for this
        holder, so the old holder's token no longer renews it.
        """
        cdef Py_ssize_t n, k, i, best
        cdef uint64_t s, best_state, claimed, until
        cdef int attempt, kind
        cdef const int* at = self._slot_list(slots, &n)
        self.replaced = None
        for attempt in range(CAS_ATTEMPTS):
            best = -1
            best_state = 0
            for k in range(n):
                i = at[k]
                s = k50_load(self._state(i))
                kind = _kind(s)
                if kind != KIND_LEASED:
                    continue
                if best < 0 or _until(s) < _until(best_state):
                    best, best_state = i, s
            if best < 0:
                return None
            if now < _until(best_state):  # still held: join it
                until = max(_until(best_state), now + hold)
                if k50_cas(self._state(best), best_state, _pack(_gen(best_state), KIND_LEASED, True, until)):
                    self._ends_at(until)
                    return best, <long long>(_gen(best_state))
                continue
            claimed = _pack(_gen(best_state) + 1, KIND_CLAIMING, True, now + CLAIM_DEADLINE_MS)
            if not k50_cas(self._state(best), best_state, claimed):
                continue
            self._supersede(best, best_state)
            self._write_lease(best, _gen(claimed), now, now + hold, rule, holder_hash, holder, session)
            _index_put(self, best, _gen(claimed), holder_hash, len(holder))
            if k50_cas(self._state(best), claimed, _pack(_gen(claimed), KIND_LEASED, True, now + hold)):
                self._ends_at(now + hold)
                return best, <long long>(_gen(claimed))
        return None

    def find(self, slots, uint64_t holder_hash, bytes holder, uint64_t now):
        """The live lease this holder has in these slots, or None (a scan; see lease_of)."""
        cdef Py_ssize_t n, k, i, hl = min(len(holder), HOLDER_MAX)
        cdef uint64_t gen
        cdef const uint8_t* text = holder
        cdef const int* at = self._slot_list(slots, &n)
        for k in range(n):  # (the GIL kept: the slot array is read in place, see _slot_list)
            i = at[k]
            if self._hash(i)[0] == holder_hash and self._holds(i, holder_hash, text, hl, now, &gen):
                return i, <long long>gen
        return None

    def lease_of(self, uint64_t holder_hash, bytes holder, uint64_t now):
        """The live lease this holder has in any slot, or None (see _holders.pxi)."""
        return _lease_of(self, holder_hash, holder, now)

    def index_overflowed(self):
        """Whether an entry of the holder index found no place (lease_of() then scans)."""
        return k50_load(self.index_overflow) != 0

    def rebuild_index(self):
        """Enter every claimed or leased slot's lease in the holder index: for a segment made before
        the index (nothing else may use the table meanwhile)."""
        _rebuild_index(self)

    cdef inline bint _holds(self, Py_ssize_t i, uint64_t holder_hash, const uint8_t* holder, Py_ssize_t hl,
                            uint64_t now, uint64_t* gen) noexcept:
        """Whether slot i holds a live lease of this holder (its gen to *gen); a seqlock-checked
        read: the gen read again after the holder's bytes, which a claim rewrites."""
        cdef uint64_t s = k50_load(self._state(i))
        cdef uint8_t* p = self.base + i * SLOT_SIZE
        if _kind(s) != KIND_LEASED or now >= _until(s) or self._hash(i)[0] != holder_hash:
            return False
        if p[OFF_HLEN] != hl or memcmp(p + OFF_HOLDER, holder, hl) != 0 or _gen(k50_load(self._state(i))) != _gen(s):
            return False
        gen[0] = _gen(s)
        return True

    # -- reading and administering slots --------------------------------------------------
    def state(self, Py_ssize_t slot):
        """(kind, gen, shared, until_ms) of a slot."""
        self._slot(slot)
        cdef uint64_t s = k50_load(self._state(slot))
        return _kind(s), <long long>_gen(s), (s & SHARED_BIT) != 0, <long long>_until(s)

    def record(self, Py_ssize_t slot):
        """The slot's lease (a SlotRecord), read consistently."""
        cdef uint8_t* p = self._slot(slot)
        cdef uint64_t s
        cdef int attempt
        for attempt in range(CAS_ATTEMPTS):
            s = k50_load(self._state(slot))
            out = (_kind(s), <long long>_gen(s), (s & SHARED_BIT) != 0, <long long>_until(s),
                   (<uint64_t*>(p + OFF_NUMBER))[0], self._pool(slot)[0],
                   (<unsigned int*>(p + OFF_RULE))[0], (<uint64_t*>(p + OFF_START))[0],
                   self._last(slot)[0],
                   (<char*>(p + OFF_HOLDER))[:min(<Py_ssize_t>p[OFF_HLEN], HOLDER_MAX)],
                   (<char*>(p + OFF_SESSION))[:min(<Py_ssize_t>p[OFF_SLEN], SESSION_MAX)])
            if k50_load(self._state(slot)) == s:
                break
        return k50_named(SlotRecord, out)

    def setup(self, Py_ssize_t slot, uint64_t number, unsigned int pool):
        """Give a slot its number and pool (callers hold the segment's admin lock)."""
        cdef uint8_t* p = self._slot(slot)
        (<uint64_t*>(p + OFF_NUMBER))[0] = number
        self._pool(slot)[0] = pool
        self.version += 1

    def retire(self, Py_ssize_t slot, uint64_t now):
        """Take a slot out of circulation, ending a live lease now; True if one was cut short.

        Its last lease stays readable, and its cooldown runs from the cut, so a
        number that comes back is never handed out while a page may still show it.
        """
        self._slot(slot)
        cdef uint64_t* state = self._state(slot)
        cdef uint64_t s, until
        self.version += 1
        while True:
            s = k50_load(state)
            until = _until(s)
            if (_kind(s) == KIND_LEASED or _kind(s) == KIND_CLAIMING) and until > now:
                until = now  # a claim in progress ends too: its final CAS fails, it claims elsewhere
            if k50_cas(state, s, _pack(_gen(s), KIND_RETIRED, (s & SHARED_BIT) != 0, until)):
                if _kind(s) == KIND_LEASED and until != _until(s):
                    # the cut is logged as the lease's end: a renewal after a revival that brings the
                    # end back to where it started has moved it since, and is logged (see _moved)
                    (<uint64_t*>(self.base + slot * SLOT_SIZE + OFF_END0))[0] = until
                    return True
                return False

    def revive(self, Py_ssize_t slot):
        """Back into circulation: free once its last lease and cooldown have run out."""
        self._slot(slot)
        cdef uint64_t* state = self._state(slot)
        cdef uint64_t s
        self.version += 1
        while True:
            s = k50_load(state)
            if _kind(s) != KIND_RETIRED:
                return
            if k50_cas(state, s, _pack(_gen(s), KIND_LEASED if _until(s) else KIND_NEVER, False, _until(s))):
                return

    def add(self, Py_ssize_t byte_offset, uint64_t n=1):
        """Atomically add to a 64-bit counter at a byte offset of the buffer; returns the old value."""
        if byte_offset < 0 or byte_offset % 8 or byte_offset + 8 > self.offset:
            raise ValueError("counters live 8-byte aligned in the header, before the slots")
        return k50_add(<uint64_t*>(self.heads - self.offset + byte_offset), n)

    def counter(self, Py_ssize_t byte_offset):
        if byte_offset < 0 or byte_offset % 8 or byte_offset + 8 > self.offset:
            raise ValueError("counters live 8-byte aligned in the header, before the slots")
        return k50_load(<uint64_t*>(self.heads - self.offset + byte_offset))


# The pool's parts that work on SlotTable's internals, compiled with it so its inline methods stay
# inline on the returning visitor's and the claim's paths.
include "_claims.pxi"
include "_holders.pxi"
include "_returning.pxi"
