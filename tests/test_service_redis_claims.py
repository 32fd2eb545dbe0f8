"""The service (and the middleware) with the pools in Redis: new visitors' claims leave the event
loop and go to Redis together; returning visitors are answered from memory, on the loop, with no
Redis command; Redis killed under load gives default numbers, never a 500. Real redis-server, real
uvicorn.

Batching is made deterministic as in test_redis_batching: the first claim's round trip is held
until the other requests' claims have queued behind it. That can only happen if the loop went on
serving requests while the round trip was out.
"""
import asyncio
import threading
import time

import httpx
from redisserver import RedisServer
from service_support import Clock, metric, serving

from k50core import Engine
from k50core.bindings.middleware import Tracker
from k50core.bindings.service import create_app

NUMBERS = [f"+7495100{i:04d}" for i in range(120)]
DEFAULT = "+74950000099"
KEY = "k"


def config(numbers=NUMBERS):
    return {"site": {"default_number": "+74951234567"},
            "pools": {"p": {"type": "dynamic", "numbers": list(numbers), "hold_seconds": 600,
                            "cooldown_seconds": 60, "on_exhausted": "default", "default_number": DEFAULT}},
            "rules": [{"name": "all", "pool": "p"}]}


def app_of(engine, clock):
    return create_app(engine, api_keys=[KEY], rate_limits=None, protection=None, now=clock)


def until(cond, seconds=15.0):
    deadline = time.monotonic() + seconds
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.002)
    return True


class Gate:
    """Holds the first claims' round trip until ``waiting`` claims in all were made: sent in it, or
    queued behind it (``queued()`` says how many); records each claims' round trip's calls."""

    def __init__(self, pools, waiting, queued):
        self.real, self.waiting, self.queued = pools._claims._send, waiting, queued
        self.sends = []
        self.saw_them_queue = None
        pools._claims._send = self.send

    def send(self, calls):
        self.sends.append([c[0] for c in calls])
        if len(self.sends) == 1:
            self.saw_them_queue = until(lambda: self.queued() >= self.waiting)
        return self.real(calls)


def fcalls(server):
    import redis
    stats = redis.Redis(port=server.port).info("commandstats")
    return stats.get("cmdstat_fcall", {}).get("calls", 0)


async def visit_all(base, visitors, concurrency=64):
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        async def one(v):
            return await client.post("/v1/visit", json={"visitor_id": v, "url": "https://shop.example.ru/"})
        return await asyncio.gather(*(one(v) for v in visitors))



def record_sends(pools):
    """The (thread name, [function names]) of every round trip the pools send from now on."""
    seen = []
    real_send = pools._send

    def send(calls, client):
        seen.append((threading.current_thread().name, [c[0] for c in calls]))
        return real_send(calls, client)

    pools._send = send
    return seen


def test_concurrent_new_visitors_go_to_redis_together_and_returning_ones_stay_local(redis_server, tmp_path):
    clock = Clock()
    engine = Engine.from_config(config(), state_url=redis_server.url() + "&timeout=30",
                                store=str(tmp_path / "k50.db"))
    pools = engine.pools
    visitors = [f"v{i}" for i in range(40)]
    gate = Gate(pools, len(visitors), lambda: pools._claims.claims + pools._sender._queue.qsize())
    with serving(app_of(engine, clock)) as base:
        before = fcalls(redis_server)
        answers = asyncio.run(visit_all(base, visitors))
        sent = fcalls(redis_server) - before
        assert all(r.status_code == 200 for r in answers)
        got = {v: r.json() for v, r in zip(visitors, answers)}
        assert gate.saw_them_queue, "the loop did not serve other visits while a claim was out"
        numbers = [a["number"] for a in got.values()]
        assert set(numbers) <= set(NUMBERS) and len(set(numbers)) == len(visitors)  # none twice
        # at most two claims' round trips: the first (held) and one with all that queued behind it
        assert 1 <= len(gate.sends) <= 2 and all(len(s) == 1 for s in gate.sends)
        assert any("k50_claim_many" in calls for calls in gate.sends)
        assert sent <= 2  # what Redis saw: one FCALL a round trip, not one a visitor
        scrape = httpx.get(base + "/metrics", headers={"X-API-Key": KEY}).text
        assert metric(scrape, "k50_redis_claims_total") == len(visitors)
        assert metric(scrape, "k50_redis_claim_round_trips_total") == len(gate.sends)

        # returning visitors: answered from this host's memory on the loop; only the flusher's
        # thread writes their renewals
        seen = record_sends(pools)
        clock.t += 1
        again = asyncio.run(visit_all(base, visitors))
        assert [r.json()["number"] for r in again] == numbers
        assert [r.json()["token"] for r in again] == [got[v]["token"] for v in visitors]
        # on the loop, no visit's round trip (the periodic sample of the pools for the reports,
        # k50_stats, is not a visit's); the flusher's thread and the store's (/metrics) carry renewals
        on_loop = [calls for name, calls in seen if not name.startswith(("k50core-redis-flusher", "k50core-store"))]
        assert all(calls == ["k50_stats"] for calls in on_loop), seen
        scrape = httpx.get(base + "/metrics", headers={"X-API-Key": KEY}).text
        assert metric(scrape, "k50_redis_claims_total") == len(visitors)  # no claim for them
        assert until(lambda: any("k50_renew" in calls for _, calls in seen)), seen  # written all the same
    engine.close()


