"""Outgoing events (bindings/events): signed webhooks and GA4 events through the store's outbox,
sent to a real HTTP receiver on 127.0.0.1 (never the internet), over both builds and both stores."""
import asyncio
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from drain_support import browser_visit
from hypothesis import HealthCheck, given, settings, strategies as st
from service_support import T0, Clock, metric

from k50core import ConfigError, Engine
from k50core.attribution import visit_summary
from k50core.bindings.events import Dispatcher, attribution_json, backoff, retry_after
from k50core.bindings.events.payloads import GA4_NAME_MAX, GA4_VALUE_MAX
from k50core.bindings.telephony.signing import SignatureError, Verifier
from k50core.config.model import parse
from k50core.store import open_store

SECRET = "whsec-0123456789"
NUMBERS = ["+74950000001", "+74950000002"]
HOOK, MP = "/hooks/calls", "/mp/collect"


class Receiver:
    """A local HTTP server recording every POST and answering from a script per path (then 200)."""

    def __init__(self, delay: float = 0.0) -> None:
        self.requests, self.script, self.delay = [], {}, delay
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                url = urlsplit(self.path)
                with receiver.lock:
                    receiver.requests.append({"path": url.path, "query": parse_qs(url.query),
                                              "headers": dict(self.headers), "body": body})
                    queued = receiver.script.get(url.path) or []
                    status, extra = queued.pop(0) if queued else (200, {})
                time.sleep(receiver.delay)
                self.send_response(status)
                for k, v in extra.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def answer(self, path, *statuses):
        self.script[path] = [s if isinstance(s, tuple) else (s, {}) for s in statuses]

    def to(self, path):
        with self.lock:
            return [r for r in self.requests if r["path"] == path]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def config(url, retry=None, statuses=None, ga4=True):
    hook = {"name": "crm", "url": url + HOOK, "secret": SECRET}
    if statuses:
        hook["statuses"] = statuses
    events = {"webhooks": [hook], "retry": retry or {"max_attempts": 4, "base_seconds": 2, "max_seconds": 60}}
    if ga4:
        events["ga4"] = {"measurement_id": "G-ABC123", "api_secret": "mp-secret", "endpoint": url + MP}
    return {"site": {"default_number": "+74951234567"},
            "pools": {"p": {"type": "dynamic", "numbers": NUMBERS, "hold_seconds": 900, "late_seconds": 600}},
            "rules": [{"name": "all", "pool": "p"}], "events": events}


GA_SESSION = {"GS1": "GS1.1.1699999990.3.1.1700000100.0.0.0", "GS2": "GS2.1.s1699999990$o3$g1$t1700000100$j0$l0$h0"}


def visit(v, cookies=None, campaign="sofas"):
    return {"visitor_id": v, "session_id": f"s-{v}", "ip": "5.101.68.156",
            "url": f"https://shop.example.ru/?utm_source=yandex&utm_medium=cpc&utm_campaign={campaign}",
            "cookies": {"_ga": "GA1.1.1234567890.1700000000", "_ga_ABC123": GA_SESSION["GS1"]}
            if cookies is None else cookies}


def call(cid, number, at, caller="+79161234567"):
    return {"call_id": cid, "number": number, "caller": caller, "started_at": at, "duration_seconds": 75,
            "answered": True}


@pytest.fixture
def setup(build, store_url, receiver):
    """(engine, dispatcher, clock, receiver) over both builds and both stores."""
    clock = Clock(T0 + 200)
    engine = Engine.from_config(config(receiver.url), implementation=build, store=store_url)
    yield engine, Dispatcher(engine.store, engine.config.events, now=clock), clock, receiver
    engine.close()


def attributed(engine, cid="c1", v="v1", **kw):
    a = engine.assign(visit(v, **kw), now=T0)
    return engine.attribute(call(cid, a.number, T0 + 100), now=T0 + 160)


