"""Reports: visit sessions counted in memory, Engine.report and Engine.pool_usage over both stores
(a SQLite file, a real PostgreSQL) and both builds."""
import math

import pytest
from hypothesis import given, settings, strategies as st

from k50core import Engine
from k50core.pricing import load_plans
from k50core.report import ReportError, billed_minutes
from k50core.report.visits import GAP_MS, VisitCounter

T0 = 1_764_547_200.0  # 2025-12-01 00:00 UTC
UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
CONFIG = {
    "pools": {
        "ads": {"type": "dynamic", "numbers": ["+74950000001", "+74950000002", "+74950000003"],
                "hold_seconds": 900, "cooldown_seconds": 300, "on_exhausted": "share"},
        "site": {"type": "static", "numbers": ["+74950000100"]},
    },
    "rules": [
        {"name": "paid", "when": {"query.utm_medium": "cpc"}, "pool": "ads"},
        {"name": "rest", "pool": "site"},
    ],
}


def visit(visitor, campaign=None, path="/", source="yandex"):
    query = f"?utm_source={source}&utm_medium=cpc&utm_campaign={campaign}" if campaign else ""
    return {"url": f"https://shop.example{path}{query}", "visitor_id": visitor, "ip": "5.6.7.8", "user_agent": UA}


@pytest.fixture
def engine(build, store_url):
    e = Engine.from_config(CONFIG, implementation=build, store=store_url)
    yield e
    e.close()


# -- sessions ------------------------------------------------------------------------------------------

@settings(deadline=None, max_examples=60)
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c", None]), st.integers(0, 4 * GAP_MS)), max_size=40))
def test_a_session_is_a_first_view_or_the_first_after_the_gap(views):
    """Against a plain model: per visitor, a view counts when none came in the gap before it."""
    views = sorted(views, key=lambda v: v[1])
    counter, last, expected = VisitCounter(), {}, 0
    for who, at in views:
        if who is None or who not in last or at - last[who] >= GAP_MS:
            expected += 1
        if who is not None:
            last[who] = at
        counter.page_view(who, at, {}, None, None, None)
    rows = counter.take()
    assert sum(n for _, kind, _, n in rows if kind == "traffic") == expected == counter.sessions
    assert sum(n for _, kind, _, n in rows if kind == "traffic/day") == expected  # the daily roll-up


def test_activity_the_core_saw_keeps_a_session_going():
    """A lease's last activity (heartbeats the core answered) counts as the visitor's, while the
    slot still holds that lease for that visitor."""
    activity = {("1.1", "v"): GAP_MS - 1000}
    counter = VisitCounter(activity=lambda lease, visitor: activity.get((lease, visitor)))
    assert counter.page_view("v", 0, {}, None, None, None, lease="1.1")
    assert not counter.page_view("v", GAP_MS + 1000, {}, None, None, None)   # 2 s after its last heartbeat
    assert counter.page_view("v", 3 * GAP_MS, {}, None, None, None)
    assert counter.page_view("w", 0, {}, None, None, None, lease="2.1")       # a lease someone else took over
    assert counter.page_view("w", GAP_MS + 1000, {}, None, None, None)


def test_counts_a_failed_write_took_are_counted_again():
    counter = VisitCounter()
    counter.page_view("v", 0, {"source": "google"}, "r", "p", "+74950000001")
    rows = counter.take()
    assert counter.take() == []
    counter.give_back(rows)
    assert sorted(counter.take()) == sorted(rows)


def test_visits_are_counted_once_per_session_on_both_builds_and_stores(engine):
    e = engine
    e.assign(visit("v1", "spring"), now=T0)               # new: a lease
    for k in range(1, 20):                                 # returning with a live lease: the core answers
        e.assign(visit("v1", "spring"), now=T0 + k * 30)
    e.assign(visit("s1"), now=T0)                          # static number: Python every time
    e.assign(visit("s1"), now=T0 + 600)                    # ... within the gap: the same session
    e.assign(visit("s1"), now=T0 + 600 + 1801)             # ... after 30 minutes away: a new one
    e.assign(visit("v1", "spring"), now=T0 + 7200)         # lease long gone, away > 30 min: new session
    rows = e.report("pool,rule")
    visits = {(r["pool"], r["rule"]): r["visits"] for r in rows}
    assert visits == {("ads", "paid"): 2, ("site", "rest"): 2}


