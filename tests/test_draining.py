"""A flood cannot drain a pool (issue 15, items 1 and 2): the real service app over a real engine
and SQLite file store, requests through the ASGI app in-process, time from the injectable clock."""
from __future__ import annotations

import asyncio
import json
import threading

import httpx
import pytest
from drain_support import BROWSER, CHROME, browser_visit
from service_support import T0, Clock, metric, serving
from starlette.testclient import TestClient
from test_snippet import browser, browser_agent, server  # noqa: F401 (fixtures: headless Chromium, a served demo)

from k50core import Engine
from k50core.bindings.service import create_app
from k50core.bindings.service.limits import Protection

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
        metrics = mine.get("/metrics", headers={"X-API-Key": KEY}).text
        assert metric(metrics, "k50_visits_rate_limited_total", limit="ip") >= 1


# -- item 1: pool draining -----------------------------------------------------------------------
SITE = "https://shop.example.ru"
HEADLESS = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "HeadlessChrome/120.0.0.0 Safari/537.36")
NUMBERS = [f"+7495000{i:04d}" for i in range(1, 101)]
CONFIG = {"site": {"default_number": "+7 (495) 123-45-67"},
          "pools": {"msk": {"type": "dynamic", "numbers": NUMBERS, "hold_seconds": 900, "cooldown_seconds": 300,
                            "on_exhausted": "share"}},
          "rules": [{"name": "campaign", "when": {"query.utm_campaign": "spring_sale"}, "pool": "msk"}]}
LONE = "198.51.100.7"                                   # one address: 15,000 requests
SUBNET = [f"192.0.2.{i}" for i in range(1, 51)]         # 50 addresses of one /24: 100 requests each
VISITOR_IP = "5.101.68.156"                             # a real visitor, another network


class Asgi:
    """Requests straight into the ASGI app, on the loop it runs on (nothing between)."""

    def __init__(self, app):
        self.app = app
        self.status = {}

    async def post(self, path, body, ip, agent=CHROME, origin=SITE, content_type="application/json"):
        headers = [(b"host", b"track.example.ru")]
        if agent is not None:
            headers.append((b"user-agent", agent.encode()))
        if origin is not None:
            headers.append((b"origin", origin.encode()))
        if content_type is not None:
            headers.append((b"content-type", content_type.encode()))
        raw = json.dumps(body).encode()
        headers.append((b"content-length", str(len(raw)).encode()))
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                 "scheme": "https", "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"",
                 "headers": headers, "client": (ip, 50000), "server": ("track.example.ru", 443)}
        given = False
        out = {"body": b""}

        async def receive():
            nonlocal given
            if given:
                return {"type": "http.disconnect"}
            given = True
            return {"type": "http.request", "body": raw, "more_body": False}

        async def send(message):
            if message["type"] == "http.response.start":
                out["status"] = message["status"]
            else:
                out["body"] += message.get("body", b"")
        await self.app(scope, receive, send)
        self.status[out["status"]] = self.status.get(out["status"], 0) + 1
        return out["status"], (json.loads(out["body"]) if out["body"] else None)



