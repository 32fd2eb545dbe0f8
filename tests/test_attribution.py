"""Engine.attribute: every status, repeat callers, idempotency, bad payloads, durability."""
import heapq
import os
import signal
import subprocess
import sys
import textwrap

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from k50core import Engine
from k50core.attribution import CallError, visit_summary

CONFIG = {
    "site": {"default_number": "+74951234567"},
    "pools": {
        "p": {"type": "dynamic", "numbers": ["+74950000001", "+74950000002"], "hold_seconds": 900,
              "cooldown_seconds": 300, "late_seconds": 600, "on_exhausted": "share"},
        "s": {"type": "static", "numbers": ["+74950000100"]},
        "o": {"type": "offline", "numbers": ["+78120000001"], "campaign": "newspaper"},
    },
    "rules": [{"name": "print", "when": {"query.utm_source": "print"}, "pool": "s"}, {"name": "all", "pool": "p"}],
}


def visit(v, url="https://shop.example.ru/?utm_source=yandex&utm_medium=cpc&utm_campaign=sofas"):
    return {"visitor_id": v, "session_id": f"s-{v}", "ip": "5.101.68.156", "url": url,
            "user_agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
            "cookies": {"_ga": "GA1.1.1234567890.1700000000"}}


def call(cid, number, at, caller="+79161234567", **extra):
    return {"call_id": cid, "number": number, "caller": caller, "started_at": at, "duration_seconds": 60,
            "answered": True, **extra}


@pytest.fixture
def engine(build, store_url):
    with Engine.from_config(CONFIG, implementation=build, store=store_url) as e:
        yield e


def test_matched_with_the_visit_attributes(engine):
    a = engine.assign(visit("v1"), now=1000)
    got = engine.attribute(call("c1", a.number, 1500), now=1600)
    assert (got.status, got.visitor_id, got.session_id, got.rule, got.pool) == ("matched", "v1", "s-v1", "all", "p")
    assert got.attributes["utm"] == {"utm_source": "yandex", "utm_medium": "cpc", "utm_campaign": "sofas"}
    assert (got.attributes["source"], got.attributes["region"], got.attributes["device"]) == ("yandex", "RU-MOW", "mobile")
    assert got.attributes["ga_client_id"] == "1234567890.1700000000"
    assert 0.9 <= got.likelihood <= 1.0 and not got.repeat


def test_heartbeats_extend_what_matches(engine):
    a = engine.assign(visit("v1"), now=1000)
    engine.heartbeat(a.token, now=1800)                      # lease now ends at 2700, not 1900
    assert engine.attribute(call("c1", a.number, 2500), now=2500).status == "matched"


def test_late_then_unmatched(engine):
    a = engine.assign(visit("v1"), now=1000)                 # ends 1900; late window 600 s
    late = engine.attribute(call("c1", a.number, 2000), now=2000)
    matched = engine.attribute(call("c0", a.number, 1500), now=1500)
    assert (late.status, late.visitor_id) == ("late", "v1") and late.likelihood < matched.likelihood
    assert engine.attribute(call("c2", a.number, 2600), now=2600).status == "unmatched"
    other = ({"+74950000001", "+74950000002"} - {a.number}).pop()
    never = engine.attribute(call("c3", other, 1500), now=2600)
    assert never.status == "unmatched" and never.visitor_id is None and never.pool == "p"


def test_ambiguous_when_shared(engine):
    first = engine.assign(visit("v1"), now=1000)
    engine.assign(visit("v2"), now=1010)
    shared = engine.assign(visit("v3"), now=1200)             # pool of two: v3 joins the least recent (v1)
    assert shared.shared and shared.number == first.number
    got = engine.attribute(call("c1", first.number, 1250), now=1300)
    assert got.status == "ambiguous"
    assert [c.visitor_id for c in got.candidates] == ["v3", "v1"]   # v3 was seen most recently
    assert got.visitor_id == "v3" and abs(sum(c.likelihood for c in got.candidates) - 0.97) < 0.01
    assert got.candidates[0].likelihood > got.candidates[1].likelihood