def test_a_returning_visitor_kept_alive_by_heartbeats_stays_in_one_session(engine):
    e = engine
    got = e.assign(visit("v1", "spring"), now=T0)
    for k in range(1, 100):                               # on the page for 50 minutes
        assert e.heartbeat(got.token, now=T0 + k * 30)
    e.checkpoint()                                        # the renewals reach the lease log
    e.assign(visit("v1", "spring"), now=T0 + 99 * 30 + 900 + 600)  # lease ended, but 25 min away only
    assert [r["visits"] for r in e.report("pool")] == [1]


# -- the report ----------------------------------------------------------------------------------------

def _scenario(e):
    """Two campaigns; calls matched, a repeat caller, an unmatched call; deals; visits without calls."""
    a1 = e.assign(visit("a1", "spring", "/sofas"), now=T0)
    a2 = e.assign(visit("a2", "spring", "/sofas"), now=T0 + 1)
    b1 = e.assign(visit("b1", "autumn", "/beds"), now=T0 + 2)
    e.assign(visit("s1"), now=T0 + 3)
    e.assign(visit("s2"), now=T0 + 4)
    calls = [
        {"call_id": "c1", "number": a1.number, "caller": "+79991110001", "started_at": T0 + 60,
         "duration_seconds": 61, "answered": True},                 # 2 billed minutes
        {"call_id": "c2", "number": a2.number, "caller": "+79991110002", "started_at": T0 + 70,
         "duration_seconds": 0, "answered": False},
        {"call_id": "c3", "number": a1.number, "caller": "+79991110001", "started_at": T0 + 120,
         "duration_seconds": 120, "answered": True},                # a repeat: 2 minutes
        {"call_id": "c4", "number": b1.number, "caller": "+79991110003", "started_at": T0 + 80,
         "duration_seconds": 30, "answered": True},                 # 1 minute
        {"call_id": "c5", "number": "+74990001122", "caller": "+79991110004", "started_at": T0 + 90,
         "duration_seconds": 300, "answered": True},                # to no number of ours: unmatched, 5 min
    ]
    for c in calls:
        e.attribute(c, now=T0 + 200)
    result = e.import_deals([
        {"deal_id": "d1", "phone": "8 (999) 111-00-01", "created_at": T0 + 3600, "amount": 1500, "status": "won"},
        {"deal_id": "d2", "phone": "+79991110003", "created_at": T0 + 3600, "amount": 700, "status": "lost"},
        {"deal_id": "d3", "phone": "+79991110004", "created_at": T0 + 3600, "amount": "250.50", "status": "won"},
        {"deal_id": "d4", "phone": "+79990000000", "created_at": T0 + 3600, "amount": 99, "status": "won"},
    ], now=T0 + 4000)
    assert sorted(result.imported) == ["d1", "d2", "d3", "d4"] and result.unattributed == ["d4"]
    return a1, a2, b1


def test_report_by_source_and_campaign(engine):
    _scenario(engine)
    rows = engine.report("source,query.utm_campaign")
    by = {(r["source"], r["query.utm_campaign"], r["unmatched"]): r for r in rows}
    spring = by[("yandex", "spring", False)]
    assert (spring["visits"], spring["calls"], spring["answered"], spring["first_time_callers"],
            spring["minutes"], spring["deals"], spring["won"], spring["revenue"]) == (2, 3, 2, 2, 4, 1, 1, 1500.0)
    autumn = by[("yandex", "autumn", False)]
    assert (autumn["visits"], autumn["calls"], autumn["minutes"], autumn["deals"], autumn["won"]) == (1, 1, 1, 1, 0)
    unmatched = by[(None, None, True)]
    assert (unmatched["calls"], unmatched["minutes"], unmatched["deals"], unmatched["won"],
            unmatched["revenue"]) == (1, 5, 2, 2, round(250.5 + 99, 2))
    assert unmatched["visits"] == 0
    static = [r for r in rows if not r["unmatched"] and r["query.utm_campaign"] is None]
    assert sum(r["visits"] for r in static) == 2 and sum(r["calls"] for r in static) == 0
    assert rows[0] is not None and rows[0]["calls"] == max(r["calls"] for r in rows)  # most calls first
    assert set(rows[0]) == {"source", "query.utm_campaign", "unmatched", "visits", "calls", "answered",
                            "first_time_callers", "minutes", "deals", "won", "revenue", "cost"}


