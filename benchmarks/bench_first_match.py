"""First match over 1,000 generated rules, and match_many throughput."""
from growthbook.core import evalCondition

from k50core import Engine
from k50core.cli import DEMO_VISITS, demo_config_path

import rulesets
from _build import matcher

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


def bench_engine_match_many_demo_config(benchmark):
    engine = Engine.from_config(demo_config_path())
    attrs = [engine.attributes(v, now=0) for v in DEMO_VISITS] * 500
    benchmark(engine.match_many, attrs)


def bench_engine_decide_many_demo_config(benchmark):
    engine = Engine.from_config(demo_config_path())
    benchmark(engine.decide_many, DEMO_VISITS * 50, 0.0)