def test_a_joiner_who_returns_keeps_the_shared_number_and_is_seen_again(engine):
    first = engine.assign(visit("v1"), now=1000)
    engine.assign(visit("v2"), now=1010)
    joined = engine.assign(visit("v3"), now=1200)             # v3 joins v1's number
    v4 = engine.assign(visit("v4"), now=1300)                 # v4 joins the other (v2's: now least recent)
    assert v4.shared and v4.number != joined.number
    engine.assign(visit("v1"), now=1400)                      # v1 back: most recent on its number
    back = engine.assign(visit("v3"), now=1500)               # v3 back: same number, not a new join elsewhere
    assert back.number == joined.number == first.number and back.shared
    assert back.token == joined.token and back.expires_at == 1500 + 900
    got = engine.attribute(call("c1", first.number, 1510), now=1520)
    assert got.status == "ambiguous"
    assert [c.visitor_id for c in got.candidates] == ["v3", "v1"]   # v3's return at 1500 counts
    assert round(got.candidates[0].seen_at) == 1500


def test_static_and_offline(engine):
    got = engine.attribute(call("c1", "+74950000100", 1000), now=1000)
    assert (got.status, got.rule, got.pool, got.likelihood) == ("static", "print", "s", 1.0)
    got = engine.attribute(call("c2", "8 (812) 000-00-01", 1000, caller=None), now=1000)
    assert (got.status, got.rule, got.pool) == ("offline", "newspaper", "o")


def test_repeat_caller_links_the_first_call(engine):
    a = engine.assign(visit("v1"), now=1000)
    engine.attribute(call("c1", a.number, 1100, caller="8 916 123-45-67"), now=1100)
    second = engine.attribute(call("c2", "+74950000100", 5000), now=5000)
    assert second.repeat and second.first_call_id == "c1"
    assert not engine.attribute(call("c3", "+74950000100", 5000, caller="+79990000000"), now=5000).repeat


def test_the_same_call_id_records_once(engine):
    a = engine.assign(visit("v1"), now=1000)
    one = engine.attribute(call("c1", a.number, 1100), now=1100)
    again = engine.attribute(call("c1", a.number, 3000), now=3000)   # a webhook retried, even with other data
    assert again == one
    assert engine.store.count("calls") == 1


@pytest.mark.parametrize("bad, field", [
    ({"number": "+74950000001", "started_at": 1}, "call_id"),
    ({"call_id": "c", "number": "12", "started_at": 1}, "number"),
    ({"call_id": "c", "number": "+74950000001"}, "started_at"),
    ({"call_id": "c", "number": "+74950000001", "started_at": "yesterday"}, "started_at"),
    ({"call_id": "c", "number": "+74950000001", "started_at": float("nan")}, "started_at"),
    ({"call_id": "c", "number": "+74950000001", "started_at": 1, "duration_seconds": -5}, "duration_seconds"),
    ({"call_id": "c", "number": "+74950000001", "started_at": 1, "answered": "yes"}, "answered"),
    ({"call_id": "c" * 200, "number": "+74950000001", "started_at": 1}, "call_id"),
    ({"call_id": "c", "number": "+74950000001", "started_at": 1, "caller": ["x"]}, "caller"),
])
def test_bad_payloads_name_the_field(engine, bad, field):
    with pytest.raises(CallError) as err:
        engine.attribute(bad, now=1000)
    assert field in [f for f, _ in err.value.problems]
    assert engine.store.count("calls") == 0


def test_not_a_mapping_is_refused(engine):
    with pytest.raises(CallError, match="expected an object"):
        engine.attribute(["c1"], now=1)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(day=st.lists(st.tuples(st.floats(0, 80_000), st.floats(10, 1800), st.floats(0, 1)), min_size=1, max_size=25))
