# GeoIP (k50core._geoip): what a Cython module can cimport. The methods are documented in _geoip.pyx.
from cpython.object cimport PyObject
from libc.stdint cimport uint8_t, uint32_t

# A place of the lookup cache (data record -> decoded triple).
cdef struct _GeoSlot:
    uint32_t key
    PyObject* triple  # borrowed: GeoIP._triples holds the reference
    PyObject* region  # triple[1], so region() touches neither list nor tuple


cdef class GeoIP:
    cdef readonly str path
    cdef object _mm
    cdef const uint8_t[::1] _buf
    cdef const uint8_t* _d          # start of the file: the search tree
    cdef Py_ssize_t _base, _end     # data section [_base, _end)
    cdef uint32_t _node_count
    cdef uint32_t* _v4tab           # IPv4: record after the first 16 bits, by /16 prefix
    cdef bint _mapped_alias         # ::ffff:0:0/96 leads to the IPv4 subtree, too
    cdef int _rs, _ip_version
    cdef _GeoSlot* _slots           # cache: record value -> its (country, region, city)
    cdef uint32_t _mask, _used
    cdef list _triples              # keeps the cached triples alive
    cdef dict _strings              # one shared str per distinct code/name: fewer cache misses

    cdef int _init_v4tab(self) except -1
    cdef _GeoSlot* _cache_put(self, uint32_t key, tuple value) except NULL
    cdef Py_ssize_t _value(self, Py_ssize_t pos, int* typ, Py_ssize_t* size) noexcept nogil
    cdef Py_ssize_t _get(self, Py_ssize_t pos, const char* key) noexcept nogil
    cdef Py_ssize_t _first(self, Py_ssize_t pos) noexcept nogil
    cdef object _str(self, Py_ssize_t pos)
    cdef inline object _shared(self, object s)
    cdef int _corrupt(self, Py_ssize_t pos) except -1
    cdef tuple _decode(self, Py_ssize_t rec)
    cdef inline bint _v4_in_v6(self, const uint8_t* a) noexcept nogil
    cdef _GeoSlot* _find(self, object ip) except NULL
