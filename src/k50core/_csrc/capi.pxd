# CPython API with the signatures the core needs where Cython's cpython/*.pxd differ: borrowed
# references (PyObject*) instead of owned objects, and calls whose errors the caller handles.
from cpython.object cimport PyObject

cdef extern from "Python.h":
    PyObject* PyList_GET_ITEM(object o, Py_ssize_t i)
    PyObject* PyTuple_GET_ITEM(object o, Py_ssize_t i)
    PyObject* Py_True
    PyObject* Py_False
    PyObject* Py_None
    bint PyUnicode_IS_ASCII(object o)  # not in Cython's cpython/unicode.pxd
    # no exception check: a caller on the visitor path turns an overflow into "not mine"
    double PyLong_AsDouble(object o) noexcept
    # no exception check: a lone surrogate gives NULL (the caller clears the error), not a raise
    const char* utf8_or_null "PyUnicode_AsUTF8AndSize"(object s, Py_ssize_t* size)
