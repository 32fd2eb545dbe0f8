"""The tracking snippet end to end: a real uvicorn server (demo page + snippet + API over a
SQLite file store) and a real headless Chromium driven by Playwright.

Chromium: $K50_CHROMIUM, else /usr/bin/chromium (Debian's package), else Playwright's own.
Without Playwright or a browser the browser tests are skipped with the reason (the
HTTP-level tests still run) — except under ``.ci/run`` (K50CORE_REQUIRE_BROWSER=1), where a
missing browser fails them."""
from __future__ import annotations

import gzip
import os
import re
import shutil
import time

import httpx
import pytest
from drain_support import CC, COUNTRIES, WORLD_NUMBERS
from service_support import serving
from starlette.testclient import TestClient

from k50core import Engine
from k50core.bindings.service import VISITOR_COOKIE, create_app
from k50core.bindings.service.pages import SNIPPET_PATH, Snippet
from k50core.cli import app as cli_app

KEY = "snippet-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
CAMPAIGN = "/?utm_source=yandex&utm_medium=cpc&utm_campaign=spring_sale"  # the demo config's msk dynamic pool
SITE_NUMBER = "+74951234567"
GA = "GA1.1.1234567890.1700000000"


@pytest.fixture
def server(engine, clock):
    """A real uvicorn server in a thread on a free port: the demo site, the snippet, the API."""
    with serving(create_app(engine, api_keys=[KEY], now=clock, demo=True)) as base:
        yield base


