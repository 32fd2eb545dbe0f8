"""The compiled visit summary and report dimensions (k50core._enrich, _summary.pxi) answer exactly as
their reference (k50core._engine_py.summary): the same dict (keys, order, types) or tuple, or the
same exception, for the attributes enrichment makes and for any odd attribute dict besides.
"""
from collections import OrderedDict
from types import MappingProxyType

import pytest
from hypothesis import given, settings, strategies as st
from strategies import enrich_visits
from test_enrich_builds import shape

from k50core._impl import available
from k50core.enrich import Enricher, SourceCatalogue

pytestmark = pytest.mark.skipif("compiled" not in available(), reason="no compiled build to compare")

COMPILED, REFERENCE = (available().get("compiled"), available()["reference"])
ENRICH = Enricher(REFERENCE.GeoIP(), SourceCatalogue(), REFERENCE)


class Text(str):
    """A str subclass: the compiled fast paths take exact str only."""


def outcome(fn, *args):
    try:
        return "ok", shape(fn(*args))
    except Exception as exc:  # the reference's own errors: both builds must raise the same type
        return "raised", type(exc).__name__


def agree(attrs, rule="paid", pool="p", number="+74950000000"):
    assert outcome(COMPILED.visit_summary, attrs) == outcome(REFERENCE.visit_summary, attrs)
    assert outcome(COMPILED.visit_combo, attrs, rule, pool, number) == \
        outcome(REFERENCE.visit_combo, attrs, rule, pool, number)


@settings(max_examples=300)
@given(enrich_visits)
def test_enriched_visits(visit):
    agree(ENRICH(visit, 1_000.0))


odd_scalar = st.one_of(st.none(), st.just(""), st.text(max_size=8), st.builds(Text, st.text(max_size=8)),
                       st.integers(-3, 3), st.floats(allow_nan=True), st.booleans(), st.just({}), st.just([]),
                       st.just(()))
often_text = st.one_of(st.just(""), st.text(min_size=1, max_size=8), st.text(alphabet="/a.", max_size=6), odd_scalar)


def part(*keys):
    """A part of the visit as enrichment makes it (a dict of these keys, each perhaps missing, often
    text), or anything else in its place."""
    fields = st.fixed_dictionaries({}, optional={k: often_text for k in keys})
    return st.one_of(fields, fields, fields, odd_scalar, fields.map(OrderedDict),
                     st.dictionaries(st.one_of(st.builds(Text, st.sampled_from(keys)), st.integers(0, 2)),
                                     often_text, max_size=3))


UTM = ["utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term", "utm_", "gclid", "utmx"]
odd_attributes = st.fixed_dictionaries({}, optional={
    "source": often_text, "traffic_type": often_text, "ip": often_text,
    "query": part(*UTM), "landing": part("host", "path"), "referrer": part("host"),
    "geo": part("region", "city", "country"), "device": part("type"),
    "cookie": part("_ga", "_ga_ABC", "_ga_", "_ga_XYZ", "k50_vid"),
})


@settings(max_examples=1000)
@given(odd_attributes, st.one_of(st.none(), st.text(max_size=4)))
def test_odd_attributes(attrs, rule):
    agree(attrs, rule)


@pytest.mark.parametrize("attrs", [
    {},
    {"landing": {"host": "a.ru", "path": ""}},
    {"landing": {"host": "a.ru/x", "path": "/y"}},          # a slash in the host: the reference's join
    {"landing": {"host": "", "path": "/only"}},
    {"landing": {"host": 5, "path": "/p"}},                  # not text: the reference raises, so must this
    {"landing": OrderedDict(host="a.ru", path="/p")},        # a dict subclass: not a dict for either build
    {"geo": {"region": 77, "city": 0.0, "country": {}}},     # dimensions that are not text
    {"cookie": {"_ga": "GA1.1.1.2", "_ga_A": "GS2.1.s17$o1", "_ga_B": "GS1.1.18.1.0"}},
    {"query": {Text("utm_source"): "y", "utm_medium": Text("cpc"), 3: "x"}},
])
def test_edges(attrs):
    agree(attrs)


def test_mappings_that_are_not_dicts_go_to_the_reference():
    attrs = MappingProxyType({"source": "google", "geo": {"region": "MOW"}})
    agree(attrs)
    assert COMPILED.visit_summary(attrs) == {"source": "google", "region": "MOW"}


def test_summary_and_dimensions_of_a_typical_visit():
    """What both builds make of one enriched visit, spelled out (not only that they agree)."""
    attrs = ENRICH({"visitor_id": "v1", "url": "https://shop.ru/catalog/x?utm_source=yandex&utm_medium=cpc&x=1",
                    "referrer": "https://yandex.ru/", "ip": "8.8.8.8"}, 1_000.0)
    for core in (COMPILED, REFERENCE):
        summary = core.visit_summary(attrs)
        assert summary["utm"] == {"utm_source": "yandex", "utm_medium": "cpc"}
        assert summary["landing"] == "shop.ru/catalog/x"
        assert summary["referrer"] == "yandex.ru"
        assert summary["ip"] == "8.8.8.8"
        combo = core.visit_combo(attrs, "paid", "p", "+7")
        assert combo[2:7] == ("yandex", "cpc", None, "paid", "p")
        assert combo[9:11] == ("/catalog/x", "shop.ru")
        assert combo[-1] == "+7"