def test_report_by_engine_dimensions_times_and_status(engine):
    a1, a2, b1 = _scenario(engine)
    by_number = {r["number"]: r for r in engine.report("number") if not r["unmatched"]}
    assert by_number[a1.number]["calls"] == 2 and by_number[a1.number]["visits"] == 1
    assert by_number["+74950000100"]["visits"] == 2
    by_status = {r["status"]: r["calls"] for r in engine.report("status")}
    assert by_status == {"matched": 4, None: 1}
    days = engine.report("day")
    assert {r["day"] for r in days} == {"2025-12-01"} and sum(r["calls"] for r in days) == 5
    hours = engine.report("hour,landing.path")
    assert {r["hour"] for r in hours if r["calls"] or r["visits"]} == {"2025-12-01T00:00Z"}
    assert [(r["hour"], r["deals"]) for r in hours if r["hour"] != "2025-12-01T00:00Z"] == \
        [("2025-12-01T01:00Z", 1)]  # the unattributed deal, at its own time
    sofas = [r for r in hours if r["landing.path"] == "/sofas"]
    assert sofas[0]["visits"] == 2 and sofas[0]["calls"] == 3


def test_report_selects_by_the_time_of_calls_and_visits(engine):
    _scenario(engine)
    later = engine.report("source", since=T0 + 3600)
    assert sum(r["calls"] for r in later) == 0 and sum(r["visits"] or 0 for r in later) == 0
    # an unattributed deal is selected by its own time: it was created in the later hour
    assert sum(r["deals"] for r in later) == 1
    first = engine.report("source", since=T0, until=T0 + 75)
    assert sum(r["calls"] for r in first) == 2  # c1 at +60, c2 at +70


def test_every_combination_of_visit_dimensions_has_visits(engine):
    """Across counters (number with campaign, landing page with source, region with campaign) the
    ALL counter answers; status is a call's, so a report by it has no visits."""
    _scenario(engine)
    rows = engine.report("number,query.utm_campaign")
    assert sum(r["calls"] for r in rows) == 5 and sum(r["visits"] for r in rows) == 5
    by_campaign = {}
    for r in rows:
        by_campaign[r["query.utm_campaign"]] = by_campaign.get(r["query.utm_campaign"], 0) + r["visits"]
    assert by_campaign == {"spring": 2, "autumn": 1, None: 2}
    paths = {(r["source"], r["landing.path"]): r["visits"] for r in engine.report("source,landing.path,day")
             if r["visits"]}
    assert paths == {("yandex", "/sofas"): 2, ("yandex", "/beds"): 1, (None, "/"): 2}
    assert all(r["visits"] is None for r in engine.report("status,query.utm_campaign"))


def test_the_all_counter_is_bounded_and_keeps_the_totals(engine, monkeypatch):
    """Past its bound a new combination keeps the groups' dimensions and reads "(other)" for the
    rest, then "(other)" for all: the totals stay exact, the rows a report reads stay few."""
    from k50core.report import storage

    monkeypatch.setattr(storage, "ALL_EXACT", {"all": 2, "all/day": 2})
    for k in range(6):
        engine.assign(visit(f"p{k}", "spring", f"/page{k}"), now=T0 + k)
    engine.assign(visit("q1", "autumn", "/x"), now=T0 + 10)
    engine.assign(visit("q2", "winter", "/y", source="google"), now=T0 + 11)
    engine.assign(visit("q3", "summer", "/z", source="vk"), now=T0 + 12)
    rows = engine.report("query.utm_campaign,landing.path")
    assert sum(r["visits"] for r in rows) == 9
    got = {(r["query.utm_campaign"], r["landing.path"]): r["visits"] for r in rows}
    assert got[("spring", "/page0")] == 1 and got[("spring", "(other)")] == 4    # the groups' values kept
    assert got[("(other)", "(other)")] == 2                                     # the second bound passed
    cur = engine.store.conn.cursor()
    cur.execute("SELECT kind, count(*) FROM visit_combos GROUP BY kind")
    assert dict(cur.fetchall()) == {"all": 5, "all/day": 5}


def test_the_cost_is_the_plans_charge_shared_by_visits_and_minutes(engine):
    _scenario(engine)
    plans = load_plans()
    rows = engine.report("source,query.utm_campaign", since=T0, until=T0 + 86400 * 30.4375, plans=plans)
    p = plans.provider
    numbers = 4 * p.number_price("495")                     # all four numbers have code 495
    fixed = float(max(numbers, p.minimum_rub))              # one month: the whole month's charge
    assert math.isclose(sum(r["cost"] for r in rows), fixed, abs_tol=0.05)  # within the minutes package
    visits = sum(r["visits"] for r in rows)
    for r in rows:
        assert math.isclose(r["cost"], fixed * r["visits"] / visits, abs_tol=0.01)


