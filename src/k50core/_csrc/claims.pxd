from libc.stdint cimport uint64_t

cdef extern from "_csrc/claims.h":
    int k50_sort_keys(uint64_t* keys, Py_ssize_t n) nogil
