from libc.stdint cimport uint64_t

cdef extern from "_csrc/atomics.h":
    uint64_t k50_load(uint64_t* p) nogil
    void k50_store(uint64_t* p, uint64_t v) nogil
    int k50_cas(uint64_t* p, uint64_t expected, uint64_t desired) nogil
    uint64_t k50_add(uint64_t* p, uint64_t v) nogil
    int k50_popcount "__builtin_popcountll"(unsigned long long v) nogil