def test_webhook_is_signed_verifiable_and_carries_the_attribution(setup):
    engine, d, clock, rx = setup
    got = attributed(engine)
    assert d.enqueue(got) == 2                                   # the webhook and GA4
    assert d.deliver_due() == (2, 0)
    (req,) = rx.to(HOOK)
    h = req["headers"]
    Verifier([SECRET], now=clock).verify(h["X-K50-Timestamp"], h["X-K50-Signature"], req["body"])
    with pytest.raises(SignatureError):
        Verifier(["another"], now=clock).verify(h["X-K50-Timestamp"], h["X-K50-Signature"], req["body"])
    assert h["Idempotency-Key"] == "c1:crm" and h["Content-Type"] == "application/json"
    assert h["User-Agent"].startswith("k50core/")
    doc = json.loads(req["body"])
    assert doc["type"] == "call.attributed" and doc["event_id"] == "c1:crm"
    assert doc["number"] in NUMBERS and doc["received_at"] == T0 + 160
    assert (doc["caller"], doc["started_at"], doc["duration_seconds"], doc["answered"]) == \
        ("+79161234567", T0 + 100, 75.0, True)
    assert {k: doc[k] for k in attribution_json(got)} == json.loads(json.dumps(attribution_json(got)))
    assert doc["status"] == "matched" and doc["attributes"]["utm"]["utm_campaign"] == "sofas"
    assert [r["status"] for r in d.entries("c1")] == ["delivered", "delivered"]
    assert d.deliver_due(now=T0 + 10_000) == (0, 0) and len(rx.requests) == 2   # delivered: never resent


def test_retries_back_off_with_one_idempotency_key(setup):
    engine, d, clock, rx = setup
    rx.answer(HOOK, 500, 503, 200)
    d.enqueue(attributed(engine))
    t = clock.t
    assert d.deliver_due() == (1, 1)                          # GA4 delivered, the webhook failed
    row = next(r for r in d.entries("c1") if r["target"] == "crm")
    first = backoff("c1:crm", 1, 2.0, 60.0)
    assert 1.6 <= first <= 2.4 and row["next_at"] == pytest.approx(t + first)
    assert (row["attempts"], row["status"], row["last_error"]) == (1, "pending", "HTTP 500")
    clock.t = row["next_at"] - 0.01
    assert d.deliver_due() == (0, 0)                          # not due yet: nothing sent
    clock.t = row["next_at"]
    assert d.deliver_due() == (0, 1)
    row = next(r for r in d.entries("c1") if r["target"] == "crm")
    second = backoff("c1:crm", 2, 2.0, 60.0)
    assert 3.2 <= second <= 4.8 and row["next_at"] == pytest.approx(clock.t + second)
    clock.t = row["next_at"]
    assert d.deliver_due() == (1, 0)
    sent = rx.to(HOOK)
    assert len(sent) == 3 and {r["headers"]["Idempotency-Key"] for r in sent} == {"c1:crm"}
    assert len({r["body"] for r in sent}) == 1                 # the same document every time
    assert len({r["headers"]["X-K50-Timestamp"] for r in sent}) == 3   # signed afresh each time
    row = next(r for r in d.entries("c1") if r["target"] == "crm")
    assert (row["status"], row["attempts"], row["delivered_at"]) == ("delivered", 3, clock.t)


def test_dead_after_max_attempts_and_never_sent_again(setup):
    engine, d, clock, rx = setup
    rx.answer(HOOK, *[500] * 10)
    d.enqueue(attributed(engine))
    for _ in range(4):
        d.deliver_due()
        clock.t += 61                                          # past any backoff (max_seconds 60)
    row = next(r for r in d.entries("c1") if r["target"] == "crm")
    assert (row["status"], row["attempts"], row["last_error"]) == ("dead", 4, "HTTP 500")
    d.deliver_due(now=clock.t + 10_000)
    assert len(rx.to(HOOK)) == 4
    assert d.stats() == {"pending": 0, "delivered": 1, "dead": 1, "oldest_pending_seconds": 0.0}


@pytest.mark.parametrize("answer, status, attempts", [(410, "dead", 1), (422, "dead", 1), (404, "pending", 1)])
def test_refusals_of_the_body_itself_are_final(setup, answer, status, attempts):
    engine, d, clock, rx = setup
    rx.answer(HOOK, answer)
    d.enqueue(attributed(engine))
    d.deliver_due()
    row = next(r for r in d.entries("c1") if r["target"] == "crm")
    assert (row["status"], row["attempts"], row["last_error"]) == (status, attempts, f"HTTP {answer}")


