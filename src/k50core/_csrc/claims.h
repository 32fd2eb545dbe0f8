/* Radix sort of the claim keys (see _claims.pxi).
 * Declared for Cython in claims.pxd. */
#ifndef K50_CLAIMS_H
#define K50_CLAIMS_H

#include <Python.h>
#include <stdint.h>
#include "tricks.h"

/* Sort n keys ascending (LSD radix, a byte a pass, only the bytes in which keys differ). */
static int k50_sort_keys(uint64_t* keys, Py_ssize_t n) {
    if (n < 2) return 0;
    uint64_t any = 0, all = ~0ULL;
    for (Py_ssize_t i = 0; i < n; i++) { any |= keys[i]; all &= keys[i]; }
    uint64_t differ = any ^ all;
    uint64_t* tmp = NULL;
    uint64_t* from = keys;
    for (int shift = 0; shift < 64; shift += 8) {
        if (((differ >> shift) & 0xFF) == 0) continue;
        if (tmp == NULL && (tmp = (uint64_t*)malloc((size_t)n * sizeof(uint64_t))) == NULL) return -1;
        uint64_t* to = from == keys ? tmp : keys;
        Py_ssize_t at[256] = {0}, sum = 0;
        for (Py_ssize_t i = 0; i < n; i++) at[(from[i] >> shift) & 0xFF]++;
        for (int b = 0; b < 256; b++) { Py_ssize_t c = at[b]; at[b] = sum; sum += c; }
        for (Py_ssize_t i = 0; i < n; i++) to[at[(from[i] >> shift) & 0xFF]++] = from[i];
        from = to;
    }
    if (from != keys) memcpy(keys, from, (size_t)n * sizeof(uint64_t));
    free(tmp);
    return 0;
}

#endif  /* K50_CLAIMS_H */
