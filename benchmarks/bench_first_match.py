"""First match over 1,000 generated rules, and match_many throughput.

The mixed rule sets (every clause kind the rule index takes, and a few it
cannot) are swept from 100 to 100,000 rules by sweep_rules.py; here 1,000 and
10,000 of them run under pytest-benchmark, beside GrowthBook's loop at 1,000.
"""
import rulesets
from _build import matcher
from growthbook.core import evalCondition

from k50core import Engine
from k50core.cli import DEMO_VISITS, demo_config_path

RULES = rulesets.rules(1000)
VISITS = rulesets.visits(3000)


def growthbook_first_match(attrs):
    for i, cond in enumerate(RULES):
        if evalCondition(attrs, cond, rulesets.SAVED_GROUPS):
            return i
    return -1


def bench_k50core_first_match_1000_rules(benchmark):
    m = matcher(RULES, rulesets.SAVED_GROUPS)
    benchmark(m.first_match_many, VISITS)


def bench_k50core_reference_first_match_1000_rules(benchmark):
    m = matcher(RULES, rulesets.SAVED_GROUPS, "reference")
    benchmark.pedantic(m.first_match_many, (VISITS[:30],), rounds=3)


def bench_growthbook_loop_1000_rules(benchmark):
    benchmark.pedantic(lambda: [growthbook_first_match(v) for v in VISITS[:30]], rounds=3)


MIXED = {n: rulesets.mixed_rules(n) for n in (1000, 10000)}
MIXED_VISITS = {n: rulesets.mixed_visits(5000, n, seed=2026, mix="alt") for n in MIXED}


def bench_k50core_first_match_mixed_1000_rules(benchmark):
    m = matcher(MIXED[1000], {})
    benchmark(m.first_match_many, MIXED_VISITS[1000])


def bench_k50core_first_match_mixed_10000_rules(benchmark):
    m = matcher(MIXED[10000], {})
    benchmark(m.first_match_many, MIXED_VISITS[10000])


def bench_growthbook_loop_mixed_1000_rules(benchmark):
    def loop():
        return [next((i for i, c in enumerate(MIXED[1000]) if evalCondition(v, c, {})), -1) for v in MIXED_VISITS[1000][:30]]
    benchmark.pedantic(loop, rounds=3)


def bench_engine_match_many_demo_config(benchmark):
    engine = Engine.from_config(demo_config_path())
    attrs = [engine.attributes(v, now=0) for v in DEMO_VISITS] * 500
    benchmark(engine.match_many, attrs)


def bench_engine_decide_many_demo_config(benchmark):
    engine = Engine.from_config(demo_config_path())
    benchmark(engine.decide_many, DEMO_VISITS * 50, 0.0)
