/* Atomic loads, stores and compare-and-swap on the slot table's words.
 * Declared for Cython in atomics.pxd. */
#ifndef K50_ATOMICS_H
#define K50_ATOMICS_H

#include <Python.h>
#include <stdint.h>
#include "tricks.h"

static inline uint64_t k50_load(uint64_t* p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void k50_store(uint64_t* p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static inline int k50_cas(uint64_t* p, uint64_t expected, uint64_t desired) {
    return __atomic_compare_exchange_n(p, &expected, desired, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}
static inline uint64_t k50_add(uint64_t* p, uint64_t v) { return __atomic_fetch_add(p, v, __ATOMIC_RELAXED); }

#endif  /* K50_ATOMICS_H */
