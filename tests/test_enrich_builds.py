"""The compiled enricher (k50core._enrich) gives the very dicts the reference (k50core._engine_py.enrich) gives.

Compared whole: the same keys in the same order, the same types (a str subclass kept where the
reference keeps it), the same values, for any visit (tests/strategies.py: every field of every
type, lone surrogates, invalid UTF-8, the edges of each size limit, malformed addresses and URLs,
cookies as a dict, a mapping or a header) and for every branch of the source classification.
"""
import time
from decimal import Decimal
from types import MappingProxyType

import pytest
import test_source
from hypothesis import given, settings, strategies as st
from strategies import HOSTS, UTM_VALUES, Proxy, enrich_visits, urls

from k50core._impl import available
from k50core.enrich import Enricher, SourceCatalogue
from k50core.enrich.url import host_of, split_url

pytestmark = pytest.mark.skipif("compiled" not in available(), reason="no compiled build to compare")

OVERRIDES = {
    "partner": {"type": "referral", "hosts": ["partner.ru"], "aliases": ["partner_ru"]},
    "vk": {"type": "ads", "hosts": ["vk.link"]},
    "yandex": {"type": "referral"},
    "shops": {"type": "internal", "hosts": ["example.ru"]},
    "$mediums": {"sms": "messenger", "context": None, "organic": "email"},
    "$paid_mediums": ["cpc_vk", "promo"],
    "$click_ids": {"vkclid": "vk", "mc_cid": {"source": "mailchimp", "type": "email"}, "fbclid": None,
                   "ysclid": {"source": "yandex", "type": "search"}},
}
CATALOGUES = [SourceCatalogue(), SourceCatalogue(OVERRIDES)]


def _builds():
    return available()["compiled"], available()["reference"]


def enrichers(catalogue, cache_size=65536, geoip=None):
    """(compiled, reference) enrichers of one catalogue, each with its build's GeoIP unless given one."""
    return tuple(Enricher(geoip if geoip is not None else core.GeoIP(), catalogue, core, cache_size)
                 for core in _builds())


PAIRS = [enrichers(c) for c in CATALOGUES]
SMALL = enrichers(CATALOGUES[0], cache_size=3)  # its caches fill and empty every few visits
FOREIGN_GEO = enrichers(CATALOGUES[0], geoip=available()["reference"].GeoIP())  # GeoIP through .lookup


def shape(value):
    """The attribute dict as something == compares strictly: types, order, NaN."""
    if isinstance(value, dict):
        return ("dict", type(value).__name__, [(shape(k), shape(v)) for k, v in value.items()])
    if isinstance(value, float):
        return ("float", repr(value))
    return (type(value).__name__, value)


def agree(pair, visit, now):
    compiled, reference = pair
    a, b = compiled(visit, now), reference(visit, now)
    if now is None and a.get("ts") != b.get("ts"):  # both read the clock, a moment apart
        assert abs(a["ts"] - time.time()) < 600 and abs(b["ts"] - time.time()) < 600
        a, b = dict(a, ts=0.0), dict(b, ts=0.0)
    assert shape(a) == shape(b), visit
    return a


nows = st.one_of(st.none(), st.floats(), st.integers(-10**12, 10**12), st.just(1_700_000_000.0),
                 st.sampled_from(["5", b"5", " 7 ", Decimal("1.5"), True]))


@settings(max_examples=600, deadline=None)
@given(enrich_visits, nows)
def test_builds_agree_on_any_visit(visit, now):
    for pair in PAIRS:
        agree(pair, visit, now)


@settings(max_examples=300, deadline=None)
@given(st.lists(enrich_visits, min_size=1, max_size=8), st.just(5.0))
def test_builds_agree_through_cache_evictions(visits, now):
    for visit in visits + visits[::-1]:  # seen again, after other URLs went through the small caches
        agree(SMALL, visit, now)


@settings(max_examples=200, deadline=None)
@given(enrich_visits)
def test_builds_agree_with_any_geoip_object(visit):
    agree(FOREIGN_GEO, visit, 1.0)


@settings(max_examples=500, deadline=None)
@given(urls(), st.one_of(st.none(), urls(), st.sampled_from(HOSTS)))
def test_visit_classification_agrees(url, referrer):
    """Every branch of the classification: utm tags, click ids, markers, same site, catalogue, referral."""
    for pair in PAIRS:
        attrs = agree(pair, {"url": url, "referrer": referrer}, 0.0)
        assert attrs["traffic_type"] in test_source.TRAFFIC_TYPES