def test_calls_during_a_visit_match_the_visitor(build, day):
    """A random day without exhaustion: every call made during its visit is matched to its visitor."""
    numbers = [f"+7495{i:07d}" for i in range(1, 41)]
    cfg = {"pools": {"p": {"type": "dynamic", "numbers": numbers, "hold_seconds": 900, "cooldown_seconds": 300}},
           "rules": [{"name": "all", "pool": "p"}]}
    engine = Engine.from_config(cfg, implementation=build)
    events = []  # a heap of (time, kind, visitor, visit length): 0 arrive, 1 heartbeat, 2 call
    for i, (arrive, length, when) in enumerate(day):
        heapq.heappush(events, (arrive, 0, i, length))
        heapq.heappush(events, (arrive + length * when, 2, i, length))
    shown, k = {}, 0
    while events:
        at, kind, i, length = heapq.heappop(events)
        if kind == 0:
            shown[i] = engine.assign({"visitor_id": f"v{i}"}, now=at)
            for beat in range(60, int(length) + 1, 60):         # the open page heartbeats every minute
                heapq.heappush(events, (at + beat, 1, i, length))
        elif kind == 1:
            assert engine.heartbeat(shown[i].token, now=at)
        else:
            k += 1
            got = engine.attribute(call(f"c{k}", shown[i].number, at, caller=f"+7916{i:07d}"), now=at)
            assert (got.status, got.visitor_id) == ("matched", f"v{i}"), (i, at, got)
    assert engine.stats(now=90_000)["pools"]["p"]["exhausted_shared"] == 0


DURABLE = textwrap.dedent("""
    import os, sys, time
    from k50core import Engine
    cfg = {"pools": {"p": {"type": "dynamic", "numbers": ["+74950000001"], "hold_seconds": 900}},
           "rules": [{"name": "all", "pool": "p"}]}
    engine = Engine.from_config(cfg, store=sys.argv[1])
    a = engine.assign({"visitor_id": "v1", "url": "https://shop.example.ru/?utm_source=vk"}, now=1000)
    print(a.number, flush=True)
    if sys.argv[2] == "clean":
        engine.close()
    else:
        time.sleep(60)  # killed here
""")


@pytest.mark.parametrize("stop", ["clean", "kill"])
def test_leases_survive_restart_and_kill(store_url, stop, tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(DURABLE)
    proc = subprocess.Popen([sys.executable, str(script), store_url, stop], stdout=subprocess.PIPE, text=True)
    number = proc.stdout.readline().strip()
    if stop == "kill":
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert number == "+74950000001"
    with Engine.from_config({"pools": {"p": {"type": "dynamic", "numbers": ["+74950000001"]}},
                             "rules": [{"name": "all", "pool": "p"}]}, store=store_url) as fresh:
        got = fresh.attribute(call("c1", number, 1500), now=1500)
        assert (got.status, got.visitor_id, got.attributes.get("source")) == ("matched", "v1", "vk")


def test_renewals_another_worker_has_not_drained_still_count(build, tmp_path):
    """Two workers on one shared segment and one store: the pool state carries the renewed end."""
    seg, db = str(tmp_path / "pools.seg"), str(tmp_path / "k50.db")
    with Engine.from_config(CONFIG, implementation=build, state_path=seg, store=db) as one, \
            Engine.from_config(CONFIG, implementation=build, state_path=seg, store=db) as two:
        a = one.assign(visit("v1"), now=1000)                 # lease ends 1900 as stored
        assert one.heartbeat(a.token, now=1800)               # renewed to 2700, still in one's buffer
        got = two.attribute(call("c1", a.number, 2500), now=2500)
        assert (got.status, got.visitor_id) == ("matched", "v1")


def test_a_join_in_the_same_millisecond_as_the_start_is_a_join(build, store_url):
    cfg = {"pools": {"p": {"type": "dynamic", "numbers": ["+74950000001"], "on_exhausted": "share"}},
           "rules": [{"name": "all", "pool": "p"}]}
    with Engine.from_config(cfg, implementation=build, store=store_url) as engine:
        a = engine.assign(visit("v1"), now=1000)
        b = engine.assign(visit("v2"), now=1000)                # joins v1's lease at the very same instant
        assert b.shared and b.number == a.number
        got = engine.attribute(call("c1", a.number, 1001), now=1001)
        assert got.status == "ambiguous" and {c.visitor_id for c in got.candidates} == {"v1", "v2"}


_TEXT = st.one_of(st.none(), st.just(""), st.text(st.characters(blacklist_characters="."), max_size=8),  # no GA cookie by chance
                  st.sampled_from(["GA1.1.123.456", "GS1.1.1700000000.1.1", "GS2.1.s1700000000$o1$g1"]))
_PART = st.dictionaries(st.sampled_from(["host", "path", "type", "region", "city", "country", "utm_source",
                                         "utm_medium", "q", "_ga", "_ga_ABC", "_ga_DEF", "_ga_"]), _TEXT, max_size=6)


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(st.sampled_from(["source", "traffic_type", "query", "landing", "referrer", "geo", "device",
                                        "ip", "cookie", "visitor_id"]), st.one_of(_TEXT, _PART), max_size=10))