def test_retry_after_is_honoured(setup):
    engine, d, clock, rx = setup
    rx.answer(HOOK, (429, {"Retry-After": "45"}), (503, {"Retry-After": "999999"}))
    d.enqueue(attributed(engine))
    d.deliver_due()
    row = next(r for r in d.entries("c1") if r["target"] == "crm")
    assert row["next_at"] == pytest.approx(clock.t + 45)
    clock.t = row["next_at"]
    d.deliver_due()
    row = next(r for r in d.entries("c1") if r["target"] == "crm")
    assert row["next_at"] == pytest.approx(clock.t + 60)     # never beyond max_seconds
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412480 - 30) == pytest.approx(30)
    assert retry_after("soon", 0) is None and retry_after(None, 0) is None


def test_a_network_failure_is_recorded_and_retried(build, store_url):
    closed = Receiver()
    url = closed.url
    closed.close()                                              # nothing listens there any more
    clock = Clock(T0 + 200)
    with Engine.from_config(config(url, ga4=False), implementation=build, store=store_url) as engine:
        d = Dispatcher(engine.store, engine.config.events, now=clock, timeout=2)
        d.enqueue(attributed(engine))
        assert d.deliver_due() == (0, 1)
        (row,) = d.entries("c1")
        assert row["status"] == "pending" and row["last_error"] == "URLError: ConnectionRefusedError"
        assert "127.0.0.1" not in row["last_error"] and SECRET not in json.dumps(row)


def test_enqueue_twice_and_a_reported_again_call_write_once(setup):
    engine, d, clock, rx = setup
    got = attributed(engine)
    assert d.enqueue(got) == 2 and d.enqueue(got) == 0
    again = engine.attribute(call("c1", NUMBERS[0], T0 + 100), now=T0 + 300)   # the telephony retried
    assert d.enqueue(again) == 0 and len(d.entries()) == 2
    d.deliver_due()
    assert d.enqueue(got) == 0 and d.deliver_due(now=T0 + 9999) == (0, 0) and len(rx.requests) == 2


def test_enqueue_inside_the_callers_lock(setup):
    """The service attributes and enqueues in one step under its (non-reentrant) lock."""
    engine, _, clock, rx = setup
    lock = threading.Lock()
    d = Dispatcher(engine.store, engine.config.events, now=clock, lock=lock)
    with lock:
        assert d.enqueue(attributed(engine), held=True) == 2
    assert d.deliver_due() == (2, 0)


def test_status_filter_and_no_ga4_without_a_client_id(build, store_url, receiver):
    clock = Clock(T0 + 200)
    cfg = config(receiver.url, statuses=["matched", "late"])
    with Engine.from_config(cfg, implementation=build, store=store_url) as engine:
        d = Dispatcher(engine.store, engine.config.events, now=clock)
        unmatched = engine.attribute(call("c0", NUMBERS[1], T0 - 5000), now=T0)
        assert unmatched.status == "unmatched" and d.enqueue(unmatched) == 0
        got = attributed(engine, "c1", cookies={})                 # no _ga cookie: no GA4 event
        assert d.enqueue(got) == 1 and [r["target"] for r in d.entries()] == ["crm"]


@pytest.mark.parametrize("fmt", ["GS1", "GS2"])
def test_ga4_event_shape(setup, fmt):
    engine, d, clock, rx = setup
    got = attributed(engine, cookies={"_ga": "GA1.1.1234567890.1700000000", "_ga_ABC123": GA_SESSION[fmt]},
                     campaign="x" * 300)
    assert got.attributes["ga_session_id"] == "1699999990"
    d.enqueue(got)
    d.deliver_due()
    (req,) = rx.to(MP)
    assert req["query"] == {"measurement_id": ["G-ABC123"], "api_secret": ["mp-secret"]}
    assert "Idempotency-Key" not in req["headers"] and "X-K50-Signature" not in req["headers"]
    body = json.loads(req["body"])
    assert body["client_id"] == "1234567890.1700000000" and body["timestamp_micros"] == (T0 + 100) * 1_000_000
    (event,) = body["events"]
    p = event["params"]
    assert event["name"] == "phone_call" and p["session_id"] == "1699999990" and p["engagement_time_msec"] == 1
    assert (p["call_id"], p["call_status"], p["duration_seconds"], p["source"], p["medium"]) == \
        ("c1", "matched", 75, "yandex", "cpc")
    assert p["campaign"] == "x" * GA4_VALUE_MAX
    assert len(p) <= 25 and all(len(k) <= GA4_NAME_MAX for k in p)
    assert all(len(v) <= GA4_VALUE_MAX for v in p.values() if isinstance(v, str))
    assert "+79161234567" not in req["body"].decode()          # no caller number: GA forbids personal data


