"""Returning visitors of pools in Redis answered from the host's memory: the compiled
``RedisAssigner`` / ``RedisLease`` against their plain-Python reference (k50core._engine_py.redis_local).

Two engines, one per build, each on its own fresh namespace of one real redis-server, take the same
visits at the same clocks: every answer must be the same (the token aside: each namespace keys its
own tags), and so must what each host counted and left to write to Redis.
"""
import math

import pytest
from hypothesis import given, settings, strategies as st
from test_pools import config

from k50core import Engine
from k50core._impl import available
from k50core.pool_redis import pools as pool_redis_pools

pytestmark = pytest.mark.skipif("compiled" not in available(), reason="compares the compiled build with the reference")

VISITORS = ["v1", "v2", "v3", "v4", "v5"]
ODD_IDS = [None, 7, 1.5, ["v1"], {"v": 1}, b"v1", "", "v1\udc80", "x" * 300]
# mostly instants close together (a lease's returns within the renewals' window are answered inline),
# then others far apart (past the margin, the hold and the cooldown), and clocks the full path refuses
CLOCKS = st.one_of(
    st.sampled_from([1.0, 1.05, 1.1, 1.2, 1.3, 2.0, 2.1, 2.15, 60.0, 60.1, 60.2, 898.5, 899.0, 899.1, 1500.0]),
    st.sampled_from([1.0, 1.05, 1.1, 1.2, 1.3, 2.0, 2.1, 2.15, 60.0, 60.1, 60.2, 898.5, 899.0, 899.1, 1500.0]),
    st.floats(min_value=-5.0, max_value=2000.0, allow_nan=False),
    st.sampled_from([math.nan, math.inf, -math.inf, 1e300, True, "100", 10**30]),
    st.integers(min_value=-3, max_value=2000),
)


class _Str(str):
    pass


def visit_strategy():
    plain = st.builds(lambda v: {"visitor_id": v}, st.sampled_from(VISITORS))
    odd = st.one_of(st.builds(lambda v: {"visitor_id": v}, st.sampled_from(ODD_IDS)),
                    st.builds(lambda v: {"visitor_id": _Str(v)}, st.sampled_from(VISITORS)),
                    st.sampled_from([None, [], "v1", 5]))
    return st.one_of(plain, plain, plain, odd)


def _answer(a):
    """An assignment as both builds must give it: everything but the token's tag."""
    if a is None:
        return None
    return (a.number, a.display, a.pool, a.rule, a.token is not None, a.expires_at, a.shared)


def _counts(engine):
    redis = engine.pools
    return redis.renewed, sorted(redis._marked), sorted((k, (v.first, v.last, v.lu)) for k, v in redis._dirty.items())


@pytest.fixture(scope="module")
def engines(redis_server):
    made = []

    def make():
        # the test's clock, not the flusher's: no thread writes renewals behind its back (one that
        # woke mid-example emptied one build's waiting renewals and not the other's)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(pool_redis_pools, "_start_flusher", lambda pools: None)
            pair = [Engine.from_config(config(numbers=4), state_url=redis_server.url(), implementation=build,
                                       now=0.0) for build in ("compiled", "reference")]
        for e in pair:
            e.pools.window_ms = 10**9
        made.extend(pair)
        return pair

    yield make
    for e in made:
        e.pools.close()


def test_the_builds_use_their_own_lease_and_path(engines):
    compiled, reference = engines()
    compiled.assign({"visitor_id": "v1"}, 1.0)
    reference.assign({"visitor_id": "v1"}, 1.0)
    assert type(next(iter(compiled.pools._leases.values()))).__module__ == "k50core._redis_local"
    assert type(next(iter(reference.pools._leases.values()))).__module__ == "k50core._engine_py.redis_local"
    assert type(compiled.assign.__self__).__name__ == type(reference.assign.__self__).__name__ == "RedisAssigner"


@settings(max_examples=40, deadline=None)
@given(steps=st.lists(st.tuples(visit_strategy(), CLOCKS), min_size=1, max_size=40))
def test_compiled_answers_as_the_reference(engines, steps):
    compiled, reference = engines()
    clock = 0.0
    for visit, now in steps:
        out = []
        for engine in (compiled, reference):
            try:
                out.append(("ok", _answer(engine.assign(visit, now))))
            except Exception as exc:  # a bad clock: the full path names it, the same way in both
                out.append(("raised", type(exc).__name__))
        assert out[0] == out[1], (visit, now)
        if type(now) in (int, float) and 0.0 <= now <= 2000.0:
            clock = max(clock, now)
        assert _counts(compiled) == _counts(reference)
    # a batch at one instant, as the service sends it
    batch = [v for v, _ in steps]
    at = clock + 1.0
    assert [_answer(a) for a in compiled.assign_many(batch, at)] == [_answer(a) for a in reference.assign_many(batch, at)]
    assert _counts(compiled) == _counts(reference)


def test_a_return_within_the_window_is_answered_inline(engines):
    """The path this module is for: no call into the pools for a holder back within the window."""
    compiled, reference = engines()
    for engine in (compiled, reference):
        first = engine.assign({"visitor_id": "v1"}, 1.0)
        engine.assign({"visitor_id": "v1"}, 1.05)  # renewed here: a window opens, written at once
        engine.assign({"visitor_id": "v1"}, 1.1)   # renewed here, its write waiting for the window's end
        calls: list = []

        def spy(*a, calls=calls, local=engine.pools.local):
            calls.append(a)
            return local(*a)

        engine.pools.local = spy
        try:
            again = engine.assign({"visitor_id": "v1"}, 1.15)
        finally:
            del engine.pools.local
        assert calls == [] and again.number == first.number and again.expires_at == 1.15 + 900
    assert _counts(compiled) == _counts(reference)


def test_the_inline_answer_takes_the_hold_a_reload_gives(engines):
    for engine in engines():
        engine.assign({"visitor_id": "v1"}, 1.0)
        engine.reload(config(numbers=4, hold=1800), now=1.01)
        for at in (1.05, 1.1, 1.15):  # the last one inline (see above)
            got = engine.assign({"visitor_id": "v1"}, at)
        assert got.expires_at == 1.15 + 1800


@pytest.mark.parametrize("build", ["compiled", "reference"])
def test_a_lease_answers_from_memory_only_while_redis_is_far_off(build, engines):
    core = available()[build]

    class Keys:
        index, hold_ms = 3, 900_000

    lease = core.RedisLease(Keys(), 7, 1, 1_000, 10_000, ("n",) * 7, "v")
    assert (lease.cu, lease.lu, lease.fast, lease.gone, lease.key) == (10_000, 10_000, 10_000 - 2_000, False, (3, 7))
    lease.cu = 20_000
    assert lease.fast == 18_000
    lease.gone = True
    assert lease.fast == -1 and lease.gone
    lease.cu = 30_000  # a later confirmation does not bring a lease back that this host knows is gone
    assert lease.fast == -1 and lease.cu == 30_000
    lease.gone = False
    assert lease.fast == 28_000
