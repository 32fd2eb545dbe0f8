"""New visitors' claims coalesced (pool_redis/claims.py) over a real redis-server: a batch gives
what the same claims one by one give (idle-longest order, stickiness, exhaustion, shares), no
number to two visitors, a batch partly exhausted, and Redis dying while a batch is out.

Batches are made deterministic: the first round trip is held at a gate until the other threads'
claims have queued behind it, so the second round trip carries them all.
"""
import threading
import time

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from redisserver import RedisServer

from k50core.config import load_config
from k50core.pool_redis import RedisPools
from k50core.pool_redis.claims import Waiting

T0 = 1_700_000_000_000


def pools_of(url, numbers=5, hold=10, cool=5, exhausted="default"):
    cfg = load_config({"pools": {"p": {"type": "dynamic", "numbers": [f"+7495100{i:04d}" for i in range(numbers)],
                                       "hold_seconds": hold, "cooldown_seconds": cool, "on_exhausted": exhausted}},
                       "rules": [{"name": "all", "pool": "p"}]})
    # a long timeout: a slow machine must not turn a claim into the default number
    return RedisPools(url + "&timeout=30", cfg.pools, ["all"], now_ms=T0, flusher=False)


def until(cond, seconds=10.0):
    deadline = time.monotonic() + seconds
    while not cond():
        assert time.monotonic() < deadline, "the claims never queued"
        time.sleep(0.002)


class Gate:
    """Holds the coalescer's first round trip until released; records every round trip's calls."""

    def __init__(self, pools):
        self.pools, self.real = pools, pools._claims._send
        self.entered, self.release = threading.Event(), threading.Event()
        self.calls = []
        self.before_second = None  # run just before the second round trip goes out
        pools._claims._send = self.send

    def send(self, calls):
        self.calls.append(calls)
        if len(self.calls) == 1:
            self.entered.set()
            self.release.wait(15)
        elif len(self.calls) == 2 and self.before_second is not None:
            self.before_second()
        return self.real(calls)


def claim_batched(pools, visitors, now_ms):
    """The first visitor's claim held at the gate, the others queued behind it in this order, then
    let go: [(number or None, event kind or None)] in the visitors' order, and the gate."""
    gate = Gate(pools)
    got = [None] * len(visitors)

    def one(k, v):
        a, e = pools.lease("p", 0, v, None, now_ms)
        got[k] = (a.number if a is not None else None, e.event if e is not None else None)

    threads = [threading.Thread(target=one, args=(0, visitors[0]))]
    threads[0].start()
    assert gate.entered.wait(10)
    for k, v in enumerate(visitors[1:], 1):
        t = threading.Thread(target=one, args=(k, v))
        t.start()
        threads.append(t)
        until(lambda k=k: len(pools._claims._queue) == k)
    gate.release.set()
    for t in threads:
        t.join(20)
    return got, gate


def test_a_batch_gives_what_one_by_one_gives(redis_server):
    one, many = pools_of(redis_server.url()), pools_of(redis_server.url())
    try:
        # history: numbers freed at different times, so idle-longest order is not the slot order
        for k, v in enumerate(["a", "b", "c"]):
            one.lease("p", 0, v, None, T0 - 100_000 + k * 1000)
            many.lease("p", 0, v, None, T0 - 100_000 + k * 1000)
        visitors = [f"v{i}" for i in range(7)] + ["v2"]  # v2 twice: the second time it is theirs again
        now = T0 + 20_000  # a, b, c past hold + cooldown; the two never leased come first
        expected = []
        for v in visitors:
            a, e = one.lease("p", 0, v, None, now)
            expected.append((a.number if a is not None else None, e.event if e is not None else None))
        got, gate = claim_batched(many, visitors, now)
        assert got == expected
        assert got[2] == (got[7][0], "start") and got[7][1] is None  # v2 back: the same number
        assert [c[0] for c in gate.calls[1]] == ["k50_claim_many"]  # the seven queued: one call
        numbers = [n for n, e in got if e == "start"]
        assert len(numbers) == len(set(numbers)) == 5  # none to two visitors; the pool of 5 all given
    finally:
        one.close()
        many.close()


