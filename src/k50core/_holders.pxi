# Where each holder's lease is (compiled): an index in the segment from a holder's hash to their
# slot, so that a returning visitor no worker remembers (and every new visitor, who has no lease)
# is looked up in a few places instead of a scan of every number. Layout: k50core/pools.py.
#
# After the slot records: an overflow flag (8 bytes, set once an entry found no place; lookups
# then scan every slot: slower, never wrong), padding to INDEX_HEADER, then places: a power of
# two of words, at least 4 per slot, each
#   tag (the hash's top 14 bits) | gen (18) | slot + 1 (32);  0: never used.
# An entry is current while its slot is claimed or leased at its gen, so at most one per slot is
# and at most a quarter of the places are. A claim writes its entry (CAS) into the first place
# from the hash's home that is empty or not current, before it publishes the lease: a live lease
# always has its entry. Places never return to 0, so a lookup stops at the first empty one.
# (SlotTable keeps the pointers and calls these; its methods lease_of, index_overflowed and
# rebuild_index are the API, the same in the reference.)

cdef enum:
    INDEX_WINDOW = 16   # places looked at from a hash's home (two cache lines)
    INDEX_HEADER = 64


cdef inline Py_ssize_t _index_places(Py_ssize_t capacity) noexcept nogil:
    cdef Py_ssize_t n = 64
    while n < 4 * capacity:
        n <<= 1
    return n


def table_bytes(Py_ssize_t capacity):
    """The bytes a SlotTable of ``capacity`` slots takes in its buffer: heads, records, holder index."""
    if capacity < 0 or capacity >= 0xFFFFFFFF:  # a slot's index is kept in 32 bits
        raise ValueError("capacity: expected a count of slots, 0 to 2**32 - 2")
    return capacity * (HEAD_SIZE + SLOT_SIZE) + INDEX_HEADER + _index_places(capacity) * 8


cdef inline uint64_t* _place(SlotTable t, uint64_t holder_hash, Py_ssize_t k) noexcept nogil:
    return t.index_places + ((holder_hash + <uint64_t>k) & t.index_mask)


cdef inline bint _current(SlotTable t, uint64_t w) noexcept nogil:
    """Whether index entry w still names its slot's lease (claimed or leased at its gen)."""
    cdef uint64_t slot = (w & LOW32) - 1, s
    cdef int kind
    if slot >= <uint64_t>t.capacity:
        return False
    s = k50_load(t._state(<Py_ssize_t>slot))
    kind = _kind(s)
    return (kind == KIND_LEASED or kind == KIND_CLAIMING) and _gen(s) == ((w >> 32) & GEN_MASK)


cdef void _index_put(SlotTable t, Py_ssize_t slot, uint64_t gen, uint64_t holder_hash,
                     Py_ssize_t holder_len) noexcept nogil:
    """Enter a lease being claimed (the slot CLAIMING at ``gen``): the first place from the hash's
    home that is empty or not current. An anonymous lease is not entered (no one looks for it,
    and their equal hashes would crowd one home)."""
    cdef uint64_t e = ((holder_hash >> 50) << 50) | ((gen & GEN_MASK) << 32) | <uint64_t>(slot + 1), w
    cdef uint64_t* place
    cdef Py_ssize_t k
    if holder_len == 0:
        return
    for k in range(INDEX_WINDOW):
        place = _place(t, holder_hash, k)
        w = k50_load(place)
        while w == 0 or (w != e and not _current(t, w)):
            if k50_cas(place, w, e):
                return
            w = k50_load(place)  # another claim wrote it first: look at it again
        if w == e:
            return
    k50_cas(t.index_overflow, 0, 1)  # no place: lookups scan from now on


cdef object _lease_of(SlotTable t, uint64_t holder_hash, bytes holder, uint64_t now):
    """The live lease this holder has in any slot, or None: a few places from the hash's home
    (every slot once the index has overflowed)."""
    cdef Py_ssize_t k, i, hl = min(len(holder), HOLDER_MAX)
    cdef uint64_t w, gen, tag = holder_hash >> 50
    cdef const uint8_t* text = holder
    if hl == 0:
        return None  # anonymous leases are not entered
    if k50_load(t.index_overflow):
        for i in range(t.capacity):
            if t._hash(i)[0] == holder_hash and t._holds(i, holder_hash, text, hl, now, &gen):
                return i, <long long>gen
        return None
    for k in range(INDEX_WINDOW):
        w = k50_load(_place(t, holder_hash, k))
        if w == 0:
            return None  # places never empty again: the holder's entry is not further on
        i = <Py_ssize_t>((w & LOW32) - 1)  # a word the claims did not write (slot field 0) wraps
        if (w >> 50) == tag and <uint64_t>i < <uint64_t>t.capacity and t._holds(i, holder_hash, text, hl, now, &gen):
            return i, <long long>gen
    return None


cdef void _rebuild_index(SlotTable t) noexcept nogil:
    """Enter every claimed or leased slot's lease (a segment made before the index)."""
    cdef Py_ssize_t i
    cdef uint64_t s
    cdef int kind
    for i in range(t.capacity):
        s = k50_load(t._state(i))
        kind = _kind(s)
        if kind == KIND_LEASED or kind == KIND_CLAIMING:
            _index_put(t, i, _gen(s), t._hash(i)[0], (t.base + i * SLOT_SIZE)[OFF_HLEN])
