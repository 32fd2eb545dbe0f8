from cpython.object cimport PyObject
from libc.stdint cimport uint64_t

cdef extern from "_csrc/token_text.h":
    const char* k50_ascii(PyObject* o, Py_ssize_t* n)
    bint k50_token32(const char* s, uint64_t* fields) nogil
