/* Reading lease tokens: ASCII text and hex digits.
 * Declared for Cython in token_text.pxd. */
#ifndef K50_TOKEN_TEXT_H
#define K50_TOKEN_TEXT_H

#include <Python.h>
#include <stdint.h>
#include "tricks.h"

/* A str's characters when it is an exact, compact ASCII str (its bytes are its characters),
   else NULL; borrowed, no reference taken. */
static inline const char* k50_ascii(PyObject* o, Py_ssize_t* n) {
    if (!PyUnicode_CheckExact(o) || !PyUnicode_IS_ASCII(o)) return NULL;
    *n = PyUnicode_GET_LENGTH(o);
    return (const char*)PyUnicode_DATA(o);
}

/* Eight lowercase hex digits (the first digit in the lowest byte: see k50_le64) as
   their 32-bit value, bytes at a time; *bad gets a bit set unless all eight are [0-9a-f].
   Each byte's class comes from two additions (bytes below 0x80 cannot carry into the next):
   c + 0x50 has its top bit set from '0' on, c + 0x46 from ':' on, and so on for 'a'..'f'. */
static inline uint64_t k50_hex8(uint64_t x, uint64_t* bad) {
    const uint64_t ones = 0x0101010101010101ULL, top = 0x8080808080808080ULL;
    uint64_t digit = (x + 0x50 * ones) & ~(x + 0x46 * ones);
    uint64_t af = (x + 0x1F * ones) & ~(x + 0x19 * ones);
    *bad |= (((digit | af) & top) ^ top) | (x & top);
    uint64_t v = (x & 0x0F0F0F0F0F0F0F0FULL) + ((af & top) >> 7) * 9;  /* each byte its digit */
    v = __builtin_bswap64(v);                           /* the last digit lowest */
    v = (v | (v >> 4)) & 0x00FF00FF00FF00FFULL;         /* pairs of digits into bytes */
    v = (v | (v >> 8)) & 0x0000FFFF0000FFFFULL;
    return (v | (v >> 16)) & 0xFFFFFFFFULL;
}
/* Eight bytes as a little-endian word on any machine (compilers make it one load on x86). */
static inline uint64_t k50_le64(const unsigned char* p) {
    return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
           (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 | (uint64_t)p[7] << 56;
}
/* The token pools write: 32 lowercase hex digits, pool (2) slot (8) gen (6), then the lease's
   tag (16). No loop and no branch per character: heartbeat batches parse one per page. */
static inline int k50_token32(const char* s, uint64_t* fields) {
    uint64_t bad = 0;
    const unsigned char* u = (const unsigned char*)s;
    uint64_t v = (k50_hex8(k50_le64(u), &bad) << 32) | k50_hex8(k50_le64(u + 8), &bad);
    fields[0] = v >> 56;
    fields[1] = (v >> 24) & 0xFFFFFFFFULL;
    fields[2] = v & 0xFFFFFFULL;
    fields[3] = (k50_hex8(k50_le64(u + 16), &bad) << 32) | k50_hex8(k50_le64(u + 24), &bad);
    return bad == 0;
}

#endif  /* K50_TOKEN_TEXT_H */