def test_many_concurrent_new_visitors_get_a_number_or_the_default_never_one_twice(redis_server, tmp_path):
    clock = Clock()
    engine = Engine.from_config(config(NUMBERS[:50]), state_url=redis_server.url() + "&timeout=30",
                                store=str(tmp_path / "k50.db"))
    visitors = [f"w{i}" for i in range(150)]
    with serving(app_of(engine, clock)) as base:
        answers = asyncio.run(visit_all(base, visitors, concurrency=50))
        assert all(r.status_code == 200 for r in answers)
        numbers = [r.json()["number"] for r in answers]
        given = [n for n in numbers if n != DEFAULT]
        assert set(given) <= set(NUMBERS[:50]) and len(given) == len(set(given)) == 50  # each once, all used
        assert numbers.count(DEFAULT) == 100 and all(r.json()["token"] is None for r in answers
                                                     if r.json()["number"] == DEFAULT)
        counts = engine.pools.claim_counts()
        assert counts["claims"] == 150 and counts["claim_round_trips"] <= 150
        stats = httpx.get(base + "/v1/pools", headers={"X-API-Key": KEY}).json()["pools"]["p"]
        assert stats["leased"] == 50 and stats["exhausted_default"] == 100
    engine.close()


def test_redis_killed_under_load_gives_defaults_no_500_and_a_degraded_healthz(tmp_path):
    server = RedisServer(aof=True)
    try:
        clock = Clock()
        engine = Engine.from_config(config(), state_url=server.url(), store=str(tmp_path / "k50.db"))
        statuses, numbers = [], []
        with serving(app_of(engine, clock)) as base:
            stop = threading.Event()

            def load(k):
                n = 0
                with httpx.Client(base_url=base, timeout=30) as client:
                    while not stop.is_set():
                        n += 1
                        try:
                            r = client.post("/v1/visit", json={"visitor_id": f"load{k}-{n}",
                                                               "url": "https://shop.example.ru/"})
                        except httpx.HTTPError as exc:  # reported by the check below
                            statuses.append(type(exc).__name__)
                            continue
                        statuses.append(r.status_code)
                        if r.status_code == 200:
                            numbers.append(r.json()["number"])

            threads = [threading.Thread(target=load, args=(k,)) for k in range(6)]
            for t in threads:
                t.start()
            assert until(lambda: len(numbers) >= 30)
            server.kill()
            dead_at = len(statuses)
            assert until(lambda: len(statuses) >= dead_at + 60)  # visits go on being answered
            assert httpx.get(base + "/healthz").json()["status"] == "degraded"
            scrape = httpx.get(base + "/metrics", headers={"X-API-Key": KEY}).text
            assert metric(scrape, "k50_redis_up") == 0
            assert metric(scrape, "k50_redis_unreachable_total") >= 1
            assert metric(scrape, "k50_assignments_total", pool="p", outcome="default") >= 1
            server.start()
            assert until(lambda: httpx.get(base + "/healthz").json()["status"] == "ok"), "no recovery"
            stop.set()
            for t in threads:
                t.join(30)
        assert statuses and set(statuses) == {200}
        assert set(numbers) <= set(NUMBERS) | {DEFAULT} and DEFAULT in numbers
        leased = [n for n in numbers if n != DEFAULT]
        assert len(leased) == len(set(leased))  # hold 600 s: no number to a second visitor
        engine.close()
    finally:
        server.stop()


def test_the_in_memory_engine_keeps_its_new_visitors_on_the_loop(engine, clock):
    app = create_app(engine, rate_limits=None, protection=None, now=clock)
    assert app.state.service.assign_async is None


