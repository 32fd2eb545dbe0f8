"""POST /v1/intent on the real app over a real engine and a SQLite file store: an intent is kept
with its lease and renews it; whatever the body holds the answer is 204 and the outcome counted."""
from __future__ import annotations

import json

import pytest
from drain_support import browser_visit
from hypothesis import HealthCheck, given, settings, strategies as st
from service_support import metric
from starlette.testclient import TestClient

from k50core.bindings.service import create_app
from k50core.intent import stored_intents

KEY = "intent-key"
SITE = "https://shop.example.ru"
CAMPAIGN = SITE + "/sale?utm_source=yandex&utm_medium=cpc&utm_campaign=spring_sale"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture
def client(engine, clock):
    app = create_app(engine, api_keys=[KEY], cors_origins=[SITE], now=clock)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def intents_of(engine, number):
    held = engine.pools.holder_of(number)
    return stored_intents(engine.store, engine.store.lease_key(held.pool, held.number, held.start, held.lease))


def outcomes(client):
    text = client.get("/metrics", headers=AUTH).text
    return {o: metric(text, "k50_intents_total", outcome=o) for o in
            ("recorded", "not_alive", "bad_token", "bad_kind", "bad_body", "limited")}


def test_an_intent_is_kept_with_its_lease_and_renews_it(client, clock, engine):
    got = browser_visit(client, url=CAMPAIGN).json()
    clock.t += 800
    r = client.post("/v1/intent", json={"token": got["token"], "kind": "click"}, headers={"Origin": SITE})
    assert r.status_code == 204 and r.content == b""
    # a beacon's body: text/plain, with the snippet's visitor id
    beacon = json.dumps({"token": got["token"], "kind": "copy", "visitor_id": got["visitor_id"]})
    assert client.post("/v1/intent", content=beacon, headers={"Content-Type": "text/plain;charset=UTF-8",
                                                               "Origin": SITE}).status_code == 204
    rows = intents_of(engine, got["number"])
    assert [(r.kind, r.visitor_id, r.at) for r in rows] == [("click", got["visitor_id"], clock.t),
                                                            ("copy", got["visitor_id"], clock.t)]
    clock.t += 800  # 1600 s after the visit: alive only thanks to the intent (hold 900 s)
    assert client.post("/v1/heartbeat", json={"token": got["token"]}).json() == {"alive": True}
    assert outcomes(client)["recorded"] == 2


@pytest.mark.parametrize("body, outcome", [
    (b'{"token": "0123456789abcdef0123456789abcdef", "kind": "click"}', "not_alive"),
    (b'{"token": "", "kind": "click"}', "bad_token"),
    (b'{"kind": "copy"}', "bad_token"),
    (b'{"token": "LIVE", "kind": "dial"}', "bad_kind"),
    (b'{"token": "LIVE"}', "bad_kind"),
    (b'[1, 2]', "bad_body"),
    (b'not json', "bad_body"),
    (b'', "bad_body"),
    (b'\xff\xfe', "bad_body"),
])
def test_a_bad_intent_is_204_and_counted(client, engine, body, outcome):
    got = browser_visit(client, url=CAMPAIGN).json()
    r = client.post("/v1/intent", content=body.replace(b"LIVE", got["token"].encode()),
                    headers={"Content-Type": "text/plain"})
    assert r.status_code == 204
    counted = outcomes(client)
    assert counted[outcome] == 1 and sum(counted.values()) == 1
    assert intents_of(engine, got["number"]) == []


def test_an_origin_not_allowed_is_refused(client):
    got = browser_visit(client, url=CAMPAIGN).json()
    r = client.post("/v1/intent", json={"token": got["token"], "kind": "click"},
                    headers={"Origin": "https://evil.example"})
    assert r.status_code == 403


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=80),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                                  max_size=4), max_leaves=12)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(
    st.fixed_dictionaries({"token": JSON, "kind": JSON}, optional={"visitor_id": JSON}),
    JSON.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=200)))
def test_any_intent_body_is_204_and_stores_nothing_without_a_live_token(engine, clock, body):
    app = create_app(engine, api_keys=[KEY], cors_origins=[SITE], now=clock)
    with TestClient(app, raise_server_exceptions=False) as c:
        before = engine.store.count("intents")
        if isinstance(body, dict):
            r = c.post("/v1/intent", content=json.dumps(body), headers={"Content-Type": "application/json"})
        else:
            r = c.post("/v1/intent", content=body, headers={"Content-Type": "text/plain"})
        assert r.status_code == 204
        assert engine.store.count("intents") == before