def _chromium_path():
    for path in (os.environ.get("K50_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                 shutil.which("chromium-browser"), shutil.which("google-chrome")):
        if path and os.path.exists(path):
            return path
    return None


@pytest.fixture(scope="module")
def browser():
    required = os.environ.get("K50CORE_REQUIRE_BROWSER") == "1"
    if required:
        import playwright.sync_api as sync_api
    else:
        sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as p:
        try:
            b = p.chromium.launch(executable_path=_chromium_path(), headless=True, args=["--no-sandbox"])
        except Exception as exc:  # no browser here: say why
            if required:
                raise
            pytest.skip(f"headless Chromium could not be launched: {exc}".splitlines()[0])
        yield b
        b.close()


def browser_agent(browser):
    """The User-Agent of this Chromium as a person's browser sends it: headless Chromium says
    "HeadlessChrome", which the service (rightly) takes for automation and gives no number."""
    return ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
            f"Chrome/{browser.version} Safari/537.36")


@pytest.fixture
def page(browser, server):
    context = browser.new_context(user_agent=browser_agent(browser))
    context.add_cookies([{"name": "_ga", "value": GA, "url": server},
                         {"name": "_ga_ABC123", "value": "GS2.1.s1699999990$o3$g1$t1700000100$j0$l0$h0", "url": server}])
    pg = context.new_page()
    errors = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    context.close()
    assert errors == []


def open_demo(page, server, heartbeat=None):
    """Loads the demo page as an ad campaign's visitor and waits for the snippet's number."""
    url = server + CAMPAIGN + (f"&k50_heartbeat={heartbeat}" if heartbeat else "")
    answers = []

    def seen(r):
        if r.url.endswith("/v1/visit"):
            answers.append(r)
    page.on("response", seen)
    page.goto(url)
    page.wait_for_function("window.K50 && K50.number() !== null", timeout=5000)
    page.remove_listener("response", seen)
    return answers[-1].json()  # a new visitor's second answer: the claim's, with the number


def cookie(page, name):
    return next((c["value"] for c in page.context.cookies() if c["name"] == name), None)


def compact(e164):  # "+74950000002" -> "84950000002"
    return "8" + e164[2:]


# -- the snippet over HTTP ------------------------------------------------------------------
def test_snippet_is_served_versioned_and_cacheable(server):
    r = httpx.get(server + "/snippet.js", timeout=5)
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/javascript; charset=utf-8"
    version = re.search(r'VERSION = "(\d+\.\d+\.\d+)"', r.text).group(1)
    assert r.headers["x-k50-snippet-version"] == version
    assert r.headers["etag"].startswith(f'"k50-{version}-') and "max-age=" in r.headers["cache-control"]
    assert r.content == SNIPPET_PATH.read_bytes()
    again = httpx.get(server + "/snippet.js", headers={"If-None-Match": r.headers["etag"]}, timeout=5)
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == r.headers["etag"]
    assert httpx.get(server + "/snippet.js", headers={"If-None-Match": '"k50-0.0.1-x"'}, timeout=5).status_code == 200


def test_snippet_goes_gzipped_to_browsers_that_take_it(server):
    raw = httpx.get(server + "/snippet.js", headers={"Accept-Encoding": "identity"}, timeout=5)
    assert "content-encoding" not in raw.headers and raw.content == SNIPPET_PATH.read_bytes()
    with httpx.stream("GET", server + "/snippet.js", headers={"Accept-Encoding": "gzip, br"}, timeout=5) as r:
        wire = b"".join(r.iter_raw())
        assert r.headers["content-encoding"] == "gzip" and "Accept-Encoding" in r.headers["vary"]
    assert gzip.decompress(wire) == SNIPPET_PATH.read_bytes()
    assert len(wire) < 5.75 * 1024  # any country's numbers, split and marked ones, call intents: 5.6 KB
    refused = httpx.get(server + "/snippet.js", headers={"Accept-Encoding": "gzip;q=0"}, timeout=5)
    assert "content-encoding" not in refused.headers


def test_snippet_is_small_and_plain():
    text = SNIPPET_PATH.read_text("utf-8")
    assert len(text.encode("utf-8")) < 14 * 1024  # unminified, comments included; gzip about 40%
    assert "import " not in text and "require(" not in text  # no modules, no build step
    assert Snippet().version == re.search(r'VERSION = "([^"]+)"', text).group(1)


def test_demo_page_carries_the_snippet_and_the_number(server):
    html = httpx.get(server + "/", timeout=5).text
    assert '<script src="/snippet.js"' in html and f'data-site-number="{SITE_NUMBER}"' in html
    assert f'data-endpoint="{server}"' in html
    assert f'href="tel:{SITE_NUMBER}"' in html and html.count("+7 (495) 123-45-67") >= 3
    assert "data-k50-noswap" in html and "8 495 123 45 67" in html
    assert '<span id="split"><span>+7 (495)</span> <b>123-45-67</b></span>' in html


def test_no_demo_page_without_demo(engine, clock):
    with TestClient(create_app(engine, now=clock)) as c:
        assert c.get("/").status_code == 404
        assert c.get("/snippet.js").status_code == 200


def test_serve_demo_mounts_the_demo_page(tmp_path, monkeypatch):
    import uvicorn
    from typer.testing import CliRunner

    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.setdefault("app", app))
    r = CliRunner().invoke(cli_app, ["serve", "--demo", "--store", str(tmp_path / "d.db"), "--api-key", KEY])
    assert r.exit_code == 0, r.output
    with TestClient(seen["app"]) as c:
        assert c.get("/").status_code == 200 and "/snippet.js" in c.get("/").text


# -- the snippet in a real browser ------------------------------------------------------------
def test_page_number_swapped_in_text_and_link_keeping_format(page, server):
    got = open_demo(page, server)
    number, display = got["number"], got["display"]
    assert number.startswith("+7495") and number != SITE_NUMBER and got["token"]
    assert page.evaluate("K50.number()") == number and page.evaluate("K50.display()") == display
    assert re.fullmatch(r"\d+\.\d+\.\d+", page.evaluate("K50.version"))
    assert page.inner_text("#phone") == display                      # "+7 (495) 000-00-02": same format
    assert page.get_attribute("#tel", "href") == "tel:" + number
    assert page.inner_text("#tel") == display
    d = number[2:]
    assert f"Orders by phone 8 {d[:3]} {d[3:6]} {d[6:8]} {d[8:]}, every day." in page.inner_text("body")
    assert page.inner_html("#split") == f"<span>+7 ({d[:3]})</span> <b>{d[3:6]}-{d[6:8]}-{d[8:]}</b>"
    assert page.inner_text("#noswap") == "Head office (never swapped): +7 (495) 123-45-67"
    assert cookie(page, VISITOR_COOKIE) == got["visitor_id"] == page.evaluate("K50.visitorId()")


