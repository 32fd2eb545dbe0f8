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

cdef enum:
    INDEX_WINDOW = 16   # places looked at from a hash's home (two cache lines)
    INDEX_HEADER = 64


cdef struct HolderIndex:
    uint64_t* overflow
    uint64_t* places
    uint64_t mask


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


cdef inline uint64_t _index_entry(uint64_t holder_hash, uint64_t gen, Py_ssize_t slot) noexcept nogil:
    return ((holder_hash >> 50) << 50) | ((gen & GEN_MASK) << 32) | <uint64_t>(slot + 1)


cdef inline void _index_at(HolderIndex* index, uint8_t* end_of_records, Py_ssize_t capacity) noexcept nogil:
    index.overflow = <uint64_t*>end_of_records
    index.places = <uint64_t*>(end_of_records + INDEX_HEADER)
    index.mask = <uint64_t>_index_places(capacity) - 1
