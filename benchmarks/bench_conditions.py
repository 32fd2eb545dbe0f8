"""One 5-clause condition: k50core (both builds) vs GrowthBook and rule-engine."""
import pytest
import rule_engine
from growthbook.core import evalCondition
from rulesets import one_condition

import k50core
from k50core import _impl
from k50core.rules import compile_condition

COND, ATTRS, TEXT = one_condition()


@pytest.mark.parametrize("build", ["compiled", "reference"])
def bench_k50core_compiled_condition(benchmark, build):
    m = compile_condition(COND, core=_impl.by_name(build))
    assert benchmark(m.matches, ATTRS) is True


def bench_k50core_evaluate_uncompiled(benchmark):
    assert benchmark(k50core.evaluate, COND, ATTRS) is True


def bench_growthbook_evalCondition(benchmark):
    assert benchmark(evalCondition, ATTRS, COND) is True


def bench_rule_engine(benchmark):
    rule = rule_engine.Rule(TEXT, context=rule_engine.Context(resolver=rule_engine.resolve_item))
    assert benchmark(rule.matches, ATTRS) is True
