from cpython.object cimport PyObject
from libc.stdint cimport uint64_t

cdef extern from "_csrc/return_table.h":
    ctypedef struct k50_ret:
        PyObject* key
        PyObject* last
        Py_ssize_t slot
        uint64_t gen, hold
        int joined
    ctypedef struct k50_rets:
        k50_ret* at
        size_t mask
        Py_ssize_t used
        uint64_t version
    Py_hash_t k50_str_hash(PyObject* s) except? -1
    Py_ssize_t k50_rets_find(const k50_rets* t, PyObject* key, Py_hash_t h)
    int k50_rets_put(k50_rets* t, PyObject* key, Py_ssize_t slot, uint64_t gen, uint64_t hold, PyObject* last,
                     int joined) except -1
    void k50_rets_remove(k50_rets* t, size_t i)
    object k50_ret_renewed(k50_rets* t, Py_ssize_t at, double expires, bint shared)
    void k50_rets_clear(k50_rets* t)
