"""Call intents: Engine.intent (capture, renewal, storage, restarts) and the signals attribution
weighs with it (an intent, a stale one, caller history, a landline's region), over both builds
and both stores."""
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from k50core import Engine
from k50core.intent import DelayModel, fit, stored_intents
from k50core.intent.region import landline_place, same_place
from k50core.intent.signals import NOISE_RATE, WINDOW

NUMBERS = ["+74950000001", "+74950000002"]
CONFIG = {
    "site": {"default_number": "+74951234567"},
    "pools": {"p": {"type": "dynamic", "numbers": NUMBERS, "hold_seconds": 900, "cooldown_seconds": 300,
                    "late_seconds": 600, "on_exhausted": "share"}},
    "rules": [{"name": "all", "pool": "p"}],
}
SPB_IP, MOSCOW_IP = "95.161.0.1", "5.101.68.156"


def visit(v, ip=MOSCOW_IP):
    return {"visitor_id": v, "session_id": f"s-{v}", "ip": ip, "url": "https://shop.example.ru/",
            "user_agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0 Safari/537.36"}


def call(cid, number, at, caller="+79161234567", answered=True):
    return {"call_id": cid, "number": number, "caller": caller, "started_at": at,
            "duration_seconds": 60 if answered else 0, "answered": answered}


@pytest.fixture
def engine(build, store_url):
    with Engine.from_config(CONFIG, implementation=build, store=store_url) as e:
        yield e


def shared_number(engine, t=1000.0, third_ip=MOSCOW_IP):
    """Two numbers for three visitors: v3 joins v1's number (the least recently active)."""
    first = engine.assign(visit("v1"), now=t)
    engine.assign(visit("v2"), now=t + 10)
    joined = engine.assign(visit("v3", third_ip), now=t + 200)
    assert joined.shared and joined.number == first.number
    return first


# -- capture ----------------------------------------------------------------------------------------
def test_an_intent_is_kept_with_its_lease_and_renews_it(engine):
    a = engine.assign(visit("v1"), now=1000)
    assert engine.intent(a.token, "click", now=1800) is True          # the lease now ends at 2700, not 1900
    assert engine.attribute(call("c1", a.number, 2500), now=2500).status == "matched"
    held = engine.pools.holder_of(a.number)
    (row,) = stored_intents(engine.store, engine.store.lease_key(held.pool, held.number, held.start, held.lease))
    assert (row.number, row.visitor_id, row.kind, row.at) == (a.number, "v1", "click", 1800.0)


@pytest.mark.parametrize("token, kind", [("0" * 32, "click"), ("", "copy"), (None, "click"), (7, "copy"),
                                         ("x" * 65, "click"), ("VALID", "dial"), ("VALID", None), ("VALID", 1)])
def test_a_token_not_alive_or_a_kind_not_known_is_false_and_stores_nothing(engine, token, kind):
    a = engine.assign(visit("v1"), now=1000)
    assert engine.intent(a.token if token == "VALID" else token, kind, now=1100) is False
    assert engine.store.count("intents") == 0


def test_an_ended_lease_takes_no_intent(engine):
    a = engine.assign(visit("v1"), now=1000)
    assert engine.intent(a.token, "copy", now=1000 + 901) is False
    assert engine.store.count("intents") == 0


def test_an_intent_survives_a_restart_with_a_sqlite_file(build, tmp_path):
    path = str(tmp_path / "k50.db")
    with Engine.from_config(CONFIG, implementation=build, store=path, now=1000) as e:
        first = shared_number(e)
        assert e.intent(first.token, "click", now=1240, visitor="v1")   # v1 (seen at 1000) taps the number
    with Engine.from_config(CONFIG, implementation=build, store=path, now=1250) as again:
        assert again.store.count("intents") == 1
        got = again.attribute(call("c1", first.number, 1250), now=1250)
        assert got.status == "ambiguous" and got.candidates[0].visitor_id == "v1"


# -- signals ----------------------------------------------------------------------------------------
def test_an_intent_beats_recency(engine):
    first = shared_number(engine)
    engine.intent(first.token, "click", now=1230, visitor="v1")          # v3 came at 1200, v1 last at 1000
    got = engine.attribute(call("c1", first.number, 1240), now=1240)
    assert got.status == "ambiguous" and [c.visitor_id for c in got.candidates] == ["v1", "v3"]
    assert got.candidates[0].likelihood > 0.8


def test_without_the_intent_recency_ranks(engine):
    first = shared_number(engine)
    got = engine.attribute(call("c1", first.number, 1240), now=1240)
    assert [c.visitor_id for c in got.candidates] == ["v3", "v1"]


def test_a_stale_intent_does_not_beat_recency(engine):
    first = shared_number(engine, t=1000.0)
    engine.intent(first.token, "copy", now=1100, visitor="v1")           # before v3 even came
    at = 1100 + WINDOW + 50                                               # too old to be this call's
    engine.heartbeat(first.token, now=at - 20)
    got = engine.attribute(call("c1", first.number, at), now=at)
    assert got.candidates[0].visitor_id != "v1"


