/* SipHash-2-4 (Aumasson & Bernstein, 2012) over whole 64-bit words, for lease token tags.
 *
 * A token names a lease by (pool, slot, generation); the tag, keyed with a secret kept in the
 * pool segment, makes it unguessable. The tag is computed once, when the lease starts, and kept
 * in the slot's record: a heartbeat compares 64 bits, it does not hash.
 * k50core/_engine_py/tags.py is the plain-Python twin (the tests check both against the
 * reference test vector of the paper). Declared for Cython in siphash.pxd.
 */
#ifndef K50_SIPHASH_H
#define K50_SIPHASH_H

#include <stdint.h>
#include <stddef.h>

#define K50_ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define K50_SIPROUND(v0, v1, v2, v3) do { \
        v0 += v1; v1 = K50_ROTL(v1, 13); v1 ^= v0; v0 = K50_ROTL(v0, 32); \
        v2 += v3; v3 = K50_ROTL(v3, 16); v3 ^= v2; \
        v0 += v3; v3 = K50_ROTL(v3, 21); v3 ^= v0; \
        v2 += v1; v1 = K50_ROTL(v1, 17); v1 ^= v2; v2 = K50_ROTL(v2, 32); \
    } while (0)

/* The message is `n` little-endian 64-bit words (8n bytes); k0, k1 the key's two halves. */
static inline uint64_t k50_siphash24_words(uint64_t k0, uint64_t k1, const uint64_t* words, size_t n) {
    uint64_t v0 = 0x736f6d6570736575ULL ^ k0, v1 = 0x646f72616e646f6dULL ^ k1;
    uint64_t v2 = 0x6c7967656e657261ULL ^ k0, v3 = 0x7465646279746573ULL ^ k1;
    for (size_t i = 0; i < n; i++) {
        uint64_t m = words[i];
        v3 ^= m;
        K50_SIPROUND(v0, v1, v2, v3);
        K50_SIPROUND(v0, v1, v2, v3);
        v0 ^= m;
    }
    uint64_t b = ((uint64_t)(8 * n)) << 56;  /* the length byte; no bytes left over */
    v3 ^= b;
    K50_SIPROUND(v0, v1, v2, v3);
    K50_SIPROUND(v0, v1, v2, v3);
    v0 ^= b;
    v2 ^= 0xff;
    K50_SIPROUND(v0, v1, v2, v3);
    K50_SIPROUND(v0, v1, v2, v3);
    K50_SIPROUND(v0, v1, v2, v3);
    K50_SIPROUND(v0, v1, v2, v3);
    return v0 ^ v1 ^ v2 ^ v3;
}

/* A lease's tag: the slot, pool and generation, and its start (ms), so a generation that wraps
 * around never brings an old token back to life. */
static inline uint64_t k50_lease_tag(uint64_t k0, uint64_t k1, uint64_t slot, uint64_t pool, uint64_t gen,
                                     uint64_t start) {
    uint64_t words[3] = {slot, (pool << 32) | gen, start};
    return k50_siphash24_words(k0, k1, words, 3);
}

#endif