def test_every_usual_form_keeps_its_format(page, server):
    number = open_demo(page, server)["number"]
    d = number[2:]  # the ten digits after +7
    forms = {  # written on the page -> what the snippet must make of it
        "+7 (495) 123-45-67": f"+7 ({d[:3]}) {d[3:6]}-{d[6:8]}-{d[8:]}",
        "8 495 123 45 67": f"8 {d[:3]} {d[3:6]} {d[6:8]} {d[8:]}",
        "84951234567": "8" + d,
        "+74951234567": "+7" + d,
        "8(495)1234567": f"8({d[:3]}){d[3:]}",
        "+7-495-123-4567": f"+7-{d[:3]}-{d[3:6]}-{d[6:]}",
        "(495) 123-45-67": f"({d[:3]}) {d[3:6]}-{d[6:8]}-{d[8:]}",
        "+7\u00a0495\u00a0123\u201145\u201167": f"+7\u00a0{d[:3]}\u00a0{d[3:6]}\u2011{d[6:8]}\u2011{d[8:]}",
        "Call 8 495 123-45-67 now": f"Call 8 {d[:3]} {d[3:6]}-{d[6:8]}-{d[8:]} now",
        "+7 (495) 765-43-21": "+7 (495) 765-43-21",   # another number: not the site's, kept
        "order 12345678901234": "order 12345678901234",
    }
    page.evaluate("""forms => { forms.forEach((f, i) => { const p = document.createElement('p');
        p.id = 'f' + i; p.textContent = f; document.body.appendChild(p); }); }""", list(forms))
    for i, want in enumerate(forms.values()):  # the MutationObserver swaps what was added later
        page.wait_for_function(f"document.getElementById('f{i}').textContent === {want!r}", timeout=3000)


def test_content_added_later_is_swapped(page, server):
    number = open_demo(page, server)["number"]
    page.evaluate("""() => { const div = document.createElement('div'); div.id = 'popup';
        div.innerHTML = '<p>Call <b id="late">84951234567</b></p><a id="late-tel" href="tel:8-495-123-45-67">call</a>'
          + '<span data-k50-noswap><a id="kept-tel" href="tel:+74951234567">+7 (495) 123-45-67</a></span>';
        setTimeout(() => document.body.appendChild(div), 50); }""")
    page.wait_for_function(f"document.getElementById('late') && "
                           f"document.getElementById('late').textContent === {compact(number)!r}", timeout=3000)
    assert page.get_attribute("#late-tel", "href") == "tel:" + number
    assert page.get_attribute("#kept-tel", "href") == "tel:" + SITE_NUMBER
    assert page.inner_text("#kept-tel") == "+7 (495) 123-45-67"
    page.evaluate("document.getElementById('phone').textContent = '+7 (495) 123-45-67'")  # an SPA re-render
    page.wait_for_function("document.getElementById('phone').textContent === K50.display()", timeout=3000)


def test_rescan_swaps_what_the_observer_did_not_see(page, server):
    number = open_demo(page, server)["number"]
    page.evaluate("K50.stop()")  # the observer off: only rescan() can swap now
    page.evaluate("""() => { const p = document.createElement('p'); p.id = 'manual';
        p.textContent = '84951234567'; document.body.appendChild(p); }""")
    page.wait_for_timeout(100)
    assert page.inner_text("#manual") == "84951234567"
    assert page.evaluate("K50.rescan()") == 1
    assert page.inner_text("#manual") == compact(number)
    assert page.evaluate("K50.rescan()") == 0


def test_returning_visitor_keeps_visitor_and_number(page, server):
    first = open_demo(page, server)
    again = open_demo(page, server)
    assert again["visitor_id"] == first["visitor_id"] and again["number"] == first["number"]