def test_a_repeat_caller_goes_to_their_earlier_visitor(engine):
    alone = engine.assign(visit("v1"), now=1000)
    assert engine.attribute(call("c0", alone.number, 1100, caller="+79160000042"), now=1100).visitor_id == "v1"
    engine.assign(visit("v2"), now=1010)
    joined = engine.assign(visit("v3"), now=1300)                          # v3 joins v1's number
    assert joined.number == alone.number
    got = engine.attribute(call("c1", alone.number, 1310, caller="+79160000042"), now=1310)
    assert got.repeat and got.candidates[0].visitor_id == "v1"
    other = engine.attribute(call("c2", alone.number, 1311, caller="+79160000043"), now=1311)
    assert other.candidates[0].visitor_id == "v3"                          # a new caller: recency


def test_a_landline_region_breaks_a_tie(engine):
    first = shared_number(engine, third_ip=SPB_IP)                         # v3 in St Petersburg, v1 in Moscow
    engine.heartbeat(first.token, now=1205)
    spb = engine.attribute(call("c1", first.number, 1210, caller="+78121234567"), now=1210)
    moscow = engine.attribute(call("c2", first.number, 1210, caller="+74991234567"), now=1210)
    mobile = engine.attribute(call("c3", first.number, 1210, caller="+79161234567"), now=1210)
    assert spb.candidates[0].visitor_id == "v3"
    assert moscow.candidates[0].likelihood < spb.candidates[0].likelihood   # Moscow caller: v3 less sure
    assert [c.likelihood for c in moscow.candidates] != [c.likelihood for c in mobile.candidates]


def test_landline_places_and_regions():
    assert landline_place("+74951234567") == "moscow" and landline_place("+78121234567") == "st petersburg"
    assert landline_place("+79161234567") is None and landline_place("not a number") is None
    assert same_place("moscow", "RU-MOW", "Moscow") is True and same_place("moscow", "RU-SPE", None) is False
    assert same_place(None, "RU-MOW", None) is None and same_place("rostov", None, "Rostov") is True


def test_the_delay_model_learns_from_answered_matched_calls(engine):
    assert fit(engine.store).learnt == 0
    for i in range(4):                                                     # one number each, matched calls
        a = engine.assign(visit(f"w{i}"), now=10_000 * (i + 1))
        engine.intent(a.token, "click", now=10_000 * (i + 1) + 100)
        engine.attribute(call(f"c{i}", a.number, 10_000 * (i + 1) + 140), now=10_000 * (i + 1) + 140)
    b = engine.assign(visit("w9"), now=60_000)
    engine.attribute(call("c9", b.number, 60_010, answered=False), now=60_010)  # unanswered: not learnt
    model = fit(engine.store)
    assert (model.learnt, model.calls, model.with_intent) == (4, 4, 4)
    assert model.density(40.0) > DelayModel().density(40.0)                # 40 s delays: denser than the prior
    assert model.intent_share > DelayModel().intent_share


def test_the_intent_ratio_falls_with_the_delay():
    m = DelayModel()
    assert m.ratio(2.0) > m.ratio(45.0) > m.ratio(400.0) >= 1.0 > m.ratio(None)
    assert m.ratio(WINDOW + 1) == m.ratio(None) and m.ratio(-60) == m.ratio(None)
    assert m.ratio(2.0) == pytest.approx((m.intent_share * m.density(2.0) + NOISE_RATE) / NOISE_RATE)


def test_an_intent_on_pools_in_redis_ranks_a_shared_number(build, redis_url, tmp_path):
    """The same, with the pools in Redis (several hosts): the token is looked up there."""
    with Engine.from_config(CONFIG, implementation=build, store=str(tmp_path / "k50.db"), state_url=redis_url,
                            now=1000) as e:
        first = shared_number(e)
        assert e.intent(first.token, "click", now=1230, visitor="v1") is True
        assert e.intent("f" * 32, "click", now=1230) is False
        got = e.attribute(call("c1", first.number, 1240), now=1240)
        assert [c.visitor_id for c in got.candidates] == ["v1", "v3"]


TEXTS = st.one_of(st.none(), st.text(max_size=80), st.binary(max_size=40), st.integers(), st.floats(),
                  st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(), max_size=2))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(token=TEXTS, kind=TEXTS, visitor=TEXTS)
def test_any_intent_arguments_never_raise(build, token, kind, visitor):
    """Whatever the arguments, intent() answers a bool and stores nothing without a live token."""
    with Engine.from_config(CONFIG, implementation=build, warm=False) as e:
        live = e.assign(visit("v1"), now=1000)
        assert e.intent(token, kind, now=1100, visitor=visitor) is False
        assert e.intent(live.token, "copy", now=1100, visitor=visitor) is True
        assert e.store.count("intents") == 1


def test_a_visitor_id_that_cannot_be_stored_is_the_holder(engine):
    a = engine.assign(visit("v1"), now=1000)
    assert engine.intent(a.token, "click", now=1100, visitor="v\x00\x01") is True   # (PostgreSQL takes no NUL)
    held = engine.pools.holder_of(a.number)
    (row,) = stored_intents(engine.store, engine.store.lease_key(held.pool, held.number, held.start, held.lease))
    assert row.visitor_id == "v1"
