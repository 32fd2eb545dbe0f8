"""Lease token tags: SipHash-2-4 over whole 64-bit words (the twin of ``_csrc/siphash.h``).

A token names a lease by (pool, slot, generation); its tag, keyed with the secret kept in the
pool segment, makes it unguessable: a token with a wrong tag renews nothing and joins nothing.
"""
from __future__ import annotations

from collections.abc import Sequence

M64 = (1 << 64) - 1


def _rotl(x: int, b: int) -> int:
    return ((x << b) | (x >> (64 - b))) & M64


def siphash24_words(k0: int, k1: int, words: Sequence[int]) -> int:
    """SipHash-2-4 of the little-endian bytes of ``words`` (each 0 <= w < 2**64)."""
    v0, v1 = 0x736F6D6570736575 ^ k0, 0x646F72616E646F6D ^ k1
    v2, v3 = 0x6C7967656E657261 ^ k0, 0x7465646279746573 ^ k1

    def rounds(n: int) -> None:
        nonlocal v0, v1, v2, v3
        for _ in range(n):
            v0 = (v0 + v1) & M64
            v1 = _rotl(v1, 13) ^ v0
            v0 = _rotl(v0, 32)
            v2 = (v2 + v3) & M64
            v3 = _rotl(v3, 16) ^ v2
            v0 = (v0 + v3) & M64
            v3 = _rotl(v3, 21) ^ v0
            v2 = (v2 + v1) & M64
            v1 = _rotl(v1, 17) ^ v2
            v2 = _rotl(v2, 32)

    for m in words:
        v3 ^= m
        rounds(2)
        v0 ^= m
    b = ((8 * len(words)) & 0xFF) << 56
    v3 ^= b
    rounds(2)
    v0 ^= b
    v2 ^= 0xFF
    rounds(4)
    return v0 ^ v1 ^ v2 ^ v3


def lease_tag(key: bytes, slot: int, pool: int, gen: int, start: int) -> int:
    """The tag of the lease (slot, pool, gen) that started at ``start`` ms, under a 16-byte key."""
    k0, k1 = int.from_bytes(key[:8], "little"), int.from_bytes(key[8:16], "little")
    return siphash24_words(k0, k1, (slot, ((pool << 32) | gen) & M64, start & M64))