def test_middleware_threads_claim_together_the_lock_free_while_a_claim_is_out(redis_url):
    engine = Engine.from_config(config(), state_url=redis_url + "&timeout=30")
    tracker = Tracker(engine)
    assert tracker.redis_claims
    pools = engine.pools
    gate = Gate(pools, 8, lambda: pools._claims.claims + len(pools._claims._queue))
    got = {}

    def visit(v):
        got[v] = tracker.assign({"visitor_id": v, "url": "https://shop.example.ru/"})

    threads = [threading.Thread(target=visit, args=(f"m{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert gate.saw_them_queue, "the threads' claims did not queue while one was out"
    assert [len(s) for s in gate.sends] == [1, 1] and gate.sends[1] == ["k50_claim_many"]
    numbers = [a.number for a in got.values()]
    assert len(numbers) == 8 and len(set(numbers)) == 8 and set(numbers) <= set(NUMBERS)
    again = {v: tracker.assign({"visitor_id": v}) for v in got}  # returning: same numbers, no claim
    assert all(again[v].number == got[v].number for v in got)
    assert pools.claim_counts()["claims"] == 8
    engine.close()


def test_asgi_middleware_claims_on_the_loop(redis_url):
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse
    from starlette.routing import Route

    from k50core.bindings.middleware.asgi import K50ASGIMiddleware

    engine = Engine.from_config(config(), state_url=redis_url + "&timeout=30")
    pools = engine.pools

    async def page(request):
        return HTMLResponse("<p>+7 495 123-45-67</p>")

    app = K50ASGIMiddleware(Starlette(routes=[Route("/", page)]), engine)
    gate = Gate(pools, 10, lambda: pools._claims.claims + pools._sender._queue.qsize())

    async def run(base):
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            return await asyncio.gather(*(client.get("/", headers={"accept": "text/html"}) for _ in range(10)))

    with serving(app) as base:
        pages = asyncio.run(run(base))
    assert gate.saw_them_queue and 1 <= len(gate.sends) <= 2
    shown = [p.text for p in pages]
    assert len(set(shown)) == 10 and all("+7 495 123-45-67" not in t for t in shown)
    engine.close()


def campaign_config(pools=1):
    """Visits from cpc ads go to pool p (and with two pools, email visits to q); others match no rule."""
    cfg = config()
    cfg["rules"] = [{"name": "ads", "when": {"query.utm_medium": "cpc"}, "pool": "p"}]
    if pools == 2:
        cfg["pools"]["q"] = dict(cfg["pools"]["p"], numbers=[f"+7495200{i:04d}" for i in range(20)])
        cfg["rules"].append({"name": "mail", "when": {"query.utm_medium": "email"}, "pool": "q"})
    return cfg


def test_a_lease_another_host_made_is_looked_for_off_the_loop(redis_server, tmp_path):
    """A visitor this host does not know, headed for no pool: their lease made by another host is
    looked for in Redis (k50_find) on the claims' thread, the looks of concurrent visits together."""
    url = redis_server.url() + "&timeout=30"
    clock = Clock()
    other = Engine.from_config(campaign_config(), state_url=url)  # another host
    theirs = {f"o{i}": other.assign({"visitor_id": f"o{i}", "url": "https://shop.example.ru/?utm_medium=cpc"},
                                    now=clock.t).number for i in range(10)}
    engine = Engine.from_config(campaign_config(), state_url=url, store=str(tmp_path / "k50.db"))
    pools = engine.pools
    visitors = list(theirs) + [f"n{i}" for i in range(20)]  # theirs, and new visitors matching no rule
    asked, seen, gate = [], [], []
    real_find, real_send = pools.find_soon, pools._send

    def find_soon(*args, **kw):
        asked.append(args[0])
        return real_find(*args, **kw)

    def send(calls, client):
        names = [c[0] for c in calls]
        seen.append((threading.current_thread().name, names))
        if "k50_find" in names and not gate:  # the first look: held until every visit asked for one
            gate.append(until(lambda: len(asked) >= len(visitors)))
        return real_send(calls, client)

    pools.find_soon, pools._send = find_soon, send
    with serving(app_of(engine, clock)) as base:
        clock.t += 1
        answers = asyncio.run(visit_all(base, visitors))
    assert all(r.status_code == 200 for r in answers), [r.text for r in answers]
    got = {v: r.json()["number"] for v, r in zip(visitors, answers)}
    assert all(got[v] == theirs[v] for v in theirs)  # kept before any rule
    assert all(got[f"n{i}"] is None for i in range(20))  # no rule: the page keeps its number
    assert gate == [True], "the loop did not serve other visits while a look was out"
    looks = [(name, calls) for name, calls in seen if "k50_find" in calls]
    assert all(name == "k50core-claims" for name, _ in looks)
    assert len(looks) <= 2  # the first look held, all the others in one round trip
    assert sum(calls.count("k50_find") for _, calls in looks) == len(visitors)
    engine.close()
    other.close()


def test_with_two_pools_a_returning_visitor_of_another_host_keeps_their_number(redis_server, tmp_path):
    url = redis_server.url() + "&timeout=30"
    clock = Clock()
    other = Engine.from_config(campaign_config(2), state_url=url)
    mailed = other.assign({"visitor_id": "m", "url": "https://shop.example.ru/?utm_medium=email"}, now=clock.t)
    assert mailed.pool == "q"
    engine = Engine.from_config(campaign_config(2), state_url=url, store=str(tmp_path / "k50.db"))
    pools = engine.pools
    seen = record_sends(pools)
    with serving(app_of(engine, clock)) as base:
        clock.t += 1
        back, new = asyncio.run(visit_all(base, ["m", "fresh"]))
        clock.t += 1
        again = asyncio.run(visit_all(base, ["m"]))[0]
    # the other host's lease, by the look with several pools; then from this host's memory
    assert back.json()["number"] == again.json()["number"] == mailed.number
    assert new.json()["number"] is None
    assert all(name == "k50core-claims" for name, calls in seen if "k50_find" in calls)
    engine.close()
    other.close()
