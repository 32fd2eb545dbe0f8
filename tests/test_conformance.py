"""GrowthBook's cross-SDK condition suite (235 cases), in both builds."""
import json
from pathlib import Path

import pytest

import k50core
from k50core.rules import compile_condition

DATA = json.loads((Path(__file__).parent / "conformance_data" / "growthbook-evalCondition.json").read_text())
CASES = DATA["evalCondition"]


def test_suite_is_complete():
    assert len(CASES) == 235


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_case(core, case):
    name, condition, attributes, expected = case[:4]
    groups = case[4] if len(case) > 4 else None
    assert compile_condition(condition, groups, core=core).matches(attributes) is expected


@pytest.mark.parametrize("case", CASES[:40], ids=[c[0] for c in CASES[:40]])
def test_public_evaluate(case):
    name, condition, attributes, expected = case[:4]
    assert k50core.evaluate(condition, attributes, case[4] if len(case) > 4 else None) is expected
