from libc.stdint cimport uint64_t

cdef extern from "_csrc/bounds.h":
    const uint64_t UNTIL_MASK "K50_UNTIL_MASK"
    const uint64_t SHARED_BIT "K50_SHARED_BIT"
    const uint64_t GEN_MASK "K50_GEN_MASK"
    const uint64_t LOW32 "K50_LOW32"
    bint k50_any_outside(const int* at, Py_ssize_t n, unsigned int capacity) nogil
