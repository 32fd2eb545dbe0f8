# A pool's free numbers, idle longest first (compiled): what claims take from between scans.
#
# A claim hands out the free number idle longest (ties: the first from the process's hint on,
# wrapping). Scanning every slot head for it would cost each claim a pass over the whole pool, so
# instead one scan keeps every number free at that instant (now0),
# sorted by (idle since, position in the pool); later claims take from that list, each entry
# checked against its slot's state word first (unchanged: still free, idle just as long).
#
# Why the list's best live entry is still the pool's best later on: a number that was not free
# at now0 was leased or cooling then, so its lease ends after now0 - cooldown, and it can only be
# idle since later than that; a kept entry is idle since at most now0 - cooldown (or never
# leased). So every entry within that bound beats every number freed since. An entry beyond it
# (a claim whose claimer died, free at its deadline) sends the claim back to a scan, as do the
# clock going back, this process's setup/retire/revive (SlotTable.version: a number may come back
# never leased, or long idle), an end this process writes at or before a list's bound (a renewal
# or share by a clock behind the scan's, or no hold and no cooldown: SlotTable._ends_at), a
# different slot list or cooldown, and an exhausted list. Another worker's doings are seen at the
# next scan: a number it brings back, or a lease it ends sooner than the bound because its clock
# lags this one's by more than the cooldown. Until then a claim may hand out a number idle a
# little less long than another, never one that is not free. A pool's slot list is taken as it
# is: replaced, not changed in place (the list keeps positions; a pick checks its index).
# (Pools of over 2^20 numbers scan every claim: the keys keep 43 bits of time and 20 of position.)
#
# An entry is one 64-bit key, idle since (43 bits, as the state word keeps it) above the position,
# so a radix sort orders a scan's finds in a few passes over the bytes that differ, and both
# searches of a claim are comparisons of keys. The reference has no list: it scans every time,
# and the state machine tests check that both builds claim the same numbers.

from k50core._csrc.claims cimport k50_sort_keys

cdef enum:
    IDLE_BITS = 43             # an until in the state word
    CANDIDATE_LISTS_MAX = 64   # slot lists remembered (one per pool; old ones after reloads)

cdef uint64_t DEAD = <uint64_t>-1  # a seen state no free slot has (kind RETIRED): taken or changed
cdef Py_ssize_t _list_max = (<Py_ssize_t>1) << (63 - IDLE_BITS)  # larger pools scan every claim
# (63: a key's idle since + 1 stays within 64 bits, for the end of the tie group)


def _set_candidate_list_max(Py_ssize_t n):
    """(For tests.) Pools of more numbers than this scan for every claim, as the reference does;
    returns the previous limit."""
    global _list_max
    old, _list_max = _list_max, min(max(n, 0), (<Py_ssize_t>1) << (63 - IDLE_BITS))
    return old


