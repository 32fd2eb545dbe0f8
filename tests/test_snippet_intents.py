"""The snippet reports call intents from a real headless Chromium to the real service (uvicorn, a
SQLite file store): a click on the swapped tel: link and a copy of the swapped number's text each
reach POST /v1/intent as a beacon and are kept with the visitor's lease."""
from __future__ import annotations

import time

import httpx
from service_support import metric
from test_snippet import AUTH, browser, cookie, open_demo, page, server  # noqa: F401 (fixtures)

from k50core.bindings.service import VISITOR_COOKIE
from k50core.intent import stored_intents

# a click on a tel: link would hand the page to the system's dialer: stopped after the snippet saw it
NO_DIALER = """document.addEventListener("click", function (e) {
  if (e.target.closest && e.target.closest("a[href^='tel:']")) e.preventDefault(); });"""


def wait_for_intents(engine, number, count, timeout=10.0):
    """The intents kept with the lease of ``number`` once there are ``count`` (a beacon is sent
    asynchronously); whatever is there when ``timeout`` passes."""
    held = engine.pools.holder_of(number)
    key = engine.store.lease_key(held.pool, held.number, held.start, held.lease)
    deadline = time.monotonic() + timeout
    while True:
        rows = stored_intents(engine.store, key)
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


def test_a_click_on_the_tel_link_and_a_copy_of_the_number_are_sent(page, server, engine):  # noqa: F811
    got = open_demo(page, server)
    page.evaluate(NO_DIALER)
    page.click("#tel")
    (click,) = wait_for_intents(engine, got["number"], 1)
    assert (click.kind, click.visitor_id) == ("click", cookie(page, VISITOR_COOKIE))
    page.click("#tel")                                      # a double tap: sent once
    page.evaluate("""() => { const r = document.createRange(); r.selectNodeContents(document.getElementById("phone"));
                             const s = getSelection(); s.removeAllRanges(); s.addRange(r); }""")
    page.keyboard.press("Control+C")
    rows = wait_for_intents(engine, got["number"], 2)
    assert [r.kind for r in rows] == ["click", "copy"] and rows[1].visitor_id == got["visitor_id"]
    scrape = httpx.get(server + "/metrics", headers=AUTH, timeout=5).text
    assert metric(scrape, "k50_intents_total", outcome="recorded") == 2


def test_a_copy_of_other_text_sends_nothing(page, server, engine):  # noqa: F811
    got = open_demo(page, server)
    page.evaluate("""() => { const r = document.createRange(); r.selectNodeContents(document.getElementById("noswap"));
                             const s = getSelection(); s.removeAllRanges(); s.addRange(r); }""")
    page.keyboard.press("Control+C")
    page.evaluate(NO_DIALER)
    page.click("#tel")                                      # then a click, so there is something to wait for
    rows = wait_for_intents(engine, got["number"], 1)
    assert [r.kind for r in rows] == ["click"]


def test_a_tap_on_a_phone_sends_a_click(browser, server, engine):  # noqa: F811
    """A phone's touch screen: a tap (touch events, then the click they make) on the tel: link."""
    from test_snippet import browser_agent

    context = browser.new_context(user_agent=browser_agent(browser), has_touch=True, is_mobile=True,
                                  viewport={"width": 390, "height": 844})
    try:
        pg = context.new_page()
        got = open_demo(pg, server)
        pg.evaluate(NO_DIALER)
        pg.tap("#tel")
        rows = wait_for_intents(engine, got["number"], 1)
        assert [(r.kind, r.visitor_id) for r in rows] == [("click", got["visitor_id"])]
    finally:
        context.close()
