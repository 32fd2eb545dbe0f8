"""Engine: visit → attributes → decision, in both builds."""
import pytest

from k50core import Decision, Engine
from k50core.cli import DEMO_VISITS, demo_config_path

IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


@pytest.fixture
def engine(build):
    return Engine.from_config(demo_config_path(), implementation=build)


def test_attributes_of_a_visit(engine):
    attrs = engine.attributes({
        "visitor_id": "v1", "ts": 1700000000, "ip": "5.101.68.156", "user_agent": IPHONE,
        "url": "https://Shop.Example.ru/catalog/sofas?utm_source=yandex&utm_medium=cpc&utm_campaign=spring_sale",
        "referrer": "https://yandex.ru/search/?text=x", "cookies": {"ab": "b", "_ga": "GA1.1.123.456"},
    })
    assert attrs["landing"] == {"host": "shop.example.ru", "path": "/catalog/sofas"}
    assert attrs["query"]["utm_campaign"] == "spring_sale"
    assert attrs["referrer"] == {"host": "yandex.ru"}
    assert attrs["traffic_type"] == "ads" and attrs["source"] == "yandex"
    assert attrs["geo"] == {"country": "RU", "region": "RU-MOW", "city": "Moscow"}
    assert attrs["device"]["type"] == "mobile" and attrs["device"]["os"] == "iOS"
    assert attrs["cookie"] == {"ab": "b", "_ga": "GA1.1.123.456"}
    assert attrs["ip"] == "5.101.68.156" and attrs["visitor_id"] == "v1" and attrs["ts"] == 1700000000.0


def test_decisions_of_demo_visits(engine):
    got = {v["visitor_id"]: engine.decide(v, now=0) for v in DEMO_VISITS}
    assert got["v1"] == Decision("msk-search", "pool", "msk")        # Moscow, organic Yandex
    assert got["v2"] == Decision("spb", "pool", "spb")               # St Petersburg
    assert got["v3"] == Decision("spring-campaign", "pool", "msk")   # utm_campaign wins by priority
    assert got["v4"] == Decision("office", "exclude", None)          # office IP: no number
    assert got["v5"] == Decision("direct", "pool", "direct")         # direct visit to the catalogue
    assert got["v6"] == Decision("(bots)", "exclude", None)          # Googlebot takes nothing
    assert got["v7"] == Decision(None, "none", None)                 # garbage visit: page keeps its number


def test_batch_forms_agree(engine):
    attrs = [engine.attributes(v, now=0) for v in DEMO_VISITS]
    assert engine.match_many(attrs) == [engine.match(a) for a in attrs]
    assert engine.decide_many(DEMO_VISITS, now=0) == [engine.decide(v, now=0) for v in DEMO_VISITS]


def test_bots_can_be_let_through(build):
    cfg = {"bots": {"exclude": False}, "pools": {"p": {"type": "static", "numbers": ["+74950000100"]}},
           "rules": [{"name": "all", "pool": "p"}]}
    engine = Engine.from_config(cfg, implementation=build)
    assert engine.decide({"user_agent": GOOGLEBOT}).rule == "all"


def test_office_ipv6_and_mapped_ipv4(engine):
    assert engine.decide({"ip": "2001:db8::5", "user_agent": CHROME}).kind == "exclude"
    assert engine.decide({"ip": "::ffff:203.0.113.9", "user_agent": CHROME}).kind == "exclude"
    assert engine.decide({"ip": "203.0.114.1", "user_agent": CHROME}).kind != "exclude"


def test_first_match_respects_priority_with_many_rules(build):
    rules = [{"name": f"c{i}", "when": {"query.utm_campaign": f"camp{i % 50}"}, "pool": "p"} for i in range(200)]
    rules.insert(120, {"name": "early-region", "when": {"geo.region": "RU-MOW"}, "pool": "p"})
    cfg = {"pools": {"p": {"type": "static", "numbers": ["+74950000100"]}}, "rules": rules}
    engine = Engine.from_config(cfg, implementation=build)
    attrs = {"query": {"utm_campaign": "camp7"}, "geo": {"region": "RU-MOW"}, "device": {"type": "desktop"}}
    assert engine.match(attrs).rule == "c7"
    attrs["query"]["utm_campaign"] = "camp49"
    assert engine.match(attrs).rule == "c49"
    attrs["query"]["utm_campaign"] = "none"
    assert engine.match(attrs).rule == "early-region"


COLD_START = """
import sys, time
from k50core import Engine
engine = Engine.from_config({"pools": {"p": {"type": "static", "numbers": ["+74950000001"]}},
                             "rules": [{"name": "m", "when": {"device.type": "mobile"}, "pool": "p"}]},
                            implementation=sys.argv[1], warm=sys.argv[2] == "warm")
from k50core.enrich.source import _suffixes
loaded = "user_agents" in sys.modules and _suffixes.cache_info().currsize == 1  # the Public Suffix List too
engine.decide({"url": "https://shop.example.ru/", "user_agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like "
               "Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"})
print(loaded)
"""


@pytest.mark.parametrize("warm", ["warm", "cold"])
def test_from_config_leaves_the_user_agent_parser_loaded_for_the_first_visit(build, warm):
    """The User-Agent parser's patterns (~0.3 s to load) and the Public Suffix List (~0.1 s, read for a
    referrer) are loaded by from_config, so the first visitor of an embedding app does not pay for
    them; warm=False leaves them to the first visit."""
    import subprocess
    import sys
    done = subprocess.run([sys.executable, "-c", COLD_START, build, warm], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == ("True" if warm == "warm" else "False")