@cython.final
cdef class _Candidates:
    """One pool's free numbers at the instant of the last scan, sorted (see the top of this file)."""
    cdef object slots          # the pool's array('i'), kept: its identity is the key
    cdef const int* at
    cdef Py_ssize_t n, count, head
    cdef uint64_t cooldown, built_at, version, pos_mask
    cdef int pos_bits
    cdef long long bound       # entries idle since at most this beat any number freed after the scan
    cdef uint64_t* keys        # (idle since << pos_bits) | position, ascending
    cdef uint64_t* seen        # by position: the state word the scan saw (DEAD: not a candidate now)

    def __cinit__(self):
        self.keys = self.seen = NULL
        self.n = self.count = self.head = 0

    def __dealloc__(self):
        free(self.keys)
        free(self.seen)

    cdef inline bint fits(self, object slots, const int* at, Py_ssize_t n, uint64_t cooldown, uint64_t now,
                          uint64_t version) noexcept:
        return (self.slots is slots and self.at == at and self.n == n and self.cooldown == cooldown
                and self.version == version and self.built_at <= now)

    cdef int scan(self, SlotTable table, object slots, const int* at, Py_ssize_t n, uint64_t now,
                  uint64_t cooldown, uint64_t version) except -1:
        cdef Py_ssize_t k
        cdef uint64_t s
        cdef long long idle
        table._in_table(at, n)
        if n != self.n or self.keys == NULL:
            free(self.keys)
            free(self.seen)
            self.keys, self.seen, self.n = NULL, NULL, 0
            self.keys = <uint64_t*>malloc(max(n, 1) * sizeof(uint64_t))
            self.seen = <uint64_t*>malloc(max(n, 1) * sizeof(uint64_t))
            if self.keys == NULL or self.seen == NULL:
                raise MemoryError()
        self.pos_bits = 1
        while ((<Py_ssize_t>1) << self.pos_bits) < n:
            self.pos_bits += 1
        self.pos_mask = ((<uint64_t>1) << self.pos_bits) - 1
        self.count = 0
        for k in range(n):
            s = k50_load(table._state(at[k]))
            idle = _idle(s, now, cooldown)
            if idle >= 0:
                self.keys[self.count] = (<uint64_t>idle << self.pos_bits) | <uint64_t>k
                self.seen[k] = s
                self.count += 1
            else:
                self.seen[k] = DEAD
        if k50_sort_keys(self.keys, self.count) < 0:
            raise MemoryError()
        self.slots, self.at, self.n, self.cooldown, self.version = slots, at, n, cooldown, version
        self.built_at, self.head = now, 0
        self.bound = <long long>now - <long long>cooldown
        table.lists_bound = max(table.lists_bound, self.bound)
        return 0

    cdef inline bint _dead(self, Py_ssize_t j) noexcept:
        return self.seen[self.keys[j] & self.pos_mask] == DEAD

    cdef Py_ssize_t pick(self, Py_ssize_t hint, bint fresh) noexcept:
        """The entry to claim: the first live one idle longest, from position ``hint`` on (wrapping).
        -1: none left, or (unless ``fresh``: scanned at this instant) the best is beyond the bound."""
        cdef Py_ssize_t lo, hi, mid, j, end
        cdef uint64_t idle, group_end, from_hint
        while self.head < self.count and self._dead(self.head):
            self.head += 1
        if self.head == self.count:
            return -1
        idle = self.keys[self.head] >> self.pos_bits
        if not fresh and <long long>idle > self.bound:
            return -1
        group_end, from_hint = (idle + 1) << self.pos_bits, (idle << self.pos_bits) | <uint64_t>hint
        lo, hi = self.head, self.count  # the end of the tie group: the first key idle since later
        while lo < hi:
            mid = (lo + hi) >> 1
            if self.keys[mid] < group_end:
                lo = mid + 1
            else:
                hi = mid
        end = lo
        lo, hi = self.head, end  # in it, the first at or after the hint
        while lo < hi:
            mid = (lo + hi) >> 1
            if self.keys[mid] < from_hint:
                lo = mid + 1
            else:
                hi = mid
        for j in range(lo, end):
            if not self._dead(j):
                return j
        for j in range(self.head, lo):  # (the entry at head is live: found by here at the latest)
            if not self._dead(j):
                return j
        return -1

    cdef inline Py_ssize_t position(self, Py_ssize_t j) noexcept:
        return <Py_ssize_t>(self.keys[j] & self.pos_mask)

    cdef inline uint64_t take(self, Py_ssize_t j) noexcept:
        """Entry j's state word as the scan saw it; the entry is no longer a candidate (whether
        this claim gets it or finds it changed)."""
        cdef Py_ssize_t k = self.position(j)
        cdef uint64_t s = self.seen[k]
        self.seen[k] = DEAD
        return s


cdef _Candidates _candidates_for(SlotTable table, object slots, const int* at, Py_ssize_t n, uint64_t now,
                                 uint64_t cooldown, bint* fresh):
    """The pool's list, scanned afresh when the one kept does not fit (``fresh`` says so); None for a
    pool too large for the keys (see _set_candidate_list_max)."""
    cdef _Candidates c
    if n > _list_max:
        return None
    c = table.candidates.get(id(slots))
    if c is not None and c.fits(slots, at, n, cooldown, now, table.version):
        fresh[0] = False
        return c
    if c is None:
        if len(table.candidates) >= CANDIDATE_LISTS_MAX:
            table.candidates.clear()
        c = _Candidates()
        table.candidates[id(slots)] = c
    c.scan(table, slots, at, n, now, cooldown, table.version)
    fresh[0] = True
    return c