def test_ga4_leaves_out_a_timestamp_older_than_72_hours(setup):
    engine, d, clock, rx = setup
    d.enqueue(attributed(engine))
    d.deliver_due(now=T0 + 100 + 73 * 3600)
    body = json.loads(rx.to(MP)[0]["body"])
    assert "timestamp_micros" not in body and body["client_id"] == "1234567890.1700000000"


def test_session_id_of_several_streams_is_the_configured_ones():
    attrs = visit_summary({"cookie": {"_ga": "GA1.1.1.2", "_ga_ABC123": GA_SESSION["GS1"],
                                      "_ga_OTHER9": "GS2.1.s1600000000$o1"}})
    assert attrs["ga_session_ids"] == {"ABC123": "1699999990", "OTHER9": "1600000000"}
    assert "ga_session_id" not in attrs
    assert visit_summary({"cookie": {"_ga_X": "GS9.junk"}}) == {}


def test_catch_up_after_a_crash_writes_what_enqueue_would(tmp_path, build, receiver):
    db = str(tmp_path / "k50.db")
    with Engine.from_config(config(receiver.url), implementation=build, store=db) as engine:
        d = Dispatcher(engine.store, engine.config.events, now=Clock(T0 + 200))
        d.enqueue(attributed(engine, "c1", "v1"))
        lost = attributed(engine, "c2", "v2")                       # attributed, then the process "died"
    store = open_store(db)                                          # the restart: a fresh connection
    try:
        d = Dispatcher(store, parse(config(receiver.url))[0].events, now=Clock(T0 + 300))
        assert d.catch_up(since=T0) == 2 and d.catch_up(since=T0) == 0
        caught = {r["id"]: r["body"] for r in d.entries("c2")}
        assert set(caught) == {"c2:crm", "c2:ga4"}
        with store.transaction():
            store.conn.cursor().execute("DELETE FROM outbox WHERE call_id = 'c2'")
        assert d.enqueue(lost) == 2                                 # what enqueue writes is the same
        assert {r["id"]: r["body"] for r in d.entries("c2")} == caught
        assert d.deliver_due() == (4, 0) and len(rx_ids(receiver)) == 2
    finally:
        store.close()


def rx_ids(receiver):
    return [r["headers"]["Idempotency-Key"] for r in receiver.to(HOOK)]


def test_catch_up_rebuilds_ambiguous_candidates_exactly(setup):
    engine, d, clock, rx = setup
    first = engine.assign(visit("v1"), now=T0)
    engine.assign(visit("v2"), now=T0 + 10)
    engine.assign(visit("v3"), now=T0 + 200)                        # a pool of two: v3 shares v1's number
    got = engine.attribute(call("c1", first.number, T0 + 250), now=T0 + 260)
    assert got.status == "ambiguous" and len(got.candidates) == 2
    d.enqueue(got)
    written = {r["id"]: r["body"] for r in d.entries()}
    with engine.store.transaction():
        engine.store.conn.cursor().execute("DELETE FROM outbox")
    assert d.catch_up(since=0) == 2
    assert {r["id"]: r["body"] for r in d.entries()} == written
    assert len(json.loads(written["c1:crm"])["candidates"]) == 2