async def attack(asgi, clock, start):
    """20 s of attack: one address sends 15,000 visit requests, 50 addresses of one /24 send 100
    each, interleaved, time moving 1 ms a request. The lone address mixes every way in: a script
    with a browser's User-Agent doing the snippet's claim step, curl, no User-Agent, headless Chrome
    doing the claim step, and cross-site text/plain posts; the /24 always does the full claim step.
    Returns the visitor ids that were answered with a lease."""
    won = set()
    pending = {}  # ip -> (visitor id, ticket): a claim to send next
    sent = {LONE: 0, **{ip: 0 for ip in SUBNET}}
    step = 0
    while sent[LONE] < 15_000 or any(sent[ip] < 100 for ip in SUBNET):
        clock.t = start + step * 0.001
        if step % 4 == 3 and any(sent[ip] < 100 for ip in SUBNET):
            ip = SUBNET[(step // 4) % 50]
            if sent[ip] >= 100:
                ip = next(i for i in SUBNET if sent[i] < 100)
            kind = "script"
        else:
            ip = LONE
            kind = ("script", "curl", "empty", "headless", "csrf")[(step // 4) % 5] if sent[LONE] < 15_000 else None
            if kind is None:
                step += 1
                continue
        sent[ip] += 1
        step += 1
        body = {"url": SITE + "/?utm_campaign=spring_sale"}
        if ip in pending:  # the claim of the ticket the last answer gave
            vid, ticket = pending.pop(ip)
            agent = HEADLESS if kind == "headless" else CHROME
            status, got = await asgi.post("/v1/visit", dict(body, visitor_id=vid, claim=ticket), ip, agent=agent)
        else:
            vid = f"{ip}-{step}"
            body["visitor_id"] = vid
            if kind == "curl":
                status, got = await asgi.post("/v1/visit", body, ip, agent="curl/8.5.0", origin=None)
            elif kind == "empty":
                status, got = await asgi.post("/v1/visit", body, ip, agent=None, origin=None)
            elif kind == "csrf":
                status, got = await asgi.post("/v1/visit", body, ip, origin="https://evil.example",
                                              content_type="text/plain")
            else:
                status, got = await asgi.post("/v1/visit", body, ip, agent=HEADLESS if kind == "headless" else CHROME)
            if status == 200 and got.get("claim"):
                pending[ip] = (vid, got["claim"])
        if status == 200 and got.get("token"):
            won.add(got["visitor_id"])
    return won


def live_leases(engine, now):
    return {e.visitor_id: e for e in engine.lease_holders() if e.end > now}


@pytest.mark.parametrize("rate_limits", [(120.0, 30.0), None], ids=["request-limits", "lease-limits-alone"])
def test_a_flood_from_one_address_and_one_subnet_cannot_drain_a_pool(tmp_path, rate_limits):
    """The issue's target: after one address sends 15,000 visit requests in 20 s and 50 addresses of
    one /24 send 100 each, the attackers hold at most 5% of a 100-number pool and a real browser
    visitor from another network gets a dynamic number. With the per-address request limits on
    (the default) and off: the guard on new leases holds alone."""
    clock = Clock(T0)
    engine = Engine.from_config(CONFIG, store=str(tmp_path / "k50.db"))
    app = create_app(engine, api_keys=[KEY], cors_origins=[SITE], now=clock, rate_limits=rate_limits)
    asgi = Asgi(app)
    try:
        with TestClient(app) as c:
            won = c.portal.call(attack, asgi, clock, T0)
            now = clock.t
            held = live_leases(engine, now)
            assert len(held) <= 5, f"attackers hold {len(held)} of 100 numbers"
            assert held.keys() == won                       # every lease the attackers won is one they hold
            assert len(held) >= 1                             # (the script that acts like a browser got some)
            pools = c.get("/v1/pools", headers={"X-API-Key": KEY}).json()["pools"]["msk"]
            assert pools["leased"] == len(held) and pools["claims"] == len(held)
            # a real visitor: a browser on another network, the snippet's two steps
            real = browser_visit(from_ip(app, VISITOR_IP), headers={"Origin": SITE}, url=CAMPAIGN)
            got = real.json()
            assert got["token"] and got["number"] in NUMBERS and got["shared"] is False
            metrics = c.get("/metrics", headers={"X-API-Key": KEY}).text
            assert metric(metrics, "k50_visits_refused_total", reason="agent") >= 1
        print(f"\nattack ({rate_limits}): statuses {asgi.status}, attackers hold {len(held)} of 100 numbers")
    finally:
        engine.close()


class OnLoop:
    """The app, remembering the event loop its server runs it on (known from the lifespan's start)."""

    def __init__(self, app):
        self.app, self.loop = app, None

    async def __call__(self, scope, receive, send):
        if self.loop is None:
            self.loop = asyncio.get_running_loop()
        await self.app(scope, receive, send)


def test_after_the_flood_a_real_browser_still_gets_a_dynamic_number(browser, tmp_path):  # noqa: F811 (fixture)
    """The same attack, into the app of a real uvicorn server (on its own event loop), then a real
    headless Chromium with a person's User-Agent, arriving from another network through the proxy
    the service trusts, loads the site's page: the snippet's first answer is a claim ticket, its
    second the number, and the page shows it."""
    clock = Clock(T0)
    engine = Engine.from_config(CONFIG, store=str(tmp_path / "k50.db"))
    app = create_app(engine, api_keys=[KEY], cors_origins=[SITE], now=clock, demo=True,
                     trusted_proxies=["127.0.0.1"])
    served = OnLoop(app)
    context = None
    try:
        with serving(served) as base:
            assert served.loop is not None
            won = asyncio.run_coroutine_threadsafe(attack(Asgi(app), clock, T0), served.loop).result(600)
            held = live_leases(engine, clock.t)
            assert len(held) <= 5 and held.keys() == won
            context = browser.new_context(user_agent=browser_agent(browser),
                                          extra_http_headers={"X-Forwarded-For": VISITOR_IP})
            page = context.new_page()
            answers = []
            page.on("response", lambda r: answers.append(r.json()) if r.url.endswith("/v1/visit") else None)
            page.goto(f"{base}/?utm_campaign=spring_sale")
            page.wait_for_function("window.K50 && K50.number() !== null", timeout=10000)
            number = page.evaluate("K50.number()")
            assert number in NUMBERS and number not in {e.number for e in held.values()}
            assert page.inner_text("#phone") == page.evaluate("K50.display()")
            first, last = answers[0], answers[-1]
            assert first["claim"] and first["number"] is None and first["token"] is None
            assert last["number"] == number and last["token"] and not last["shared"]
            assert live_leases(engine, clock.t)[last["visitor_id"]].number == number
    finally:
        if context is not None:
            context.close()
        engine.close()


def test_pages_on_other_sites_cannot_make_browsers_take_numbers(browser, server):  # noqa: F811 (fixtures)
    """The cross-site vector: a page on another site makes its visitors' browsers post visits to the
    service (text/plain with no-cors: no preflight; JSON with cors). Real Chromium sends the page's
    Origin: every post is refused (403) and no number is taken."""
    from test_snippet import AUTH

    context = browser.new_context(user_agent=browser_agent(browser))
    other = None
    try:
        page = context.new_page()
        html = f"""<!doctype html><script>
            window.sent = Promise.all(Array.from({{length: 20}}, (_, i) => Promise.all([
              fetch("{server}/v1/visit", {{method: "POST", mode: "no-cors", credentials: "include",
                headers: {{"Content-Type": "text/plain"}},
                body: JSON.stringify({{url: "{CAMPAIGN}", visitor_id: "x" + i}})}})
                .then(r => r.type, e => "failed"),
              fetch("{server}/v1/visit", {{method: "POST", credentials: "include",
                headers: {{"Content-Type": "application/json"}},
                body: JSON.stringify({{url: "{CAMPAIGN}", visitor_id: "y" + i}})}})
                .then(r => r.status, e => "blocked")])));
            </script>"""
        other = site_serving(html)  # another origin: the same machine, another port
        elsewhere = f"http://127.0.0.1:{other.server_address[1]}/"
        seen = []
        page.on("response", lambda r: seen.append(r.status) if r.url.endswith("/v1/visit") else None)
        page.goto(elsewhere)
        results = page.evaluate("window.sent")
        assert len(results) == 20 and all(r == ["opaque", "blocked"] for r in results)
        assert seen and set(seen) <= {403}
        pools = httpx.get(server + "/v1/pools", headers=AUTH, timeout=5).json()["pools"]
        assert pools["msk"]["leased"] == 0 and pools["msk"]["claims"] == 0
    finally:
        context.close()
        if other is not None:
            other.shutdown()
            other.server_close()


def site_serving(html):
    """A web server in a thread on a free port answering every GET with ``html``."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Page(BaseHTTPRequestHandler):
        def do_GET(self):
            body = html.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


# -- the guard's parts, one by one ----------------------------------------------------------------
@pytest.fixture
def big(tmp_path):
    """The 100-number pool's engine."""
    e = Engine.from_config(CONFIG, store=str(tmp_path / "big.db"))
    yield e
    e.close()


@pytest.mark.parametrize("agent", [None, "", "curl/8.5.0", "python-requests/2.31.0", "python-httpx/0.27.0",
                                   "Go-http-client/1.1", "okhttp/4.12.0", "Wget/1.21.4", "PostmanRuntime/7.36.0",
                                   HEADLESS, "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
                                   "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0"
                                   ".0.0 Safari/537.36 Puppeteer"])
def test_http_libraries_headless_and_empty_agents_take_nothing(big, clock, agent):
    app = create_app(big, api_keys=[KEY], now=clock, cors_origins=[SITE])
    with from_ip(app, "198.51.100.20") as c:
        headers = {} if agent is None else {"User-Agent": agent}
        got = c.post("/v1/visit", json={"url": SITE + "/?utm_campaign=spring_sale"}, headers=headers).json()
        assert got["number"] is None and got["token"] is None and "claim" not in got
        assert live_leases(big, clock.t) == {}
        assert metric(c.get("/metrics", headers={"X-API-Key": KEY}).text, "k50_visits_refused_total", reason="agent") == 1


@pytest.mark.parametrize("agent", [CHROME,
                                   "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
                                   "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
                                   "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0",
                                   "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
                                   "Chrome/120.0.6099.144 Mobile Safari/537.36 YaBrowser/23.11.1.105.00 SA/3"])
def test_browsers_get_a_ticket_then_the_number(big, clock, agent):
    app = create_app(big, api_keys=[KEY], now=clock, cors_origins=[SITE])
    with from_ip(app, "198.51.100.21") as c:
        body = {"url": SITE + "/?utm_campaign=spring_sale"}
        first = c.post("/v1/visit", json=body, headers={"User-Agent": agent, "Origin": SITE}).json()
        assert first["number"] is None and first["token"] is None and first["claim"]
        assert live_leases(big, clock.t) == {}                       # nothing taken by the first answer
        clock.t += 1
        got = c.post("/v1/visit", json=dict(body, claim=first["claim"]),  # the k50_vid cookie goes back
                     headers={"User-Agent": agent, "Origin": SITE}).json()
        assert got["number"] in NUMBERS and got["token"] and got["visitor_id"] == first["visitor_id"]
        assert list(live_leases(big, clock.t)) == [first["visitor_id"]]


def test_a_claim_ticket_is_bound_to_its_visitor_network_and_time(big, clock):
    app = create_app(big, api_keys=[KEY], now=clock)
    body = {"url": SITE + "/?utm_campaign=spring_sale"}
    with from_ip(app, "198.51.100.30") as c, from_ip(app, "198.51.100.99") as same_net, \
            from_ip(app, "203.0.114.30") as other_net:
        ticket = c.post("/v1/visit", json=dict(body, visitor_id="a"), headers=BROWSER).json()["claim"]
        refused = [
            c.post("/v1/visit", json=dict(body, visitor_id="b", claim=ticket), headers=BROWSER),       # another visitor
            other_net.post("/v1/visit", json=dict(body, visitor_id="a", claim=ticket), headers=BROWSER),  # another /24
            c.post("/v1/visit", json=dict(body, visitor_id="a", claim=ticket[:-2] + "AA"), headers=BROWSER),  # forged
            c.post("/v1/visit", json=dict(body, visitor_id="a", claim="ffffffffff." + ticket.split(".")[1]),
                   headers=BROWSER),                                                                  # expiry changed
        ]
        for r in refused:  # answered as a first visit again: a new ticket, nothing taken
            assert r.status_code == 200 and r.json()["token"] is None and r.json()["claim"]
        clock.t += 121  # tickets live 120 s
        late = c.post("/v1/visit", json=dict(body, visitor_id="a", claim=ticket), headers=BROWSER).json()
        assert late["token"] is None and late["claim"]
        assert live_leases(big, clock.t) == {}
        fresh = late["claim"]
        got = same_net.post("/v1/visit", json=dict(body, visitor_id="a", claim=fresh), headers=BROWSER).json()
        assert got["token"] and got["number"] in NUMBERS            # the same /24 (a NAT's other address): fine
        bad = c.post("/v1/visit", json=dict(body, claim=5), headers=BROWSER)
        assert bad.status_code == 422 and bad.json()["problems"][0]["field"] == "claim"


def test_one_network_holds_at_most_its_share_of_a_pool(big, clock):
    """Leases per address, per network, and a network's share (2% of 100 numbers, at least 2):
    IPv4 by /24, IPv6 by /48 (an address by its /64). As the network's leases end, it may lease again."""
    app = create_app(big, api_keys=[KEY], now=clock, rate_limits=None)
    won = {}
    for ip in [f"198.51.100.{i}" for i in range(1, 30)] + [f"2001:db8:77:{i:x}::1" for i in range(1, 30)]:
        with from_ip(app, ip) as c:
            got = browser_visit(c, url=SITE + "/?utm_campaign=spring_sale").json()
            if got["token"]:
                won[ip] = got
            else:
                assert got["number"] == big.config.default_number
    assert sorted(won) == ["198.51.100.1", "198.51.100.2", "2001:db8:77:1::1", "2001:db8:77:2::1"]
    with from_ip(app, "2001:db8:78::5") as c:  # another /48
        assert browser_visit(c, url=SITE + "/?utm_campaign=spring_sale").json()["token"]
    clock.t += 3600 * 3  # the leases ended (hold 900 s) and the allowances refilled
    with from_ip(app, "198.51.100.77") as c:
        assert browser_visit(c, url=SITE + "/?utm_campaign=spring_sale").json()["token"]
    text = TestClient(app).get("/metrics", headers={"X-API-Key": KEY}).text
    assert metric(text, "k50_visits_rate_limited_total", limit="subnet_share") >= 1


def test_new_leases_per_address_are_limited_even_below_the_share(tmp_path, clock):
    """With a large share allowed, one address still starts at most its burst (3) at once, then
    20 an hour; its network at most 10 at once."""
    cfg = dict(CONFIG, pools={"msk": dict(CONFIG["pools"]["msk"], numbers=NUMBERS)})
    engine = Engine.from_config(cfg, store=str(tmp_path / "k.db"))
    try:
        app = create_app(engine, api_keys=[KEY], now=clock, rate_limits=None,
                         protection=Protection(subnet_share=1.0))
        with from_ip(app, "198.51.100.5") as c:
            got = [browser_visit(c, url=CAMPAIGN, visitor_id=f"v{i}").json() for i in range(6)]
        assert [bool(g["token"]) for g in got] == [True] * 3 + [False] * 3
        clock.t += 181  # 20 an hour: one more after 3 minutes
        with from_ip(app, "198.51.100.5") as c:
            got = [browser_visit(c, url=CAMPAIGN, visitor_id=f"w{i}").json() for i in range(2)]
        assert [bool(g["token"]) for g in got] == [True, False]
        net = [f"198.51.100.{i}" for i in range(10, 30)]
        took = 0
        for ip in net:
            with from_ip(app, ip) as c:
                took += bool(browser_visit(c, url=SITE + "/?utm_campaign=spring_sale").json()["token"])
        assert took == 10 - 4 + 3  # the /24: a burst of 10, 4 spent by .5, 3 back in 3 minutes (60 an hour)
    finally:
        engine.close()


def test_heartbeats_of_unknown_tokens_are_limited_per_address(big, clock):
    """A flood of heartbeats with guessed tokens from one address gets 429 once its allowance is
    spent; the visitor holding a lease there keeps renewing it with its own token."""
    app = create_app(big, api_keys=[KEY], now=clock)
    with from_ip(app, "198.51.100.40") as mine, from_ip(app, "198.51.100.40") as guesser:
        got = browser_visit(mine, url=SITE + "/?utm_campaign=spring_sale").json()
        statuses = [guesser.post("/v1/heartbeat", json={"token": f"{i:016x}"}, headers=BROWSER).status_code
                    for i in range(200)]
        assert statuses[:60] == [200] * 60 and set(statuses[60:]) == {429}
        for _ in range(3):
            clock.t += 600
            assert mine.post("/v1/heartbeat", json={"token": got["token"]}, headers=BROWSER).json() == {"alive": True}
        assert guesser.post("/v1/heartbeat", json={"token": "0" * 16}, headers=BROWSER).status_code == 200  # refilled
        scrape = mine.get("/metrics", headers={"X-API-Key": KEY}).text
        assert metric(scrape, "k50_visits_rate_limited_total", limit="heartbeat") == 140


def test_visits_and_heartbeats_from_other_sites_are_refused(big, clock):
    app = create_app(big, api_keys=[KEY], now=clock, cors_origins=[SITE])
    with from_ip(app, "198.51.100.50") as c:
        body = {"url": SITE + "/?utm_campaign=spring_sale"}
        evil = c.post("/v1/visit", json=body, headers={**BROWSER, "Origin": "https://evil.example"})
        assert evil.status_code == 403 and "access-control-allow-origin" not in evil.headers
        plain = c.post("/v1/visit", content=json.dumps(body), headers={**BROWSER, "Content-Type": "text/plain"})
        assert plain.status_code == 415
        form = c.post("/v1/heartbeat", content=b"token=x",
                      headers={**BROWSER, "Origin": "https://evil.example",
                               "Content-Type": "application/x-www-form-urlencoded"})
        assert form.status_code == 403
        own = c.post("/v1/visit", json=body, headers={**BROWSER, "Origin": "http://testserver"})  # its own host
        assert own.status_code == 200 and own.json()["claim"]
        assert browser_visit(c, headers={"Origin": SITE}, **body).json()["token"]   # allow-listed
        assert live_leases(big, clock.t).keys() == {own.json()["visitor_id"]}


def test_protection_none_is_the_old_single_step(big, clock):
    app = create_app(big, api_keys=[KEY], now=clock, protection=None)
    with from_ip(app, "198.51.100.60") as c:
        got = c.post("/v1/visit", json={"url": SITE + "/?utm_campaign=spring_sale"}, headers={"User-Agent": "curl/8"})
        assert got.json()["token"] and "claim" not in got.json()


def test_the_probe_five_curls_no_longer_take_a_five_number_pool(tmp_path, clock):
    """The outside probe, as reported: five curl requests from one address took all 5 numbers and a
    real visitor from another address got the site's number. Now curl takes nothing, a script that
    acts like the snippet from that address takes at most 2, and the visitor gets a number."""
    cfg = dict(CONFIG, pools={"msk": dict(CONFIG["pools"]["msk"], numbers=NUMBERS[:5], on_exhausted="default")})
    engine = Engine.from_config(cfg, store=str(tmp_path / "five.db"))
    try:
        app = create_app(engine, api_keys=[KEY], now=clock)
        with from_ip(app, "198.51.100.9") as curl:
            for i in range(5):
                r = curl.post("/v1/visit", json={"url": CAMPAIGN, "visitor_id": f"c{i}"},
                              headers={"User-Agent": "curl/8.5.0"})
                assert r.json()["number"] is None
            scripted = [browser_visit(curl, url=CAMPAIGN, visitor_id=f"s{i}").json() for i in range(5)]
        assert sum(bool(s["token"]) for s in scripted) == 2
        with from_ip(app, VISITOR_IP) as visitor:
            got = browser_visit(visitor, url=CAMPAIGN).json()
        assert got["token"] and got["number"] in NUMBERS[:5]
    finally:
        engine.close()
