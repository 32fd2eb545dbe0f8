/* Assignment tuples made and renewed in C.
 * Declared for Cython in assignment.pxd. */
#ifndef K50_ASSIGNMENT_H
#define K50_ASSIGNMENT_H

#include <Python.h>
#include <stdint.h>
#include "tricks.h"

/* An Assignment (a tuple subclass without __dict__) from its seven fields. Its
   fields are strings, floats, bools and None, which cannot form cycles, so the
   collector need not track it (CPython untracks such tuples too, only later). */
static PyObject* k50_assignment(PyObject* cls, PyObject* a, PyObject* b, PyObject* c, PyObject* d,
                                PyObject* e, PyObject* f, PyObject* g) {
    PyObject* items[7] = {a, b, c, d, e, f, g};
    PyObject* made = ((PyTypeObject*)cls)->tp_alloc((PyTypeObject*)cls, 7);
    if (made == NULL) return NULL;
    for (int i = 0; i < 7; i++) {
        Py_INCREF(items[i]);
        PyTuple_SET_ITEM(made, i, items[i]);
    }
    PyObject_GC_UnTrack(made);
    return made;
}
/* The visitor's last Assignment with a new expiry, reused in place when nothing but the
   cache refers to it (as zip() reuses its result tuple), else a fresh one with the same first
   five fields. A tuple (or a float inside it) that no one else can see may change: no one
   can observe it. Everything comes from ``last``: the cache entry stays one cache line. */
static inline PyObject* k50_renewed(PyObject* last, double expires, PyObject* g) {
    if (K50_CPYTHON_TRICKS && Py_REFCNT(last) == 1) {
        PyObject* old_f = PyTuple_GET_ITEM(last, 5);
        PyObject* old_g = PyTuple_GET_ITEM(last, 6);
        if (Py_REFCNT(old_f) == 1 && PyFloat_CheckExact(old_f)) {
            ((PyFloatObject*)old_f)->ob_fval = expires;
        } else {
            PyObject* f = PyFloat_FromDouble(expires);
            if (f == NULL) return NULL;
            PyTuple_SET_ITEM(last, 5, f);
            Py_DECREF(old_f);
        }
        if (old_g != g) {
            Py_INCREF(g);
            PyTuple_SET_ITEM(last, 6, g);
            Py_DECREF(old_g);
        }
        Py_INCREF(last);
        return last;
    }
    PyObject* f = PyFloat_FromDouble(expires);
    if (f == NULL) return NULL;
    PyObject* made = k50_assignment((PyObject*)Py_TYPE(last), PyTuple_GET_ITEM(last, 0), PyTuple_GET_ITEM(last, 1),
                                    PyTuple_GET_ITEM(last, 2), PyTuple_GET_ITEM(last, 3),
                                    PyTuple_GET_ITEM(last, 4), f, g);
    Py_DECREF(f);
    return made;
}

#endif  /* K50_ASSIGNMENT_H */
