"""A flood cannot drain a pool (issue 15, items 1 and 2): the real service app over a real engine
and SQLite file store, requests through the ASGI app in-process, time from the injectable clock."""
from __future__ import annotations

import pytest
from starlette.testclient import TestClient

try:
    from k50core.bindings.service import VISITOR_COOKIE, create_app
except ImportError:  # a source checkout (PYTHONPATH=src:.)
    from bindings.service import VISITOR_COOKIE, create_app
from drain_support import BROWSER, browser_visit
from service_support import Clock, clock, engine  # noqa: F401 (fixtures)

KEY = "drain-key"
CAMPAIGN = "https://shop.example.ru/sale?utm_source=yandex&utm_medium=cpc&utm_campaign=spring_sale"


def from_ip(app, ip):
    """A client whose requests come from ``ip`` (the ASGI scope's peer)."""
    return TestClient(app, client=(ip, 40000), raise_server_exceptions=False)


# -- item 2: returning visitors are never rate limited ------------------------------------------
def test_a_returning_visitor_behind_a_busy_nat_keeps_its_number(engine, clock):
    """A carrier NAT: one address, many visitors. Once the address is over every limit, a visitor
    who already holds a number still gets it (by cookie, by token) and its heartbeats keep it."""
    app = create_app(engine, api_keys=[KEY], now=clock)
    nat = "198.51.100.10"
    with from_ip(app, nat) as mine:
        first = browser_visit(mine, url=CAMPAIGN).json()
        assert first["number"] and first["token"]
        crowd = from_ip(app, nat)  # the NAT's other visitors, a new one each time: a flood
        for round in range(3):
            clock.t += 30
            others = [browser_visit(crowd, url=CAMPAIGN, visitor_id=f"nat-{round}-{i}").json() for i in range(150)]
            assert others[-1]["token"] is None and others[-1]["number"] == engine.config.default_number  # limited
            again = mine.post("/v1/visit", json={"url": CAMPAIGN}, headers=BROWSER).json()  # the k50_vid cookie
            assert (again["number"], again["token"]) == (first["number"], first["token"])
            assert again["visitor_id"] == first["visitor_id"]
            by_token = mine.post("/v1/visit", json={"url": CAMPAIGN, "token": first["token"]}, headers=BROWSER).json()
            assert by_token["number"] == first["number"]
            assert mine.post("/v1/heartbeat", json={"token": first["token"]}, headers=BROWSER).json() == {"alive": True}
        metrics = mine.get("/metrics").text
        assert 'k50_visits_rate_limited_total{limit="ip"}' in metrics
