from libc.stdint cimport uint64_t

cdef extern from "_csrc/siphash.h":
    uint64_t k50_lease_tag(uint64_t k0, uint64_t k1, uint64_t slot, uint64_t pool, uint64_t gen,
                           uint64_t start) nogil
