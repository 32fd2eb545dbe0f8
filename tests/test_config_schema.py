"""The config's JSON Schema (pydantic): published, current, and telling the same story as the loader."""
import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml
from hypothesis import given, settings, strategies as st
from typer.testing import CliRunner

from k50core.cli import app as cli_app, demo_config_path
from k50core.config import load_config
from k50core.config.model import parse
from k50core.config.schema import json_schema

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = ROOT / "src" / "k50core" / "config" / "schema.json"
PLACE = re.compile(r'^[a-z]+(\.[^.\[\]"]+|\[\d+\]|\["(?:[^"\\]|\\.)*"\])*$')


def published():
    return json.loads(PUBLISHED.read_text(encoding="utf-8"))


def test_the_published_schema_is_current():
    """schema.json is what the code makes (regenerate: k50core schema > src/k50core/config/schema.json)."""
    assert published() == json_schema()


def test_k50core_schema_prints_it():
    got = CliRunner().invoke(cli_app, ["schema"])
    assert got.exit_code == 0, got.output
    assert json.loads(got.output) == published()


def test_the_demo_and_readme_configs_follow_the_schema():
    validator = jsonschema.Draft202012Validator(published())
    demo = yaml.safe_load(Path(demo_config_path()).read_text())
    readme = (ROOT / "README.md").read_text()
    site = yaml.safe_load(readme.split("```yaml\n# site.yaml\n", 1)[1].split("```", 1)[0])
    for doc in (demo, site):
        assert list(validator.iter_errors(doc)) == []
        assert parse(doc)[1] == []


@pytest.mark.parametrize("doc, place", [
    ({"pooles": {}}, "pooles"),
    ({"pools": {"p": {"numbers": ["+74950000001"], "hold_seconds": 0}}}, "pools.p.hold_seconds"),
    ({"pools": {"p": {"numbers": ["+74950000001"], "type": "ofline"}}}, "pools.p.type"),
    ({"pools": {"p": {"numbers": []}}}, "pools.p.numbers"),
    ({"rules": {"a": 1}}, "rules"),
    ({"attribution": {"max_candidates": 5000}}, "attribution.max_candidates"),
    ({"events": {"ga4": {"measurement_id": "UA-1", "api_secret": "s"}}}, "events.ga4.measurement_id"),
    ({"events": {"webhooks": [{"url": "https://crm.example/h", "secret": "s", "statuses": ["lost"]}]}},
     "events.webhooks[0].statuses[0]"),
])
def test_what_the_schema_refuses_the_loader_refuses_in_the_same_place(doc, place):
    errors = list(jsonschema.Draft202012Validator(published()).iter_errors(doc))
    assert errors, doc
    _, problems = parse(doc)
    assert place in dict(problems), problems


def test_defaults_come_from_the_schema():
    """A pool that gives only its numbers gets the defaults the published schema states."""
    pool = load_config({"pools": {"p": {"numbers": ["+74950000001"]}}}).pools["p"]
    stated = published()["$defs"]["Pool"]["properties"]
    for name in ("type", "hold_seconds", "cooldown_seconds", "on_exhausted", "late_seconds"):
        assert getattr(pool, name) == stated[name]["default"], name
    retry = load_config({}).events.retry
    stated = published()["$defs"]["Retry"]["properties"]
    assert (retry.max_attempts, retry.base_seconds, retry.max_seconds) == \
        (stated["max_attempts"]["default"], stated["base_seconds"]["default"], stated["max_seconds"]["default"])


def test_null_means_the_default():
    cfg = load_config({"site": None, "pools": {"p": {"numbers": ["+74950000001"], "hold_seconds": None}},
                       "rules": None, "events": {"retry": None}})
    assert cfg.pools["p"].hold_seconds == 900 and cfg.rules == [] and cfg.region == "RU"


def test_many_faults_in_one_go_each_in_its_place():
    _, problems = parse({"site": {"region": "Russia", "display": "fancy"}, "bots": {"exclude": "no"},
                         "pools": {"p": {"numbers": ["12"], "late_seconds": 1.5, "colour": "red"}},
                         "store": {"checkpoint_seconds": 0}})
    found = dict(problems)
    assert found["site.region"] == "expected a two-letter country code, got 'Russia'"
    assert found["site.display"] == "expected one of international, national, e164, ru, got 'fancy'"
    assert found["bots.exclude"] == "expected true or false"
    assert found["pools.p.numbers[0]"] == "'12' is not a valid phone number"
    assert found["pools.p.late_seconds"] == "expected a whole number of seconds >= 0, got 1.5"
    assert found["pools.p.colour"].startswith("unknown key (expected one of campaign, cooldown_seconds, ")
    assert found["store.checkpoint_seconds"].startswith("expected a number of seconds above 0")
    assert len(problems) == 7, problems


JSONISH = st.recursive(st.none() | st.booleans() | st.integers(-10, 10**6) | st.floats(allow_nan=False)
                       | st.text(max_size=12),
                       lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                    max_size=4), max_leaves=20)
KEYS = st.sampled_from(["site", "lists", "pools", "rules", "sources", "geoip", "bots", "events", "attribution",
                        "store", "colour"])


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(KEYS, JSONISH, max_size=5))
def test_any_document_loads_or_says_where_it_is_wrong(doc):
    """Nothing but problems: each in a place under a key the document has, in k50core's path style."""
    cfg, problems = parse(doc)
    for place, message in problems:
        assert isinstance(message, str) and message, (place, message)
        assert PLACE.match(place) and re.split(r"[.\[]", place)[0] in doc, (place, message)
    if not problems:
        assert list(jsonschema.Draft202012Validator(published()).iter_errors(doc)) == [] or \
            any(v is None for v in doc.values()) or _has_null(doc), doc


def _has_null(value):
    if value is None:
        return True
    if isinstance(value, dict):
        return any(_has_null(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_null(v) for v in value)
    return False
