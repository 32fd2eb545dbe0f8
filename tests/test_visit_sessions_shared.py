"""Visit sessions decided across processes sharing one store (k50core.report.sessions): two Engine
instances over one SQLite file (and one PostgreSQL database) stand for two service workers; a
property test over random views split between two counters, against the sessions of all views
together; and two real `k50core serve` workers."""
import os
import tempfile
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from k50core import Engine
from k50core.report import sessions
from k50core.report.visits import GAP_MS, VisitCounter
from k50core.store import open_store

T0 = 1_764_547_200.0  # 2025-12-01 00:00 UTC
UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
CONFIG = {"pools": {"ads": {"type": "dynamic", "numbers": ["+74950000001", "+74950000002", "+74950000003"],
                            "hold_seconds": 600, "cooldown_seconds": 60},
                    "site": {"type": "static", "numbers": ["+74950000100"]}},
          "rules": [{"name": "paid", "when": {"query.utm_medium": "cpc"}, "pool": "ads"},
                    {"name": "rest", "pool": "site"}]}
GAP = GAP_MS / 1000


def visit(visitor, paid=False):
    query = "?utm_source=yandex&utm_medium=cpc&utm_campaign=spring" if paid else ""
    return {"url": f"https://shop.example/{query}", "visitor_id": visitor, "ip": "5.6.7.8", "user_agent": UA}


@pytest.fixture
def workers(build, store_url):
    pair = [Engine.from_config(CONFIG, implementation=build, store=store_url) for _ in range(2)]
    yield pair
    for e in pair:
        e.close()


def visits_by_pool(e):
    return {r["pool"]: r["visits"] for r in e.report("pool")}


def test_a_visitor_seen_by_two_workers_within_the_gap_is_one_session(workers):
    a, b = workers
    a.assign(visit("s1"), now=T0)                      # a static number: every view is Python's
    a.write_reports()
    b.assign(visit("s1"), now=T0 + 600)                # the other worker, 10 minutes on: the same session
    b.write_reports()
    a.assign(visit("s1"), now=T0 + 1500)               # back on the first: it goes on (and a says so)
    a.write_reports()
    b.assign(visit("s1"), now=T0 + 1500 + GAP - 100)   # b saw nothing for longer than the gap, a did
    b.write_reports()
    b.assign(visit("s1"), now=T0 + 1500 + 2 * GAP)     # away longer than the gap from every view: new
    b.write_reports()
    assert visits_by_pool(a) == visits_by_pool(b) == {"site": 2}


def test_the_later_write_of_one_session_is_not_counted_again(workers):
    a, b = workers
    a.assign(visit("s2"), now=T0)
    b.assign(visit("s2"), now=T0 + 60)
    b.write_reports()                                  # the later view is written first
    a.write_reports()
    a.assign(visit("s3"), now=T0 + 100)                # and another visitor, on one worker only
    b.assign(visit("s4"), now=T0 + 100)
    b.write_reports()
    assert visits_by_pool(a) == {"site": 3}


def test_a_lease_started_on_one_worker_keeps_the_session_on_the_other(build, tmp_path):
    """Heartbeats the core answered on worker a (its lease's activity, in the shared pool segment)
    keep the visitor's session going when the lease has ended and the visitor comes back on b."""
    path = str(tmp_path / "k50.db")
    a, b = (Engine.from_config(CONFIG, implementation=build, store=path) for _ in range(2))
    try:
        got = a.assign(visit("v1", paid=True), now=T0)
        assert got.token is not None
        a.write_reports()
        for k in range(1, 50):                         # 25 minutes on the page
            assert a.heartbeat(got.token, now=T0 + k * 30)
        b.assign(visit("v1", paid=True), now=T0 + 49 * 30 + 300)   # 5 minutes later, on b, lease alive
        b.assign(visit("v1", paid=True), now=T0 + 49 * 30 + 900)   # ... and after it ended (hold 10 min)
        b.write_reports()
        assert visits_by_pool(b) == {"ads": 1}
    finally:
        a.close()
        b.close()


views = st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(0, 6 * GAP_MS), st.booleans()),
                 max_size=40)


@settings(deadline=None, max_examples=40, suppress_health_check=[HealthCheck.too_slow])
@given(views)
def test_shared_sessions_equal_the_sessions_of_all_views_together(views):
    """Views of a few visitors split at random between two processes' counters, each writing after
    each view (as checkpoints do, seconds apart): the sessions counted equal those of one counter
    that saw every view."""
    views = sorted(views, key=lambda v: v[1])
    expected, last = 0, {}
    for who, at, _ in views:
        if who not in last or at - last[who] >= GAP_MS:
            expected += 1
        last[who] = at
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(os.path.join(tmp, "k50.db"))
        try:
            counters = [VisitCounter(shared=True), VisitCounter(shared=True)]
            for who, at, second in views:
                c = counters[second]
                c.page_view(who, at, {"source": "yandex"}, "r", "p", None)
                starts, touched = c.take_pending()
                sessions.write(store, starts, touched, c.take(at), GAP_MS, None, at)
            cur = store.conn.cursor()
            cur.execute("SELECT coalesce(sum(visits), 0) FROM visit_counts WHERE kind = 'traffic'")
            assert cur.fetchone()[0] == expected
            cur.execute("SELECT coalesce(sum(visits), 0) FROM visit_counts WHERE kind = 'traffic/day'")
            assert cur.fetchone()[0] == expected
        finally:
            store.close()


def test_a_failed_write_decides_the_starts_again(tmp_path):
    store = open_store(str(tmp_path / "k50.db"))
    counter = VisitCounter(shared=True)
    counter.page_view("v", 0, {}, None, None, None)
    starts, touched = counter.take_pending()
    assert [s[0] for s in starts] == ["v"] and counter.take(0) == []   # nothing counted before the decision
    counter.give_back_pending(starts, touched)
    starts, touched = counter.take_pending()
    assert sessions.write(store, starts, touched, counter.take(0), GAP_MS, None, 0) == 1
    counter.page_view("v", 1000, {}, None, None, None)              # the same session: touched, not started
    starts, touched = counter.take_pending()
    assert starts == [] and touched == {"v": 1000}
    store.close()


def test_two_serve_workers_count_a_visitor_once(tmp_path):
    """`k50core serve --workers 2` over one SQLite file, writing counts every second: a visitor's
    views over fresh connections (the workers take turns accepting), half a second apart, reach
    both workers and are one visit session in the report (each worker alone would count one)."""
    import time

    import httpx
    import yaml
    from test_cli import start_serve_cli, stop
    from test_service import AUTH, KEY, worker_pid

    from k50core.cli import demo_config_path

    raw = yaml.safe_load(demo_config_path().read_text())
    raw["store"] = {"checkpoint_seconds": 1}
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(raw))
    proc, base = start_serve_cli("--config", str(path), "--workers", "2", "--store", str(tmp_path / "k50.db"),
                                 "--api-key", KEY, "--no-rate-limits")
    try:
        pids: Counter = Counter()
        for _ in range(16):
            with httpx.Client() as c:  # a connection each, so both workers answer some
                got = c.post(f"{base}/v1/visit", json={"url": "https://shop.example/", "visitor_id": "w-1"},
                             headers={"User-Agent": UA})
                assert got.status_code == 200, got.text
                pids[worker_pid(c, base)] += 1
            time.sleep(0.5)
        report = httpx.get(f"{base}/v1/reports?by=rule", headers=AUTH).json()["rows"]
    finally:
        stop(proc)
    assert len(pids) == 2, pids
    assert [r["visits"] for r in report if r["rule"] is None] == [1], (report, pids)
