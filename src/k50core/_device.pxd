# Device type from a User-Agent (k50core._device): what a Cython module can cimport. The classes are
# documented in _device.pyx.
from libc.stdint cimport uint64_t

# The cached answer (type, os family, browser family) for a User-Agent; the cache's own entry
# point, behind device_type / device_info.
cdef tuple _dev_lookup(object ua)

cdef class _DevGrams:
    cdef uint64_t* keys
    cdef int* head          # first literal of the slot's chain
    cdef int* nxt           # next literal with the same gram (by literal id)
    cdef int* goff          # where the gram sits in the literal
    cdef Py_UCS4* chars
    cdef Py_ssize_t* start
    cdef Py_ssize_t* length
    cdef uint64_t mask
    cdef int bits
    cdef bint has2          # any 2-char literal: look up 2-grams too
    cdef uint64_t bloom[1024]  # 65,536 bits, one per top-16-bit hash: most grams of
                               # a UA are in no literal; this rejects them in L1

    cdef inline uint64_t _slot(self, uint64_t key) noexcept nogil
    cdef void _add(self, uint64_t key, int lit) noexcept
    cdef void scan(self, str text, unsigned char* found, int* hits, Py_ssize_t* nhits) noexcept
    cdef inline void _probe(self, uint64_t key, Py_ssize_t pos, int kind, void* data,
                            Py_ssize_t n, unsigned char* found, int* hits, Py_ssize_t* nhits) noexcept

cdef class _DevFilter:
    cdef _DevGrams raw, low
    cdef int nlits, nclauses, nparsers
    cdef int* l_start       # literal -> clauses using it [l_start[l], l_start[l+1])
    cdef int* l_clauses
    cdef int* c_parser      # clause -> its parser
    cdef unsigned char* p_need   # parser -> number of clauses
    cdef int* always             # parsers without clauses
    cdef int* icase              # IGNORECASE parsers
    cdef int nalways, nicase

    cdef unsigned char* scan(self, str ua) except NULL

cdef class _DevEngine:
    cdef list parsers, searches   # ua-parser's UA, OS, device parsers in a row
    cdef int nua, nos, ndev
    cdef readonly _DevFilter filter
    cdef dict parses              # (parser, groups, lastindex) -> its Parse()
    cdef object UserAgent, parse_browser, parse_os, parse_device
    cdef dict browsers, oses      # memo of user_agents' pure namedtuple builders

    cdef void clear(self) noexcept
    cdef tuple _parse_one(self, int i, str ua)
    cdef tuple _first(self, int base, int n, unsigned char* cand, str ua, tuple none)
    cdef tuple info(self, str ua)
    cdef tuple _info(self, str ua, unsigned char* cand)
