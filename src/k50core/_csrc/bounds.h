/* Range checks over index arrays.
 * Declared for Cython in bounds.pxd. */
#ifndef K50_BOUNDS_H
#define K50_BOUNDS_H

#include <Python.h>
#include <stdint.h>
#include "tricks.h"

/* Whether any index is outside 0 .. capacity - 1: 32-bit lanes (a capacity is below 2^32,
   a negative index is a large unsigned one) and no branch, so GCC vectorises it (a 64-bit
   comparison stays scalar). */
static inline int k50_any_outside(const int* at, Py_ssize_t n, unsigned int capacity) {
    unsigned int bad = 0;
    for (Py_ssize_t k = 0; k < n; k++) bad |= (unsigned int)at[k] >= capacity;
    return bad != 0;
}
/* The state word's fields: constants the compiler folds into each renewal's few instructions. */
#define K50_UNTIL_MASK ((1ULL << 43) - 1)
#define K50_SHARED_BIT (1ULL << 43)
#define K50_GEN_MASK ((1ULL << 18) - 1)
#define K50_LOW32 0xFFFFFFFFULL

#endif  /* K50_BOUNDS_H */