def test_ga_client_and_session_ids_reach_the_store(page, server, clock):
    got = open_demo(page, server)
    call = {"call_id": "ga-1", "number": page.evaluate("K50.number()"), "caller": "+79161234567",
            "started_at": clock.t + 30, "duration_seconds": 40, "answered": True}
    clock.t += 60
    a = httpx.post(server + "/v1/calls", json=call, headers=AUTH, timeout=5).json()
    assert a["status"] == "matched" and a["visitor_id"] == got["visitor_id"]
    assert a["attributes"]["ga_client_id"] == "1234567890.1700000000"
    assert a["attributes"]["ga_session_id"] == "1699999990"   # from the stream's _ga_<container> cookie


def test_end_to_end_heartbeat_keeps_the_lease_and_the_call_finds_the_browser(page, server, clock):
    beats = []
    page.on("response", lambda r: beats.append(r.json()) if r.url.endswith("/v1/heartbeat") else None)
    got = open_demo(page, server, heartbeat=1)
    shown = page.inner_text("#phone")
    vid = cookie(page, VISITOR_COOKIE)
    assert vid == got["visitor_id"]

    def beats_after_now(n=2):  # heartbeats sent after the clock moved: the last one surely was
        seen = len(beats)
        deadline = time.time() + 10
        while len(beats) < seen + n and time.time() < deadline:
            page.wait_for_timeout(100)
        assert len(beats) >= seen + n, "no heartbeat came"
        return beats[seen:]

    for _ in range(2):  # 2 x 800 s: 1600 s after the visit, beyond the 900 s hold, alive by heartbeats alone
        clock.t += 800
        assert all(b == {"alive": True} for b in beats_after_now())
    # the telephony webhook: a call to the number the browser shows
    call = {"call_id": "e2e-1", "number": shown, "caller": "+79161234567", "started_at": clock.t,
            "duration_seconds": 95, "answered": True}
    clock.t += 100
    a = httpx.post(server + "/v1/calls", json=call, headers=AUTH, timeout=5)
    assert a.status_code == 200
    body = a.json()
    assert body["status"] == "matched" and body["visitor_id"] == vid
    assert body["rule"] == "spring-campaign" and body["pool"] == "msk"
    assert body["attributes"]["ga_client_id"] == "1234567890.1700000000"


def test_data_numbers_lists_what_to_swap(page, server):
    """A page of one's own (served here through Playwright's routing, same origin as the
    service) names its numbers in data-numbers; other numbers stay as written."""
    html = """<!doctype html><p id="a">Moscow +7 (812) 111-22-33</p><p id="b">Free 8 800 555-35-35</p>
        <p id="c">Old +7 (495) 123-45-67</p><a id="t" href="tel:88005553535">call</a>
        <script src="/snippet.js" data-numbers="+78121112233, 8 (800) 555-35-35"></script>"""
    page.route(re.compile(r"/own(\?.*)?$"), lambda route: route.fulfill(status=200, content_type="text/html", body=html))
    page.goto(server + "/own?utm_campaign=spring_sale")
    page.wait_for_function("window.K50 && K50.number() !== null", timeout=5000)
    d = page.evaluate("K50.number()")[2:]
    assert page.inner_text("#a") == f"Moscow +7 ({d[:3]}) {d[3:6]}-{d[6:8]}-{d[8:]}"
    assert page.inner_text("#b") == f"Free 8 {d[:3]} {d[3:6]}-{d[6:8]}-{d[8:]}"
    assert page.inner_text("#c") == "Old +7 (495) 123-45-67"  # not listed: kept
    assert page.get_attribute("#t", "href") == "tel:+7" + d


def test_excluded_visitor_keeps_the_page_number(page, server):
    """No rule matches a direct visit to / in the demo config: the page keeps its own number."""
    with page.expect_response(lambda r: r.url.endswith("/v1/visit")) as visit:
        page.goto(server + "/")
    assert visit.value.json()["number"] is None
    page.wait_for_timeout(200)
    assert page.evaluate("K50.number()") is None
    assert page.inner_text("#phone") == "+7 (495) 123-45-67"
    assert page.get_attribute("#tel", "href") == "tel:" + SITE_NUMBER


