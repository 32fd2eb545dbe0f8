"""The pool state machine of test_pool_machine.py over pools kept in a real redis-server.

The same random visits, heartbeats (clocks behind too), clock jumps onto hold and cooldown
boundaries, resizes and reloads drive one engine whose pools live in Redis, checked against the
same model: a live lease keeps its visitor, never two live unshared leases of one number, a new
lease only after the last one's end and cooldown, every lease start and renewal in the log with
the end the model knows. (The builds in memory are compared with each other there; Redis breaks
ties between numbers idle equally long by slot, the segment from each process's hint on, so the
two backends are held to the model rather than to each other.)
"""
import pytest
import test_pool_machine as base
from hypothesis import HealthCheck, settings
from hypothesis.stateful import invariant, rule

from k50core import Engine

SERVER = {}


@pytest.fixture(autouse=True, scope="module")
def _server(redis_server):
    SERVER["url"] = redis_server.url
    yield
    SERVER.clear()


class RedisPools(base.Pools):
    def __init__(self):
        base.RuleBasedStateMachine.__init__(self)
        self.numbers = list(base.NUMBERS)
        self.on_exhausted = "share"
        self.fast_heard, self.slow_heard = [], []
        self.fast = self.slow = Engine.from_config(base.config(self.numbers), state_url=SERVER["url"](),
                                                   lease_sink=self.fast_heard.extend)
        self.now = 1000.0
        self.tokens = []
        self.leases = {}
        self.held = {}
        self.until = {}
        self.number_of = {}
        self.shown = {}
        self.cut = set()
        self.starts = 0
        self.draining = True
        self.hold = base.HOLD

    def _both(self, method, *args, **kw):
        return getattr(self.fast, method)(*args, **kw)

    @rule()
    def everyone_comes(self):
        """Every visitor at once: the pool runs out, and numbers pass on at the edge of their cooldown."""
        for visitor in base.VISITORS:
            self.assign(visitor, None, False, 5)

    def teardown(self):
        self.fast.pools.close()

    @invariant()
    def builds_agree_and_log_is_complete(self):
        """As the base machine's, for the one engine: the log complete, each lease's end as the model's."""
        if not self.draining:
            return
        a = self.fast_heard + self.fast.drain_leases()
        self.fast_heard.clear()
        for e in a:
            rec = self.leases.setdefault((e.pool, e.lease, e.number), [e.number, e.visitor_id, e.start, e.end, e.shared])
            rec[3] = e.end if e.event == "end" else max(rec[3], e.end)
            rec[4] = rec[4] or e.shared
            if e.event == "start":
                self.starts += 1
        claims = sum(p["claims"] for p in self.fast.stats(now=self.now)["pools"].values())
        assert claims == self.starts, "every lease start is in the log"
        for token, until in self.until.items():
            pool, slot, gen = int(token[:2], 16), int(token[2:10], 16), int(token[10:16], 16)
            rec = self.leases.get(("q" if pool == 1 else "p", f"{slot}.{gen}", self.number_of[token]))
            assert rec is not None and round(rec[3] * 1000) == until, (token, rec, until)


RedisPools.TestCase.settings = settings(max_examples=100, stateful_step_count=50, deadline=None,
                                        suppress_health_check=[HealthCheck.too_slow])
TestRedisPools = RedisPools.TestCase
