"""The dashboard: signed in with an API key (HttpOnly session cookie, CSRF-safe forms), its charts
drawn by the vendored Chart.js in headless Chromium with the figures the API gives; a screenshot
(K50CORE_DOCS_SCREENSHOT=docs/dashboard.png writes the one in the docs)."""
import os
import re
import shutil

import httpx
import pytest
from service_support import Clock, serving
from test_snippet import browser  # noqa: F401  (the module's headless Chromium fixture)

from k50core import Engine
from k50core.bindings.service import create_app
from k50core.bindings.service.limits import Protection

KEY = "dashboard-key-0123456789"
T0 = 1_764_547_200.0  # 2025-12-01 00:00 UTC
DAY = 86400.0
UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
CONFIG = {"pools": {"ads": {"type": "dynamic", "numbers": ["+74950000001", "+74950000002", "+74950000003"],
                            "hold_seconds": 900, "cooldown_seconds": 300, "on_exhausted": "share"},
                    "site": {"type": "static", "numbers": ["+74950000100"]}},
          "rules": [{"name": "paid", "when": {"query.utm_medium": "cpc"}, "pool": "ads"},
                    {"name": "rest", "pool": "site"}]}
CAMPAIGNS = [("yandex", "sofas"), ("yandex", "beds"), ("google", "sofas"), ("vk", "spring")]


def populate(e):
    """Three days of visits, calls of every kind and deals."""
    n = 0
    for day in range(3):
        for k in range(8):
            at = T0 + day * DAY + 9 * 3600 + k * 600
            source, campaign = CAMPAIGNS[(day + k) % len(CAMPAIGNS)]
            got = e.assign({"url": f"https://shop.example/c?utm_source={source}&utm_medium=cpc&utm_campaign={campaign}",
                            "visitor_id": f"v{day}-{k}", "ip": "5.6.7.8", "user_agent": UA}, now=at)
            e.assign({"url": "https://shop.example/", "visitor_id": f"s{day}-{k}", "ip": "5.6.7.9",
                      "user_agent": UA}, now=at)
            if k % 2 == 0 and got.number:
                n += 1
                e.attribute({"call_id": f"c{n}", "number": got.number, "caller": f"+7999000{n:04d}",
                             "started_at": at + 120, "duration_seconds": 30 + 40 * k, "answered": k != 4},
                            now=at + 600)
        if day == 1:  # a burst at noon: more visitors than numbers, the pool shares
            for k in range(5):
                e.assign({"url": "https://shop.example/?utm_source=vk&utm_medium=cpc&utm_campaign=spring",
                          "visitor_id": f"burst{k}", "ip": "5.6.7.8", "user_agent": UA}, now=T0 + DAY + 12 * 3600 + k)
            e.write_reports()
        e.attribute({"call_id": f"u{day}", "number": "+74990001122", "caller": "+79991234567",
                     "started_at": T0 + day * DAY + 15 * 3600, "duration_seconds": 60}, now=T0 + day * DAY + 16 * 3600)
    e.import_deals([{"deal_id": f"d{i}", "phone": f"+7999000{i:04d}", "created_at": T0 + 3 * DAY,
                     "amount": 1000 * i, "status": "won" if i % 2 else "open"} for i in range(1, n + 1)], now=T0 + 3 * DAY)
    e.write_reports()


@pytest.fixture
def site(tmp_path):
    engine = Engine.from_config(CONFIG, store=str(tmp_path / "k50.db"))
    populate(engine)
    app = create_app(engine, api_keys=[KEY], now=Clock(T0 + 3 * DAY), rate_limits=None,
                     protection=Protection(secret=b"dashboard-test-secret"))
    with serving(app) as base:
        yield base, engine
    engine.close()


def _signed_in(base):
    client = httpx.Client(base_url=base)
    page = client.get("/dashboard")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    got = client.post("/dashboard/login", data={"key": KEY, "csrf": csrf})
    assert got.status_code == 303
    return client, got


