/* One switch for the core's uses of CPython internals: the in-place reuse of an Assignment and
 * its float when nothing else refers to them (assignment.h). Each has a plain public-API path
 * beside it.
 *
 * They are on unless the build defines K50_NO_CPYTHON_TRICKS (setup.py does when the environment
 * says K50CORE_NO_CPYTHON_TRICKS=1; CI runs the suite once so) or the interpreter is one whose
 * internals they do not know: free-threaded builds (a refcount of 1 does not mean unshared
 * there), PyPy. Declared for Cython in tricks.pxd. */
#ifndef K50_TRICKS_H
#define K50_TRICKS_H

#include <Python.h>

#if defined(K50_NO_CPYTHON_TRICKS) || defined(Py_GIL_DISABLED) || defined(PYPY_VERSION)
#define K50_CPYTHON_TRICKS 0
#else
#define K50_CPYTHON_TRICKS 1
#endif

#endif  /* K50_TRICKS_H */