def test_visit_summary_keeps_only_filled_known_fields(attrs):
    got = visit_summary(attrs)
    assert set(got) <= {"source", "traffic_type", "utm", "landing", "referrer", "region", "city", "country",
                        "device", "ip", "ga_client_id", "ga_session_id", "ga_session_ids"}
    assert all(v is not None and v != "" and v != {} for v in got.values())
    query = attrs.get("query")
    if type(query) is dict:
        assert got.get("utm", {}) == {k: v for k, v in query.items() if k.startswith("utm_")}
    sessions = [k for k, v in (attrs.get("cookie") or {}).items() if k.startswith("_ga_") and len(k) > 4
                and isinstance(v, str) and v.startswith(("GS1.1.1700", "GS2.1.s1700"))] \
        if type(attrs.get("cookie")) is dict else []
    assert ("ga_session_id" in got) == (len(sessions) == 1) and ("ga_session_ids" in got) == (len(sessions) > 1)


# -- a crowd on one number: the likeliest candidates kept, the rest counted -----------------------------
CROWD = {"pools": {"one": {"type": "dynamic", "numbers": ["+74950000001"], "on_exhausted": "share"}},
         "rules": [{"name": "all", "pool": "one"}]}


@pytest.mark.parametrize("setting,kept", [(None, 20), (5, 5), (1000, 60)])
def test_an_ambiguous_call_keeps_the_likeliest_candidates_and_counts_the_rest(build, store_url, setting, kept):
    """A number shared by a crowd: the answer and its stored row hold the first max_candidates
    (default 20) of everyone shown it, the most recently seen first, and the count of the rest (one
    answer held 4,567 candidates, 609 KB, stored whole)."""
    cfg = dict(CROWD, **({"attribution": {"max_candidates": setting}} if setting else {}))
    with Engine.from_config(cfg, implementation=build, store=store_url) as e:
        for i in range(60):                                       # v00 holds it, 59 join, one a second
            e.assign(visit(f"v{i:02d}"), now=1000 + i)
        got = e.attribute(call("c1", "+74950000001", 1070), now=1080)
        assert got.status == "ambiguous" and len(got.candidates) == kept and got.more_candidates == 60 - kept
        expected = [f"v{i:02d}" for i in range(59, 0, -1)] + ["v00"]   # the latest visit first: the holder last
        assert [c.visitor_id for c in got.candidates] == expected[:kept] and got.visitor_id == "v59"
        assert sum(c.likelihood for c in got.candidates) <= 0.97 + kept * 5e-5   # each rounded to 4 places
        stored = e.store.saved_attribution("c1")
        assert len(stored["candidates"]) == kept and stored["more_candidates"] == 60 - kept
        again = e.attribute(call("c1", "+74950000001", 1070), now=1090)     # a retried webhook: as recorded
        assert again.candidates == got.candidates and again.more_candidates == 60 - kept