def test_bad_report_arguments_are_named(engine):
    with pytest.raises(ReportError, match="unknown dimension 'query.gclid'"):
        engine.report("query.gclid")
    with pytest.raises(ReportError, match="by: expected one or more"):
        engine.report(" , ")
    with pytest.raises(ReportError, match="until"):
        engine.report("source", since=T0, until=T0 - 1)
    with pytest.raises(ReportError, match="pool: unknown pool"):
        engine.pool_usage("nope", T0, T0 + 3600, 600)
    with pytest.raises(ReportError, match="step"):
        engine.pool_usage("ads", T0, T0 + 86400 * 365, 60)


def test_billed_minutes_round_each_answered_call_up():
    assert [billed_minutes(d, True) for d in (0, 1, 60, 60.0001, 120, 121)] == [0, 1, 1, 2, 2, 3]
    assert billed_minutes(300, False) == 0


# -- pool usage ------------------------------------------------------------------------------------------

def test_pool_usage_has_peaks_and_exhaustion_per_step(engine):
    e = engine
    for i in range(3):                                     # the three numbers leased in the first hour
        e.assign(visit(f"v{i}", "spring"), now=T0 + i)
    e.assign(visit("v3", "spring"), now=T0 + 10)           # exhausted: shares
    e.assign(visit("v4", "spring"), now=T0 + 11)
    e.write_reports()
    e.assign(visit("late", "spring"), now=T0 + 5400)       # an hour and a half later: all free again
    e.write_reports()
    usage = e.pool_usage("ads", T0, T0 + 7200, 3600)
    first, second = usage["steps"]
    assert (first["numbers"], first["peak_leased"], first["exhausted_shared"], first["exhausted_default"]) == \
        (3, 3, 2, 0)
    assert (second["peak_leased"], second["exhausted_shared"]) == (1, 0)
    assert usage["numbers"] == 3 and usage["recommended_numbers"] is not None and usage["visits_per_day"] > 0


def test_calls_stored_without_a_report_row_are_added_by_the_next_report(engine):
    """A store written by an older k50core (or before its report table): the report catches up."""
    _scenario(engine)
    before = engine.report("source,status")
    with engine.store.transaction():
        engine.store.conn.cursor().execute("DELETE FROM report_calls")
    assert engine.report("source,status") == before


_VALUE = st.one_of(st.none(), st.sampled_from(["a", "b", "(other)", "é", '"q"']))


@settings(deadline=None, max_examples=40)
@given(st.lists(st.tuples(st.tuples(*[_VALUE] * 16), _VALUE, st.integers(1, 3)), min_size=1, max_size=30),
       st.integers(0, 4))
def test_combinations_keep_their_key_and_columns_equal_and_the_totals_exact(tmp_path_factory, sessions, bound):
    """The ALL counter's rows as written: each key (dims JSON) says exactly what its columns say,
    one row per key, and the visits add up to the sessions counted, whatever the bound folded."""
    import json

    from k50core.report import storage
    from k50core.report.visits import _rows
    from k50core.store import open_store

    store = open_store(str(tmp_path_factory.mktemp("combos") / "k.db"))
    old = dict(storage.ALL_EXACT)
    storage.ALL_EXACT.update({"all": bound, "all/day": bound})
    try:
        keys = [(3600.0, values + (number,)) for values, number, n in sessions for _ in range(n)]
        storage.add_visit_counts(store, _rows(keys, []))
        storage.add_visit_counts(store, [], keys)  # a second write adds to the same rows
    finally:
        storage.ALL_EXACT.update(old)
    cur = store.conn.cursor()
    cur.execute(f"SELECT kind, dims, {storage._COMBO_COLUMNS}, visits FROM visit_combos")
    rows = cur.fetchall()
    total = 2 * sum(n for _, _, n in sessions)
    for kind in ("all", "all/day"):
        mine = [r for r in rows if r[0] == kind]
        assert sum(r[-1] for r in mine) == total
        assert len({r[1] for r in mine}) == len(mine)
        for r in mine:
            columns = dict(zip(storage.COMBO_DIMENSIONS, r[2:-1]))
            assert json.loads(r[1]) == {k: v for k, v in columns.items() if v is not None}
    store.close()
