"""Lease token tags: SipHash-2-4, the same in both builds and as the paper specifies it."""
from hypothesis import given, settings, strategies as st

from k50core import Engine
from k50core._engine_py.tags import lease_tag, siphash24_words

KEY = bytes(range(16))
K0, K1 = int.from_bytes(KEY[:8], "little"), int.from_bytes(KEY[8:], "little")


def test_siphash24_reference_vectors():
    """The paper's test vectors (key 00..0f, message 00..(n-1)) for whole-word messages."""
    def words(n):
        data = bytes(range(n))
        return [int.from_bytes(data[i:i + 8], "little") for i in range(0, n, 8)]
    assert siphash24_words(K0, K1, words(0)) == 0x726FDB47DD0E0E31
    assert siphash24_words(K0, K1, words(8)) == 0x93F5F5799A932462
    assert siphash24_words(K0, K1, words(16)) == 0x3F2ACC7F57C29BDB


@settings(max_examples=50, deadline=None)
@given(key=st.binary(min_size=16, max_size=16), visitors=st.integers(1, 6), at=st.integers(0, 2**40))
def test_each_build_tags_a_lease_as_the_reference_function(key, visitors, at):
    """The compiled claim computes the tag in C (_csrc/siphash.h); the token ends with the tag the
    plain-Python function gives for the lease's slot, pool, generation and start."""
    for build in ("compiled", "reference"):
        e = Engine.from_config({"pools": {"p": {"type": "dynamic", "numbers": [f"+7495000000{i}" for i in range(8)]}},
                                "rules": [{"name": "all", "pool": "p"}]}, implementation=build)
        e.pools.table.set_tag_key(key)
        for v in range(visitors):
            token = e.assign({"visitor_id": f"v{v}"}, now=at / 1000).token
            pool, slot, gen = int(token[:2], 16), int(token[2:10], 16), int(token[10:16], 16)
            start = e.pools.table.record(slot).start  # the lease's start in ms, as the engine stored it
            assert abs(start - at) <= 1  # seconds to ms may round down by one (65.017 s is 65016.99… ms)
            assert int(token[16:], 16) == lease_tag(key, slot, pool, gen, start)