def test_a_late_call_to_a_crowded_number_keeps_its_candidates_bounded(build, store_url):
    cfg = dict(CROWD, attribution={"max_candidates": 3})
    with Engine.from_config(cfg, implementation=build, store=store_url) as e:
        for i in range(10):
            e.assign(visit(f"v{i}"), now=1000 + i)
        got = e.attribute(call("c1", "+74950000001", 1000 + 900 + 100), now=2100)   # after the hold: late
        assert got.status == "late" and len(got.candidates) == 3 and got.more_candidates == 7


@pytest.mark.parametrize("section,place", [
    ({"max_candidates": 0}, "attribution.max_candidates"), ({"max_candidates": 1001}, "attribution.max_candidates"),
    ({"max_candidates": "20"}, "attribution.max_candidates"), ({"max_candidates": True}, "attribution.max_candidates"),
    ({"clock_skew_seconds": -1}, "attribution.clock_skew_seconds"),
    ({"clock_skew_seconds": 301}, "attribution.clock_skew_seconds"),
    ({"clock_skew_seconds": "5s"}, "attribution.clock_skew_seconds"), ({"max_candidate": 5}, "attribution.max_candidate"),
    ([20], "attribution")])
def test_attribution_settings_are_checked_with_their_place(section, place):
    from k50core.errors import ConfigError

    with pytest.raises(ConfigError) as e:
        Engine.from_config(dict(CROWD, attribution=section))
    assert place in str(e.value)


# -- clock skew between telephony and web ---------------------------------------------------------------
def test_a_call_stamped_a_little_before_its_lease_began_matches(build, store_url):
    """The telephony stamped the call with `date +%s` (whole seconds) 47 ms before the lease's start as
    the web saw it: within the tolerance (default 5 s) it is that lease's call; beyond it, unmatched."""
    with Engine.from_config(CONFIG, implementation=build, store=store_url) as e:
        a = e.assign(visit("v1"), now=1000.047)
        got = e.attribute(call("c1", a.number, 1000), now=1001)
        assert (got.status, got.visitor_id, got.likelihood) == ("matched", "v1", 0.97)
        assert e.attribute(call("c2", a.number, 995.047), now=1001).status == "matched"     # 5 s early: still
        assert e.attribute(call("c3", a.number, 995.0), now=1001).status == "unmatched"     # 5.047 s: no


@pytest.mark.parametrize("skew,early,status", [(0, 0.047, "unmatched"), (30, 20, "matched"), (30, 31, "unmatched")])
def test_the_clock_skew_tolerance_is_configured(build, store_url, skew, early, status):
    cfg = dict(CONFIG, attribution={"clock_skew_seconds": skew})
    with Engine.from_config(cfg, implementation=build, store=store_url) as e:
        a = e.assign(visit("v1"), now=1000)
        assert e.attribute(call("c1", a.number, 1000 - early), now=1001).status == status


def test_a_lease_covering_the_call_wins_over_one_beginning_just_after(build, store_url):
    """The skew counts only when no lease covered the call: a number handed on (no cooldown) at
    1900.5 and called at 1900.2 belongs to the lease that covered 1900.2."""
    cfg = {"pools": {"p": {"type": "dynamic", "numbers": ["+74950000001"], "hold_seconds": 900,
                           "cooldown_seconds": 0}}, "rules": [{"name": "all", "pool": "p"}]}
    with Engine.from_config(cfg, implementation=build, store=store_url) as e:
        e.assign(visit("v1"), now=1000)                                   # ends at 1900
        e.assign(visit("v2"), now=1900.5)
        assert e.attribute(call("c1", "+74950000001", 1899.9), now=1901).visitor_id == "v1"
        got = e.attribute(call("c2", "+74950000001", 1900.2), now=1901)   # after v1's end, 0.3 s before v2's start
        assert (got.status, got.visitor_id) == ("matched", "v2")
