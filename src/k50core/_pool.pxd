# Lock-free number slots (k50core._pool): the segment layout, the state word's fields and the classes
# a Cython module can cimport. _pool.pyx describes the design; it and the files it includes
# (_claims.pxi, _holders.pxi, _returning.pxi) document the classes.
cimport cython
from cpython.object cimport PyObject
from libc.stdint cimport uint8_t, uint64_t

from k50core._csrc.bounds cimport GEN_MASK, SHARED_BIT, UNTIL_MASK
from k50core._csrc.return_table cimport k50_rets

# The segment's layout (bytes), drawn in k50core/pools.py; LAYOUT in _pool.pyx gives it to Python.
cdef enum:
    HEAD_SIZE = 32
    HEAD_TAG = 8  # the lease's token tag: a heartbeat reads it with the state word, one line
    HEAD_LAST = 16
    HEAD_POOL = 24
    SLOT_SIZE = 128
    OFF_NUMBER = 8
    OFF_RULE = 20
    OFF_START = 24
    OFF_END0 = 32
    OFF_HASH = 0  # the holder's hash: the holder index's checks read the record's holder anyway
    OFF_HLEN = 48
    OFF_SLEN = 49
    OFF_HOLDER = 56
    HOLDER_MAX = 48
    OFF_SESSION = 104
    SESSION_MAX = 24
    KIND_NEVER = 0
    KIND_CLAIMING = 1
    KIND_LEASED = 2
    KIND_RETIRED = 3
    CLAIM_DEADLINE_MS = 5000
    CAS_ATTEMPTS = 64
    POOLS_MAX = 64
    TOKEN_LENGTH = 32  # pool (2) slot (8) gen (6) tag (16), in lowercase hex


# The state word: gen (18 bits) | kind (2) | shared (1) | until_ms (43).
cdef inline uint64_t _until(uint64_t s) noexcept nogil:
    return s & UNTIL_MASK

cdef inline int _kind(uint64_t s) noexcept nogil:
    return <int>((s >> 44) & 3)

cdef inline uint64_t _gen(uint64_t s) noexcept nogil:
    return s >> 46

cdef inline uint64_t _pack(uint64_t gen, int kind, bint shared, uint64_t until) noexcept nogil:
    return ((gen & GEN_MASK) << 46) | ((<uint64_t>kind) << 44) | (SHARED_BIT if shared else 0) | (until & UNTIL_MASK)


cdef inline long long _idle(uint64_t s, uint64_t now, uint64_t cooldown) noexcept nogil:
    """When a free slot's last lease ended (0: never leased), or -1 if it is not free now."""
    cdef int kind = _kind(s)
    if kind == KIND_NEVER:
        return 0
    if kind == KIND_LEASED and now >= _until(s) + cooldown:
        return <long long>_until(s)
    if kind == KIND_CLAIMING and now >= _until(s):  # a claimer died mid-write
        return <long long>_until(s)
    return -1


