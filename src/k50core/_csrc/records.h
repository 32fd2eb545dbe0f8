/* Tuple-subclass records (NamedTuples) made in C.
 * Declared for Cython in records.pxd. */
#ifndef K50_RECORDS_H
#define K50_RECORDS_H

#include <Python.h>
#include <stdint.h>
#include "tricks.h"

/* cls(*items) for a tuple subclass without __dict__ (a NamedTuple), minus the
   Python-level __new__: one allocation, the items shared. The items must be
   atomic (str, numbers, None), so the collector need not track the result. */
static PyObject* k50_named(PyObject* cls, PyObject* items) {
    Py_ssize_t n = PyTuple_GET_SIZE(items);
    PyObject* made = ((PyTypeObject*)cls)->tp_alloc((PyTypeObject*)cls, n);
    if (made == NULL) return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject* item = PyTuple_GET_ITEM(items, i);
        Py_INCREF(item);
        PyTuple_SET_ITEM(made, i, item);
    }
    PyObject_GC_UnTrack(made);
    return made;
}
/* "+<a>" (a phone number) or "<a>.<b>" (a lease id) without printf's machinery. */
static char* k50_digits(char* end, unsigned long long v) {
    do { *--end = (char)('0' + v % 10); v /= 10; } while (v);
    return end;
}
static PyObject* k50_number_text(unsigned long long number) {
    char buf[24], *end = buf + sizeof buf, *at = k50_digits(end, number);
    *--at = '+';
    return PyUnicode_FromStringAndSize(at, end - at);
}
static PyObject* k50_lease_text(unsigned long long slot, unsigned long long gen) {
    char buf[48], *end = buf + sizeof buf, *at = k50_digits(end, gen);
    *--at = '.';
    at = k50_digits(at, slot);
    return PyUnicode_FromStringAndSize(at, end - at);
}

#endif  /* K50_RECORDS_H */