def test_snippet_ships_with_the_package():
    """pyproject's package-data and MANIFEST.in carry bindings/snippet/*.js (installed as
    k50core/bindings/snippet/k50.js, where pages.py looks for it)."""
    import fnmatch
    from pathlib import Path

    import tomllib

    root = Path(__file__).resolve().parents[1]
    data = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert any(fnmatch.fnmatch("snippet/k50.js", g) for g in data.get("k50core.bindings", []))
    assert "bindings/snippet" in (root / "MANIFEST.in").read_text()
    assert SNIPPET_PATH == root / "bindings" / "snippet" / "k50.js" or SNIPPET_PATH.parts[-4:-2] == ("k50core", "bindings")


def test_headless_chromium_takes_no_number(browser, server):
    """Chromium's own headless User-Agent is automation: the visit is answered without a number or a
    claim ticket, and the page keeps the site's number."""
    context = browser.new_context()
    try:
        page = context.new_page()
        assert "HeadlessChrome" in page.evaluate("navigator.userAgent")
        with page.expect_response(lambda r: r.url.endswith("/v1/visit")) as visit:
            page.goto(server + CAMPAIGN)
        got = visit.value.json()
        assert got["number"] is None and got["token"] is None and "claim" not in got
        page.wait_for_timeout(200)
        assert page.evaluate("K50.number()") is None
        assert page.inner_text("#phone") == "+7 (495) 123-45-67"
        pools = httpx.get(server + "/v1/pools", headers=AUTH, timeout=5).json()["pools"]
        assert pools["msk"]["leased"] == 0
    finally:
        context.close()


# -- any country's numbers, numbers split across elements, marked containers (issue 15.12) ----------
WORLD = {"site": {"default_number": SITE_NUMBER},
         "pools": {c: {"type": "dynamic", "numbers": n} for c, n in WORLD_NUMBERS.items()},
         "rules": [{"name": c, "when": {"query.utm_campaign": c}, "pool": c} for c in WORLD_NUMBERS]}


@pytest.fixture
def world(tmp_path, clock):
    """The service over a config with a pool of numbers in each of seven countries."""
    e = Engine.from_config(WORLD, store=str(tmp_path / "world.db"))
    try:
        with serving(create_app(e, api_keys=[KEY], now=clock)) as base:
            yield base
    finally:
        e.close()


def own_page(page, server, path, html):
    """A site's page of one's own at ``server`` + ``path`` (same origin as the service, served through
    Playwright's routing), loaded; waits for the snippet's number."""
    page.route(re.compile(re.escape(path.split("?")[0]) + r"(\?.*)?$"),
               lambda route: route.fulfill(status=200, content_type="text/html", body=html))
    page.goto(server + path)
    page.wait_for_function("window.K50 && K50.number() !== null", timeout=5000)
    return page.evaluate("K50.number()")


@pytest.mark.parametrize("country", list(COUNTRIES))
def test_any_countrys_numbers_are_swapped_keeping_their_format(page, world, country):
    region, site, forms = COUNTRIES[country]
    first = forms[0][0]
    rows = "".join(f'<p id="f{i}">{written}</p>' for i, (written, _) in enumerate(forms))
    html = f"""<!doctype html>{rows}<a id="t" href="tel:{first}">call</a><a id="o" href="tel:{forms[-1][0]}">x</a>
        <script src="/snippet.js" data-region="{region}" data-numbers="{site}"></script>"""
    number = own_page(page, world, f"/own?utm_campaign={country}", html)
    assert number in WORLD_NUMBERS[country]
    n = number[1 + len(CC[country]):]  # the national significant digits of the new number
    for i, (written, becomes) in enumerate(forms):
        assert page.inner_text(f"#f{i}") == becomes(n), written
    assert page.get_attribute("#t", "href") == "tel:" + number
    assert page.get_attribute("#o", "href") == "tel:" + forms[-1][0]