def test_two_dispatchers_never_send_one_row_twice(build, store_url):
    rx = Receiver(delay=0.05)
    try:
        clock = Clock(T0 + 200)
        cfg = config(rx.url, ga4=False)
        numbers = [f"+7495{i:07d}" for i in range(1, 13)]
        cfg["pools"]["p"]["numbers"] = numbers
        with Engine.from_config(cfg, implementation=build, store=store_url) as engine:
            d0 = Dispatcher(engine.store, engine.config.events, now=clock)
            for i in range(12):
                a = engine.assign(visit(f"v{i}"), now=T0)
                d0.enqueue(engine.attribute(call(f"c{i}", a.number, T0 + 100, caller=f"+7916000{i:04d}"), now=T0 + 150))
            claimed = d0._claim("c0:crm", clock.t)                  # one claimed and in flight elsewhere
            assert claimed is not None and d0._claim("c0:crm", clock.t) is None
            stores = [open_store(store_url), open_store(store_url)]
            workers = [Dispatcher(s, engine.config.events, now=clock) for s in stores]
            results = []
            threads = [threading.Thread(target=lambda w=w: results.append(w.deliver_due())) for w in workers]
            for th in threads:
                th.start()
            for th in threads:
                th.join(30)
            for s in stores:
                s.close()
            keys = rx_ids(rx)
            assert sorted(keys) == sorted(f"c{i}:crm" for i in range(1, 12))   # each once; c0 left to its claimer
            assert sum(r[0] for r in results) == 11
            assert d0.deliver_due(now=clock.t + 31) == (1, 0)       # the claim ran out: c0 goes now
    finally:
        rx.close()


def test_a_target_dropped_from_the_config_goes_dead(setup):
    engine, d, clock, rx = setup
    d.enqueue(attributed(engine))
    d.configure(parse(config(rx.url, ga4=False))[0].events.__class__())   # nothing configured any more
    assert d.deliver_due() == (0, 2) and rx.requests == []
    assert {r["last_error"] for r in d.entries()} == {"target not configured"}


def test_run_catches_up_and_delivers_until_stopped(setup):
    engine, d, clock, rx = setup
    attributed(engine)                                              # never enqueued: run() catches up

    async def main():
        stop = asyncio.Event()
        task = asyncio.create_task(d.run(stop, interval=0.01))
        for _ in range(500):
            if len(rx.requests) >= 2:
                break
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(task, 10)

    asyncio.run(main())
    assert sorted(r["path"] for r in rx.requests) == [HOOK, MP]


def test_backoff_is_deterministic_jittered_and_capped():
    for n in range(1, 15):
        wait = backoff("k", n, 2.0, 3600.0)
        assert wait == backoff("k", n, 2.0, 3600.0) and wait <= 3600.0
        assert 0.8 * min(3600.0, 2.0 * 2 ** (n - 1)) <= wait <= 1.2 * min(3600.0, 2.0 * 2 ** (n - 1))
    assert len({backoff(f"c{i}:crm", 3, 2.0, 3600.0) for i in range(20)}) > 15   # spread, not in step


# -- configuration -------------------------------------------------------------------------------------
def problems(events):
    with pytest.raises(ConfigError) as info:
        Engine.from_config({"pools": {"p": {"numbers": NUMBERS}}, "rules": [{"name": "all", "pool": "p"}],
                            "events": events})
    return dict(info.value.problems)


@pytest.mark.parametrize("events, place, words", [
    ({"webhooks": [{"url": "ftp://x/y", "secret": "s"}]}, "events.webhooks[0].url", "expected an http(s) URL"),
    ({"webhooks": [{"url": "https://crm.example/h"}]}, "events.webhooks[0].secret", "non-empty string"),
    ({"webhooks": [{"url": "https://a.example/h", "secret": "s", "statuses": ["matched", "won"]}]},
     "events.webhooks[0].statuses[1]", "expected one of"),
    ({"webhooks": [{"url": "https://a.example/h", "secret": "s", "sekret": 1}]}, "events.webhooks[0].sekret",
     "unknown key"),
    ({"webhooks": [{"name": "a", "url": "https://a.example/1", "secret": "s"},
                   {"name": "a", "url": "https://a.example/2", "secret": "s"}]}, "events.webhooks[1].name", "already"),
    ({"webhooks": {"url": "https://a.example/h"}}, "events.webhooks", "expected a list"),
    ({"ga4": {"measurement_id": "UA-1234-1", "api_secret": "k"}}, "events.ga4.measurement_id", "measurement id"),
    ({"ga4": {"measurement_id": "G-ABC123", "api_secret": "k", "event_name": "session_start"}},
     "events.ga4.event_name", "reserved"),
    ({"ga4": {"measurement_id": "G-ABC123", "api_secret": "k", "event_name": "x" * 41}}, "events.ga4.event_name",
     "at most 40"),
    ({"ga4": {"measurement_id": "G-ABC123", "api_secret": "k", "endpoint": "localhost:8080"}},
     "events.ga4.endpoint", "expected an http(s) URL"),
    ({"retry": {"max_attempts": 0}}, "events.retry.max_attempts", "from 1 to 100"),
    ({"retry": {"base_seconds": -1}}, "events.retry.base_seconds", "above 0"),
    ({"retry": {"base_seconds": 10, "max_seconds": 5}}, "events.retry.max_seconds", "at least base_seconds"),
    ({"hooks": []}, "events.hooks", "unknown key"),
    ([], "events", "expected a mapping"),
])
def test_event_config_errors_are_located(events, place, words):
    found = problems(events)
    assert place in found and words in found[place], found