@cython.final
cdef class SlotTable:
    cdef object _buffer
    cdef uint8_t* heads
    cdef uint8_t* base
    cdef Py_ssize_t capacity
    cdef Py_ssize_t offset
    # The renewal log: a bit per slot this process renewed since the last drain, which then reads
    # each lease's latest activity and end from the slot itself: no allocation on a renewal, a
    # size fixed by the table, and a record that cannot go stale. A lease that ends and passes on
    # before the drain is logged by the claim that replaces it (see _supersede).
    cdef uint64_t* marks
    cdef Py_ssize_t n_marked
    cdef list superseded  # final states of leases this process's claims replaced (_supersede)
    cdef object replaced  # the one the latest claim or share replaced (see last_superseded)
    cdef dict candidates  # id(slot list) → _Candidates: each pool's free numbers between scans
    cdef uint64_t version  # bumped by this process's setup/retire/revive: the candidate lists rescan
    cdef long long lists_bound  # the latest bound of those lists (see _claims.pxi, _ends_at)
    cdef readonly unsigned long long renewed  # this process's renewals, ever
    # The log reaches the engine at checkpoints: on_full(True) once ``checkpoint_every`` ms have
    # passed since the last one (each lease renewed meanwhile is then one row, however often it was
    # renewed), on_full(False) when ``log_limit`` superseded leases wait (they hold memory).
    cdef Py_ssize_t log_limit
    cdef object on_full
    cdef uint64_t checkpoint_every
    cdef uint64_t checkpoint_due  # the renewal clock at which the next checkpoint is due
    cdef uint64_t checkpoint_floor  # a clock below this went back by more than an interval
    cdef uint64_t holds[POOLS_MAX]  # hold per pool registry entry, for token renewals
    cdef uint64_t tag_k0, tag_k1  # the key of lease tags (set_tag_key; kept in the segment)
    # the holder index after the records (see _holders.pxi)
    cdef uint64_t* index_overflow
    cdef uint64_t* index_places
    cdef uint64_t index_mask

    cdef inline uint8_t* _slot(self, Py_ssize_t i) except NULL
    cdef inline uint64_t* _state(self, Py_ssize_t i) noexcept nogil
    cdef inline uint64_t* _hash(self, Py_ssize_t i) noexcept nogil
    cdef inline uint64_t* _tag(self, Py_ssize_t i) noexcept nogil
    cdef inline uint64_t* _last(self, Py_ssize_t i) noexcept nogil
    cdef inline unsigned int* _pool(self, Py_ssize_t i) noexcept nogil
    cdef int _check(self, const int[::1] slots) except -1
    cdef inline const int* _slot_list(self, object slots, Py_ssize_t* n, bint checked=*) except? NULL
    cdef inline int _in_table(self, const int* at, Py_ssize_t n) except -1
    cdef Py_ssize_t _idlest(self, const int* slots, Py_ssize_t start, Py_ssize_t stop, uint64_t now,
                            uint64_t cooldown, Py_ssize_t best) noexcept nogil
    cdef _write_lease(self, Py_ssize_t slot, uint64_t gen, uint64_t now, uint64_t until, unsigned int rule,
                      uint64_t holder_hash, bytes holder, bytes session)
    cdef inline uint64_t _extend(self, Py_ssize_t slot, uint64_t gen, uint64_t now, uint64_t hold) noexcept nogil
    cdef inline void _ends_at(self, uint64_t until) noexcept nogil
    cdef inline uint64_t _renew(self, Py_ssize_t slot, uint64_t gen, uint64_t now, uint64_t hold) noexcept nogil
    cdef inline void _mark(self, Py_ssize_t slot) noexcept nogil
    cdef inline bint _moved(self, Py_ssize_t slot, uint64_t s) noexcept nogil
    cdef _supersede(self, Py_ssize_t slot, uint64_t s)
    cdef list _take(self, cls, pools, rules, bint marks=*)
    cdef int _append(self, list out, cls, pools, rules, Py_ssize_t slot, uint64_t gen, bint shared, uint64_t start,
                     uint64_t last, uint64_t until, unsigned int pool, unsigned int rule, uint64_t number,
                     holder, session) except -1
    cdef inline int _check_log(self, uint64_t now) except -1
    cdef int _log_full(self, uint64_t now) except -1
    cdef inline bint _token_ahead(self, PyObject* item, uint64_t* fields) noexcept
    cdef inline bint _renew_token(self, const char* s, Py_ssize_t n, uint64_t now) noexcept nogil
    cdef inline bint _renew_fields(self, uint64_t* fields, uint64_t now) noexcept nogil
    cdef inline bint _holds(self, Py_ssize_t i, uint64_t holder_hash, const uint8_t* holder, Py_ssize_t hl,
                            uint64_t now, uint64_t* gen) noexcept


@cython.final
cdef class ReturnCache:
    cdef SlotTable table
    cdef k50_rets rets
    cdef Py_ssize_t capacity
    cdef public object seen  # seen(visitor, slot, gen, now): a joiner's return (their activity is their own)

    cdef inline object _renew(self, object visitor, uint64_t now)
    cdef object _ended(self, Py_ssize_t at, uint64_t now)
    cdef int _joiner_back(self, object visitor, Py_ssize_t slot, uint64_t gen, uint64_t now) except -1
    cdef inline object _renew_visit(self, object visit, uint64_t now)

@cython.final
cdef class Assigner:
    cdef ReturnCache cache
    cdef object full

    cdef inline object _assign(self, object visit, object now, object token)