def test_numbers_split_across_elements_are_swapped(page, server):
    """Sites write a number in pieces (<span>+7 (495)</span> <b>123-45-67</b>): each piece keeps
    its element and its format; a neighbouring other number and a block boundary are respected."""
    number = open_demo(page, server)["number"]
    d = number[2:]
    page.evaluate("""() => { const div = document.createElement('div');
        div.innerHTML = '<p id="s1"><span>+7 (495)</span> <b>123-45-67</b></p>'
          + '<p id="s2"><a id="s2a" href="tel:+74951234567"><span>8 495</span><span>123 45 67</span></a></p>'
          + '<p id="s3">Sales <span>+7 (495) 123-45-67</span>, service <span>+7 (495) <i>765</i>-43-21</span></p>'
          + '<p id="s4"><small>+7</small>&nbsp;<small>495</small>&nbsp;<small>123</small>-<small>45</small>-<small>67</small></p>'
          + '<div id="s5"><p>Office: +7 (495)</p><p>123-45-67</p></div>';
        document.body.appendChild(div); }""")
    page.wait_for_function(f"document.querySelector('#s1 b').textContent === {d[3:6] + '-' + d[6:8] + '-' + d[8:]!r}",
                           timeout=3000)
    assert page.inner_html("#s1") == f"<span>+7 ({d[:3]})</span> <b>{d[3:6]}-{d[6:8]}-{d[8:]}</b>"
    assert page.inner_html("#s2a") == f"<span>8 {d[:3]}</span><span>{d[3:6]} {d[6:8]} {d[8:]}</span>"
    assert page.get_attribute("#s2a", "href") == "tel:" + number
    assert page.inner_text("#s3") == (f"Sales +7 ({d[:3]}) {d[3:6]}-{d[6:8]}-{d[8:]}, "
                                      "service +7 (495) 765-43-21")
    assert page.inner_html("#s4") == (f"<small>+7</small>&nbsp;<small>{d[:3]}</small>&nbsp;<small>{d[3:6]}</small>-"
                                      f"<small>{d[6:8]}</small>-<small>{d[8:]}</small>")
    assert page.inner_text("#s5 p:first-child") == "Office: +7 (495)"       # two lines: not one number
    assert page.inner_text("#s5 p:last-child") == "123-45-67"
    page.evaluate("K50.stop()")  # added later, without the observer: rescan() finds a split number too
    page.evaluate("""() => { const p = document.createElement('p'); p.id = 's6';
        p.innerHTML = '<b>8 (495)</b> <b>123-45-67</b>'; document.body.appendChild(p); }""")
    assert page.evaluate("K50.rescan()") >= 1
    assert page.inner_text("#s6") == f"8 ({d[:3]}) {d[3:6]}-{d[6:8]}-{d[8:]}"
    assert page.evaluate("K50.rescan()") == 0


def test_a_marked_container_shows_the_number_in_its_written_format(page, server):
    """[data-k50-phone]: whatever number the site wrote in it (not necessarily one the snippet
    knows, split or not) becomes the tracking number in the same format; with no digits, the
    container shows the number's display form; a marked tel: link gets the number."""
    number = open_demo(page, server)["number"]
    d = number[2:]
    page.evaluate("""() => { const div = document.createElement('div');
        div.innerHTML = '<div id="m1" data-k50-phone><span>+7 (495)</span> <strong>999-88-77</strong></div>'
          + '<span id="m2" data-k50-phone>Call us</span>'
          + '<a id="m3" data-k50-phone href="tel:84959998877">8 495 999 88 77</a>'
          + '<p id="m4" data-k50-phone>8 800 <b>555-35-35</b></p>'
          + '<div data-k50-noswap><span id="m5" data-k50-phone>+7 (495) 999-88-77</span></div>';
        document.body.appendChild(div); }""")
    page.wait_for_function("document.getElementById('m2').textContent === K50.display()", timeout=3000)
    assert page.inner_html("#m1") == f"<span>+7 ({d[:3]})</span> <strong>{d[3:6]}-{d[6:8]}-{d[8:]}</strong>"
    assert page.inner_text("#m2") == page.evaluate("K50.display()")
    assert page.inner_text("#m3") == f"8 {d[:3]} {d[3:6]} {d[6:8]} {d[8:]}"
    assert page.get_attribute("#m3", "href") == "tel:" + number
    assert page.inner_html("#m4") == f"8 {d[:3]} <b>{d[3:6]}-{d[6:8]}-{d[8:]}</b>"
    assert page.inner_text("#m5") == "+7 (495) 999-88-77"