def test_concurrent_claims_give_no_number_twice(redis_server):
    pools = pools_of(redis_server.url(), numbers=200, hold=100)
    try:
        got = []

        def worker(w):
            for i in range(40):
                a, _ = pools.lease("p", 0, f"w{w}-{i}", None, T0 + i)
                got.append(a.number if a is not None else None)

        threads = [threading.Thread(target=worker, args=(w,)) for w in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        held = [n for n in got if n is not None]
        assert len(got) == 320 and len(held) == 200 and len(set(held)) == 200  # then exhausted: the default
        assert pools._claims.claims == 320
    finally:
        pools.close()


def test_a_batch_partly_exhausted(redis_server):
    pools = pools_of(redis_server.url(), numbers=3)
    try:
        got, gate = claim_batched(pools, list("abcdef"), T0)
        assert [n is not None for n, _ in got] == [True, True, True, False, False, False]
        assert len({n for n, _ in got[:3]}) == 3
        assert [e for _, e in got] == ["start"] * 3 + [None] * 3
        assert pools.stats(T0)["p"]["leased"] == 3
    finally:
        pools.close()


def test_a_batch_partly_exhausted_shares(redis_server):
    pools = pools_of(redis_server.url(), numbers=2, exhausted="share")
    try:
        got, _ = claim_batched(pools, list("abcd"), T0)
        assert got[0][0] != got[1][0] and {got[2][0], got[3][0]} <= {got[0][0], got[1][0]}  # joins
        assert [e for _, e in got] == ["start", "start", "share", "share"]
    finally:
        pools.close()


def test_redis_dying_while_a_batch_is_out():
    server = RedisServer(aof=True)
    pools = pools_of(server.url("dying"))
    try:
        def die():
            server.kill()

        gate = Gate(pools)
        gate.before_second = die
        got = {}

        def one(v):
            a, _ = pools.lease("p", 0, v, None, T0)
            got[v] = a

        first = threading.Thread(target=one, args=("a",))
        first.start()
        assert gate.entered.wait(10)
        rest = [threading.Thread(target=one, args=(v,)) for v in "bcd"]
        for k, t in enumerate(rest, 1):
            t.start()
            until(lambda k=k: len(pools._claims._queue) == k)
        gate.release.set()
        for t in [first, *rest]:
            t.join(20)
        assert got["a"] is not None  # its round trip was out before Redis died
        assert got["b"] is None and got["c"] is None and got["d"] is None  # the default number: no crash
        assert pools.health() == "degraded" and pools.unreachable >= 1
        assert not pools._claims._sending and not pools._claims._queue  # nothing stuck
        server.start()
        pools._down_until = 0.0  # (instead of waiting RETRY_AFTER_S)
        pools._claims._send = gate.real
        # a restart that may have lost the last second: the numbers wait hold + cooldown, and this
        # host re-asserts the lease it knows
        b, _ = pools.lease("p", 0, "b", None, T0 + 1000)
        assert b is None or b.number != got["a"].number
        assert pools.returning("a", None, T0 + 1500).number == got["a"].number
        a, e = pools.lease("p", 0, "a", None, T0 + 2000)  # Redis has a's lease again
        assert a.number == got["a"].number and e is None
    finally:
        pools.close()
        server.stop()


@pytest.fixture(scope="module")
def twin_server():
    server = RedisServer()
    yield server
    server.stop()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 12_000), st.lists(st.sampled_from(["a", "b", "c", "d", "e", "f", ""]),
                                                           min_size=1, max_size=6)),
                min_size=1, max_size=6),
       st.sampled_from(["default", "share"]))
def test_batches_and_one_by_one_agree(twin_server, steps, exhausted):
    """Any history of batches (each at its own instant, visitors repeating, anonymous ones) gives
    each visitor what the same claims one by one give, in the same order."""
    one = pools_of(twin_server.url(), numbers=3, hold=5, cool=3, exhausted=exhausted)
    many = pools_of(twin_server.url(), numbers=3, hold=5, cool=3, exhausted=exhausted)
    try:
        now = T0
        for dt, visitors in steps:
            now += dt
            expected = []
            for v in visitors:
                a, e = one.lease("p", 0, v or None, None, now)
                expected.append((a and (a.number, a.shared, a.expires_at), e and (e.event, e.visitor_id)))
            batch = [Waiting(many.by_name["p"], (now, 0, v, "", "1" if v else "0")) for v in visitors]
            many._claims.send_batch(batch)
            got = []
            for w, v in zip(batch, visitors):
                assert w.error is None
                a, e = many._claimed(w.ps, w.reply, v or None, None, now)
                got.append((a and (a.number, a.shared, a.expires_at), e and (e.event, e.visitor_id)))
            assert got == expected
    finally:
        one.close()
        many.close()