def test_signing_in_sets_a_strict_httponly_session(site):
    base, _ = site
    client, got = _signed_in(base)
    cookie = got.headers["set-cookie"]
    assert "k50_dashboard=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert client.get("/v1/reports?by=source").status_code == 200            # the cookie opens the report GETs
    assert client.get("/dashboard/plan").status_code == 200
    assert client.post("/v1/deals", json=[]).status_code == 401               # ... not the writes
    page = client.get("/dashboard")
    assert "calls-per-day" in page.text and "default-src 'none'" in page.headers["content-security-policy"]
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    assert client.post("/dashboard/logout", data={"csrf": csrf}).status_code == 303
    assert client.get("/v1/reports?by=source").status_code == 401


def test_forms_refuse_forgery_and_wrong_keys(site):
    base, _ = site
    client = httpx.Client(base_url=base)
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/dashboard").text).group(1)
    assert client.post("/dashboard/login", data={"key": KEY}).status_code == 403                 # no CSRF token
    assert client.post("/dashboard/login", data={"key": KEY, "csrf": "guess"}).status_code == 403
    cross = client.post("/dashboard/login", data={"key": KEY, "csrf": csrf},
                        headers={"Origin": "https://evil.example"})
    assert cross.status_code == 403 and cross.json()["problems"][0]["field"] == "Origin"
    wrong = client.post("/dashboard/login", data={"key": "not-the-key", "csrf": csrf})
    assert wrong.status_code == 401 and "k50_dashboard" not in wrong.headers.get("set-cookie", "")
    forged = httpx.get(f"{base}/v1/reports", cookies={"k50_dashboard": "s1." + "A" * 43})
    assert forged.status_code == 401
    _, got = _signed_in(base)
    session = got.cookies["k50_dashboard"]
    assert httpx.get(f"{base}/v1/reports", cookies={"k50_dashboard": session[:-1] + "x"}).status_code == 401
    assert httpx.get(f"{base}/v1/reports", cookies={"k50_dashboard": session}).status_code == 200


def _csrf(client):
    return re.search(r'name="csrf" value="([^"]+)"', client.get("/dashboard").text).group(1)


def test_signing_out_ends_the_session_on_the_server(site):
    """A copy of the cookie (stolen) stops working once its owner signs out, whatever the browser keeps."""
    base, _ = site
    client, got = _signed_in(base)
    stolen = got.cookies["k50_dashboard"]
    other, _ = _signed_in(base)  # another session of the same key, in another browser
    assert httpx.get(f"{base}/v1/reports", cookies={"k50_dashboard": stolen}).status_code == 200
    assert client.post("/dashboard/logout", data={"csrf": _csrf(client)}).status_code == 303
    assert httpx.get(f"{base}/v1/reports", cookies={"k50_dashboard": stolen}).status_code == 401
    assert "Sign in" in httpx.get(f"{base}/dashboard", cookies={"k50_dashboard": stolen}).text
    assert httpx.get(f"{base}/dashboard/plan", cookies={"k50_dashboard": stolen}).status_code == 401
    assert other.get("/v1/reports?by=source").status_code == 200        # only that session ended
    kept = other.cookies["k50_dashboard"]
    third, _ = _signed_in(base)
    assert third.post("/dashboard/logout", data={"csrf": _csrf(third), "everywhere": "1"}).status_code == 303
    assert httpx.get(f"{base}/v1/reports", cookies={"k50_dashboard": kept}).status_code == 401  # every one of the key


def test_a_session_expires_by_the_services_clock(tmp_path):
    """A session in use lives until SESSION_SECONDS after sign-in, however often it is used."""
    from k50core.bindings.service.dashboard import IDLE_SECONDS, SESSION_SECONDS

    engine = Engine.from_config(CONFIG, store=str(tmp_path / "k50.db"))
    clock = Clock(T0)
    app = create_app(engine, api_keys=[KEY], now=clock, rate_limits=None, protection=Protection(secret=b"s" * 32))
    try:
        with serving(app) as base:
            _, got = _signed_in(base)
            session = got.cookies["k50_dashboard"]
            step = IDLE_SECONDS * 2 / 3  # used every 20 minutes
            while clock.t + step < T0 + SESSION_SECONDS:
                clock.t += step
                assert httpx.get(f"{base}/v1/reports", cookies={"k50_dashboard": session}).status_code == 200
            clock.t = T0 + SESSION_SECONDS - 1
            assert httpx.get(f"{base}/v1/reports", cookies={"k50_dashboard": session}).status_code == 200
            clock.t = T0 + SESSION_SECONDS
            assert httpx.get(f"{base}/v1/reports", cookies={"k50_dashboard": session}).status_code == 401
    finally:
        engine.close()