def test_event_config_defaults_and_secrets_kept_out_of_repr():
    events = parse({"events": {"webhooks": [{"url": "https://crm.example/h", "secret": "topsecret"}],
                               "ga4": {"measurement_id": "G-ABC123", "api_secret": "mpsecret"}}})[0].events
    (hook,) = events.webhooks
    assert hook.name.startswith("webhook-") and hook.statuses[0] == "matched" and len(hook.statuses) == 6
    assert events.ga4.event_name == "phone_call" and events.ga4.endpoint.startswith("https://www.google-analytics")
    assert (events.retry.max_attempts, events.retry.base_seconds, events.retry.max_seconds) == (8, 2.0, 3600.0)
    assert "topsecret" not in repr(events) and "mpsecret" not in repr(events)
    assert not parse({})[0].events.configured


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
                     max_leaves=20)
_keys = st.sampled_from(["webhooks", "ga4", "retry", "url", "secret", "statuses", "name", "measurement_id",
                         "api_secret", "event_name", "endpoint", "max_attempts", "base_seconds", "max_seconds"])
_section = st.recursive(_json, lambda inner: st.dictionaries(_keys, inner, max_size=5) | st.lists(inner, max_size=3),
                        max_leaves=25)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=_section)
def test_any_events_section_parses_or_is_reported_in_place(events):
    cfg, found = parse({"events": events})
    assert all(place == "events" or place.startswith(("events.", "events[")) for place, _ in found)  # events[""]: an odd key
    for hook in cfg.events.webhooks:
        assert hook.url.startswith(("http://", "https://")) and hook.secret


def test_the_service_sends_the_events_of_a_call_it_attributes(tmp_path, receiver):
    """End to end through the HTTP service: a visit as the snippet sends it (GA4 client and session
    ids), a telephony webhook, then the signed webhook and the GA4 event at the local receiver."""
    from starlette.testclient import TestClient

    from k50core.bindings.service import create_app
    clock = Clock(T0)
    app = create_app(config=config(receiver.url), store=str(tmp_path / "k50.db"), api_keys=["key"], now=clock)
    with TestClient(app) as client:
        got = browser_visit(client, url="https://shop.example.ru/?utm_source=yandex&utm_medium=cpc",
                            ga_client_id="1234567890.1700000000", ga_session_id="1699999990").json()
        clock.t = T0 + 100
        r = client.post("/v1/calls", json=call("svc-1", got["number"], T0 + 90), headers={"X-API-Key": "key"})
        assert r.status_code == 200 and r.json()["status"] == "matched"
        deadline = time.time() + 10  # sent, and the outcome recorded (the receiver answers first)
        key = {"X-API-Key": "key"}   # /metrics is private
        while time.time() < deadline and \
                metric(client.get("/metrics", headers=key).text, "k50_events", status="delivered") != 2:
            time.sleep(0.05)
        metrics = client.get("/metrics", headers=key).text
    (hook,), (mp,) = receiver.to(HOOK), receiver.to(MP)
    Verifier([SECRET], now=lambda: T0 + 100).verify(hook["headers"]["X-K50-Timestamp"],
                                                    hook["headers"]["X-K50-Signature"], hook["body"])
    sent = json.loads(hook["body"])
    assert sent["call_id"] == "svc-1" and sent["visitor_id"] == got["visitor_id"]
    assert hook["headers"]["Idempotency-Key"] == "svc-1:crm"
    ga = json.loads(mp["body"])
    assert ga["client_id"] == "1234567890.1700000000" and ga["events"][0]["params"]["session_id"] == "1699999990"
    assert metric(metrics, "k50_events", status="delivered") == 2