def test_attributes_of_a_full_visit():
    """One visit whose every part is known, in both builds: not merely alike, right."""
    visit = {"visitor_id": "v1", "ts": 1_700_000_000, "ip": "77.88.8.8",
             "url": "https://shop.example.ru/catalog/%D0%B4?utm_source=ya&utm_medium=cpc&yclid=1",
             "referrer": "https://yandex.ru/search/?text=x", "user_agent": "curl/8.0",
             "cookies": 'k50_vid=abc; x="1"; bad'}
    for enrich in PAIRS[0]:
        attrs = enrich(visit, 5.0)
        assert list(attrs) == ["visitor_id", "ts", "landing", "query", "referrer", "source", "traffic_type",
                               "ip", "geo", "device", "cookie"]
        assert attrs["ts"] == 1_700_000_000.0 and type(attrs["ts"]) is float
        assert attrs["landing"] == {"host": "shop.example.ru", "path": "/catalog/д"}
        assert attrs["query"] == {"utm_source": "ya", "utm_medium": "cpc", "yclid": "1"}
        assert (attrs["source"], attrs["traffic_type"]) == ("yandex", "ads")
        assert attrs["geo"]["country"] == "RU"
        assert attrs["cookie"] == {"k50_vid": "abc", "x": "1"}


def test_returned_dicts_are_the_callers():
    """A caller may change what it was given: the cached URL's parts are copied out, not shared."""
    for enrich in PAIRS[0]:
        visit = {"url": "https://shop.example.ru/p?utm_source=vk"}
        first = enrich(visit, 1.0)
        first["landing"]["path"] = "/changed"
        first["query"]["utm_source"] = "changed"
        again = enrich(visit, 1.0)
        assert again["landing"]["path"] == "/p" and again["query"]["utm_source"] == "vk"


def test_str_subclass_kept_where_the_reference_keeps_it():
    from strategies import Text

    for enrich in PAIRS[0]:
        attrs = enrich({"visitor_id": Text("v"), "ip": Text("1.2.3.4"), "url": Text("https://a.ru/")}, 1.0)
        assert type(attrs["visitor_id"]) is Text and type(attrs["ip"]) is Text


# ---- the classifier on its own, over test_source's cases and its fuzzing ---------------------------

def _cases(test, *names):
    """The parameters of one of test_source's parametrised tests."""
    (mark,) = [m for m in test.pytestmark if m.name == "parametrize"]
    return [dict(zip(names, values)) for values in mark.args[1]]


def _classifiers(catalogue):
    return [core.Classifier(catalogue) for core in _builds()]


@pytest.mark.parametrize("build", ["compiled", "reference"])
def test_source_cases_in_both_builds(build):
    """test_source's tables, through each build's Classifier (test_source itself runs the active one)."""
    classify = available()[build].Classifier(test_source.CAT).classify
    site = test_source.SITE
    checked = 0
    for c in _cases(test_source.test_referrer_catalogue, "referrer", "expected"):
        assert classify(site, {}, c["referrer"]) == c["expected"], c
        checked += 1
    for c in _cases(test_source.test_visits, "url", "referrer", "expected"):
        host, _, query = split_url(c["url"])
        assert classify(host, query, host_of(c["referrer"])) == c["expected"], c
        checked += 1
    for c in _cases(test_source.test_internal, "landing", "referrer"):
        assert classify(c["landing"], {}, c["referrer"]) == (None, "internal"), c
        checked += 1
    for c in _cases(test_source.test_not_internal, "landing", "referrer", "expected"):
        assert classify(c["landing"], {}, c["referrer"]) == c["expected"], c
        checked += 1
    for test in (test_source.test_ads, test_source.test_organic_click_markers, test_source.test_utm):
        for c in _cases(test, "query", "referrer", "expected"):
            assert classify(site, c["query"] or {}, c["referrer"]) == c["expected"], c
            checked += 1
    assert checked > 200


queries = st.one_of(
    st.dictionaries(st.sampled_from(["utm_source", "utm_medium", "gclid", "yclid", "fbclid", "ysclid", "srsltid",
                                     "vkclid", "mc_cid", "x"]),
                    st.one_of(st.sampled_from(UTM_VALUES), st.none(), st.integers(), st.text(max_size=6)), max_size=5),
    test_source.query_like,
)
hosts = st.one_of(st.sampled_from(HOSTS), test_source.host_like)


@settings(max_examples=1000, deadline=None)
@given(hosts, queries, hosts)
def test_classifiers_agree(landing, query, referrer):
    for catalogue in CATALOGUES:
        compiled, reference = _classifiers(catalogue)
        assert compiled.classify(landing, query, referrer) == reference.classify(landing, query, referrer)
        if isinstance(query, dict):  # the other mappings go to the reference: the dict path is the one to prove
            for other in (Proxy(query), MappingProxyType(query)):
                assert compiled.classify(landing, other, referrer) == reference.classify(landing, other, referrer)