def test_a_session_left_unused_ends_after_its_idle_time(tmp_path, store_url):
    """A cookie left behind (a shared machine, a stolen copy nobody uses yet) stops working IDLE_SECONDS
    after its last use, in every worker; each use moves that deadline on."""
    from k50core.bindings.service.dashboard import IDLE_SECONDS

    engines = [Engine.from_config(CONFIG, store=store_url) for _ in range(2)]
    clock = Clock(T0)
    protection = Protection(secret=b"s" * 32)
    apps = [create_app(e, api_keys=[KEY], now=clock, rate_limits=None, protection=protection) for e in engines]
    try:
        with serving(apps[0]) as one, serving(apps[1]) as two:
            _, got = _signed_in(one)
            session = {"k50_dashboard": got.cookies["k50_dashboard"]}
            clock.t = T0 + IDLE_SECONDS - 1
            assert httpx.get(f"{two}/v1/reports", cookies=session).status_code == 200   # used: the deadline moves
            clock.t = T0 + 2 * IDLE_SECONDS - 2
            assert httpx.get(f"{one}/v1/reports", cookies=session).status_code == 200
            clock.t += IDLE_SECONDS
            assert httpx.get(f"{two}/v1/reports", cookies=session).status_code == 401   # idle too long
            assert httpx.get(f"{one}/v1/reports", cookies=session).status_code == 401
    finally:
        for e in engines:
            e.close()


def test_sessions_are_shared_by_workers_over_one_store(tmp_path, store_url):
    """Two apps over one store stand for two workers: a session opened in one works in the other,
    signing out in one ends it in the other, and a worker started with a rotated key refuses it."""
    protection = Protection(secret=b"shared-deployment-secret-0123456")
    engines = [Engine.from_config(CONFIG, store=store_url) for _ in range(2)]
    apps = [create_app(e, api_keys=[KEY], rate_limits=None, protection=protection) for e in engines]
    try:
        with serving(apps[0]) as one, serving(apps[1]) as two:
            client, got = _signed_in(one)
            session = got.cookies["k50_dashboard"]
            assert httpx.get(f"{two}/v1/reports", cookies={"k50_dashboard": session}).status_code == 200
            assert client.post("/dashboard/logout", data={"csrf": _csrf(client)}).status_code == 303
            assert httpx.get(f"{two}/v1/reports", cookies={"k50_dashboard": session}).status_code == 401
            _, got = _signed_in(two)
            session = got.cookies["k50_dashboard"]
            rotated = create_app(engines[0], api_keys=["a-new-key-0123456789"], rate_limits=None,
                                 protection=protection)
            with serving(rotated) as three:
                assert httpx.get(f"{three}/v1/reports", cookies={"k50_dashboard": session}).status_code == 401
            # that worker deleted the session of a key it does not have: it ends everywhere
            assert httpx.get(f"{two}/v1/reports", cookies={"k50_dashboard": session}).status_code == 401
    finally:
        for e in engines:
            e.close()


def test_a_session_ends_with_its_key(tmp_path, site):
    base, engine = site
    _, got = _signed_in(base)
    session = got.cookies["k50_dashboard"]
    rotated = create_app(engine, api_keys=["a-new-key-0123456789"], rate_limits=None,
                         protection=Protection(secret=b"dashboard-test-secret"))
    with serving(rotated) as other:
        assert httpx.get(f"{other}/v1/reports", cookies={"k50_dashboard": session}).status_code == 401


def test_the_dashboard_draws_the_apis_figures(site, browser, tmp_path):  # noqa: F811
    base, _ = site
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    since, until = int(T0), int(T0 + 3 * DAY)
    page.goto(f"{base}/dashboard?since={since}&until={until}")
    page.fill("input[name=key]", KEY)
    page.click("button[type=submit]")
    page.goto(f"{base}/dashboard?since={since}&until={until}")
    page.wait_for_function("() => window.k50dashboard && window.k50dashboard.ready", timeout=15000)
    state = page.evaluate("() => window.k50dashboard")
    assert state["errors"] == []
    api = httpx.Client(base_url=base, headers={"X-API-Key": KEY})
    q = {"since": since, "until": until}

    # calls per day, stacked by status: every (day, status) figure is the API's
    per_day = api.get("/v1/reports", params={"by": "day,status", **q}).json()["rows"]
    drawn = {(day, d["label"]): n for d in state["callsPerDay"]["datasets"]
             for day, n in zip(state["callsPerDay"]["labels"], d["data"]) if n}
    assert drawn == {(r["day"], "unmatched" if r["unmatched"] else r["status"]): r["calls"]
                     for r in per_day if r["calls"]}
    assert sorted(state["callsPerDay"]["labels"]) == ["2025-12-01", "2025-12-02", "2025-12-03"]

    # the top sources and campaigns, with conversion and cost per call
    top = [r for r in api.get("/v1/reports", params={"by": "source,query.utm_campaign", **q}).json()["rows"]
           if r["calls"] or r["visits"]][:10]
    assert [(t["source"], t["campaign"], t["visits"], t["calls"], t["deals"], t["revenue"]) for t in state["top"]] == \
        [("unmatched" if r["unmatched"] else r["source"], r["query.utm_campaign"], r["visits"], r["calls"], r["deals"],
          r["revenue"]) for r in top]
    for t, r in zip(state["top"], top):
        assert t["conversion"] == (pytest.approx(r["calls"] / r["visits"]) if r["visits"] else None)
        assert t["cost_per_call"] == (pytest.approx(r["cost"] / r["calls"]) if r["calls"] else None)
    cells = page.locator("#top-table tbody tr").count()
    assert cells == len(top)

    # pool usage: peaks, exhaustion, the recommended size
    usage = api.get("/v1/pools/usage", params={"step": 6 * 3600, **q}).json()["pools"]["ads"]
    drawn_pool = state["pools"]["ads"]
    assert drawn_pool["peak"] == [s["peak_leased"] for s in usage["steps"]]
    assert drawn_pool["exhausted"] == [s["exhausted_shared"] + s["exhausted_default"] for s in usage["steps"]]
    assert drawn_pool["recommended"] == usage["recommended_numbers"] and drawn_pool["numbers"] == 3
    assert sum(drawn_pool["exhausted"]) >= 2 and 3 in drawn_pool["peak"]  # the burst: every number out, shares

    # minutes against the package
    plan = api.get("/dashboard/plan").json()
    assert state["minutes"] == {"used": plan["minutes_this_month"], "included": plan["minutes_included"]}

    # the charts are drawn: Chart.js holds the same data, and the canvases have pixels on them
    charted = page.evaluate("""() => Array.from(document.querySelectorAll('canvas')).map(c => {
        const chart = Chart.getChart(c);
        const pixels = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let inked = 0; for (let i = 3; i < pixels.length; i += 4) { if (pixels[i]) inked++; }
        return {id: c.id, datasets: chart.data.datasets.map(d => d.data), inked: inked};
    })""")
    by_id = {c["id"]: c for c in charted}
    assert set(by_id) == {"calls-per-day", "minutes", "top-sources", "pool-ads"}
    assert all(c["inked"] > 1000 for c in charted)
    assert by_id["calls-per-day"]["datasets"] == [d["data"] for d in state["callsPerDay"]["datasets"]]
    assert by_id["top-sources"]["datasets"][1] == [t["calls"] for t in state["top"]]

    shot = tmp_path / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 20_000
    if os.environ.get("K50CORE_DOCS_SCREENSHOT"):
        shutil.copy(shot, os.environ["K50CORE_DOCS_SCREENSHOT"])

    # the browser's Sign out button ends the session on the server: a copy of its cookie stops working
    (cookie,) = [c["value"] for c in page.context.cookies() if c["name"] == "k50_dashboard"]
    assert httpx.get(f"{base}/v1/reports", cookies={"k50_dashboard": cookie}).status_code == 200
    page.click("header button[type=submit]")
    page.wait_for_selector("input[name=key]")
    assert httpx.get(f"{base}/v1/reports", cookies={"k50_dashboard": cookie}).status_code == 401
    page.close()
