"""The report counters as written (k50core.report.visits / storage / sessions), against a plain
recount from the sessions: every group and single dimension by hour and day, the ALL counter's
combinations bounded as a walk of one combination at a time would bound them, and the sessions
decided across two processes. A real SQLite file and a real PostgreSQL database; the engine's own
path is in test_reports.py."""
import json
from collections import Counter

import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st

from k50core.report import sessions, storage
from k50core.report.dimensions import ALL, COMBO_ORDER, GROUPS, OTHER, SINGLE, from_summary, landing_parts, visit_combo
from k50core.report.visits import DAILY, GAP_MS, VisitCounter, _rows
from k50core.store import open_store

T0 = 1_764_547_200.0  # 2025-12-01 00:00 UTC
_VALUE = st.one_of(st.none(), st.sampled_from(["a", "b", OTHER, "é", '"q"']))
_COMBO = st.tuples(*[_VALUE] * len(COMBO_ORDER))
# sessions: (hours after T0, combo); hours over two days, in any order
_KEYS = st.lists(st.tuples(st.sampled_from([0, 1, 5, 23, 24, 30]), _COMBO), max_size=40)


def _recount(keys):
    """{(hour, kind, dims JSON): visits} of every counter but ALL, one session at a time."""
    out: Counter = Counter()
    for hour, combo in keys:
        values = dict(zip(COMBO_ORDER, combo))
        dims = {}
        for name, members in GROUPS.items():
            dims[name] = json.dumps({m: values[m] for m in sorted(members) if values[m] is not None},
                                    ensure_ascii=False, separators=(",", ":"))
        for name in SINGLE:
            if values[name] is not None:
                dims[name] = json.dumps({name: values[name]}, ensure_ascii=False, separators=(",", ":"))
        for kind, text in dims.items():
            out[(hour, kind, text)] += 1
            out[(hour - hour % 86400, kind + DAILY, text)] += 1
    return out


def _reduced(values, keep):
    return values[:keep] + tuple(None if v is None else OTHER for v in values[keep:])


def _walk(found, known, limit):
    """The ALL counter's bound, one combination at a time (most sessions first, ties in the
    order they came): an exact place while there is room, else the groups' values kept, else none."""
    grouped = sum(len(m) for m in GROUPS.values())
    reduced = sum(1 for d in known if OTHER in d)
    room = [limit - (len(known) - reduced), limit - reduced]
    kept: Counter = Counter()
    for values, n in sorted(found.items(), key=lambda kv: -kv[1]):  # (stable: ties keep their order)
        if values not in known:
            if OTHER not in values and room[0] > 0:
                room[0] -= 1
            else:
                values = _reduced(values, grouped)
                if values not in known:
                    if room[1] > 0:
                        room[1] -= 1
                    else:
                        values = _reduced(values, 0)
            known.add(values)
        kept[values] += n
    return kept


def _combos_after(writes, bound):
    """{(hour, kind, combo): visits} the ALL counter holds after ``writes`` (lists of sessions)."""
    table: Counter = Counter()
    for keys in writes:
        found: dict = {}
        for hour, combo in keys:  # each (hour, kind) in the order its sessions came
            for at, kind in ((hour, ALL), (hour - hour % 86400, ALL + DAILY)):
                found.setdefault((at, kind), Counter())[combo] += 1
        for (at, kind), combos in found.items():
            known = {c for (h, k, c) in table if (h, k) == (at, kind)}
            for combo, n in _walk(combos, known, bound).items():
                table[(at, kind, combo)] += n
    return table


def _stored(store):
    cur = store.conn.cursor()
    cur.execute("SELECT hour, kind, dims, visits FROM visit_counts")
    counts = Counter()
    for hour, kind, dims, n in cur.fetchall():
        counts[(hour, kind, json.dumps(json.loads(dims), ensure_ascii=False, separators=(",", ":"),
                                       sort_keys=True))] += n
    cur.execute(f"SELECT hour, kind, dims, {storage._COMBO_COLUMNS}, visits FROM visit_combos")
    combos = Counter()
    for row in cur.fetchall():
        combo = tuple(row[3:-1])
        assert json.loads(row[2]) == {k: v for k, v in zip(COMBO_ORDER, combo) if v is not None}
        combos[(row[0], row[1], combo)] += row[-1]
    return counts, combos


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_store(request, tmp_path):
    """A store with no counters, anew at each call: a SQLite file, or the tables of one real
    PostgreSQL database emptied."""
    opened = []
    dsn = request.getfixturevalue("postgres").database() if request.param == "postgresql" else None

    def make():
        while opened:  # (one open at a time: the example before is done with its store)
            opened.pop().close()
        store = open_store(dsn or str(tmp_path / "k.db"))
        with store.transaction():
            for table in ("visit_counts", "visit_combos", "visit_sessions"):
                store.conn.cursor().execute(f"DELETE FROM {table}")
        opened.append(store)
        return store
    yield make
    while opened:
        opened.pop().close()


def _at(keys):
    return [(T0 + h * 3600.0, combo) for h, combo in keys]


@settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_KEYS, min_size=1, max_size=3), st.integers(0, 4), st.booleans())
def test_counters_written_equal_a_recount_of_the_sessions(empty_store, writes, bound, as_rows):
    """Writes of sessions over hours and days (as keys, or as rows made by ``_rows``): every
    counter row equals a recount, the ALL counter equals the bound walked one combination at a
    time, and its totals are exact."""
    writes = [_at(w) for w in writes]
    store = empty_store()
    old = dict(storage.ALL_EXACT)
    storage.ALL_EXACT.update({ALL: bound, ALL + DAILY: bound})
    try:
        for keys in writes:
            if as_rows:
                storage.add_visit_counts(store, _rows(keys, []))
            else:
                storage.add_visit_counts(store, [], keys)
    finally:
        storage.ALL_EXACT.update(old)
    counts, combos = _stored(store)
    assert counts == _recount([k for w in writes for k in w])
    assert combos == _combos_after(writes, bound)
    sessions_in = sum(len(w) for w in writes)
    for kind in (ALL, ALL + DAILY):
        assert sum(n for (_, k, _), n in combos.items() if k == kind) == sessions_in


@settings(deadline=None, max_examples=40)
@given(_KEYS, st.lists(st.tuples(st.sampled_from([0.0, 3600.0]), st.sampled_from(["traffic", "number", ALL]),
                                 st.integers(1, 3)), max_size=5))
def test_rows_given_back_add_to_the_next_take(keys, given):
    """A counter's take() after a failed write: the rows given back plus the new sessions'."""
    keys = _at(keys)
    counter = VisitCounter()
    returned = [(hour, kind, ("x",) * len(COMBO_ORDER) if kind == ALL else '{"k":"v"}', n)
                for hour, kind, n in given]
    counter.give_back(returned)
    counter._counts.extend(keys)
    got = Counter()
    for hour, kind, dims, n in counter.take():
        got[(hour, kind, dims)] += n
    want = Counter()
    for hour, kind, dims, n in returned + _rows(keys, []):
        want[(hour, kind, dims)] += n
    assert got == want


_TEXT = st.one_of(st.none(), st.just(""), st.text(alphabet="ab/.é", max_size=6))
_ODD = st.one_of(_TEXT, st.integers(-2, 2), st.just({}), st.just([]))


def _old_combo(attrs, rule, pool, number):
    """The combo as plain code reads it: one dimension at a time."""
    def part(name):
        v = attrs.get(name)
        return v if type(v) is dict else {}

    def clean(v):
        return None if v is None or v == "" or v == {} else v if isinstance(v, str) else str(v)

    def text(v):
        return v if type(v) is str and v else None

    q, g, landing = part("query"), part("geo"), part("landing")
    host, path = landing_parts((landing.get("host") or "") + (landing.get("path") or ""))
    return (clean(attrs.get("source")), clean(attrs.get("traffic_type")), text(q.get("utm_source")),
            text(q.get("utm_medium")), text(q.get("utm_campaign")), rule, pool, clean(g.get("region")),
            clean(part("device").get("type")), path, host, clean(part("referrer").get("host")),
            clean(g.get("city")), clean(g.get("country")), text(q.get("utm_content")), text(q.get("utm_term")),
            number)


_ATTRS = st.fixed_dictionaries({}, optional={
    "source": _ODD, "traffic_type": _ODD,
    "query": st.one_of(st.none(), st.dictionaries(st.sampled_from(["utm_source", "utm_medium", "utm_campaign",
                                                                   "utm_content", "utm_term", "x"]), _ODD)),
    "landing": st.one_of(st.just("x"), st.fixed_dictionaries({}, optional={"host": _TEXT, "path": _TEXT})),
    "geo": st.dictionaries(st.sampled_from(["region", "city", "country"]), _ODD),
    "device": st.one_of(st.none(), st.dictionaries(st.just("type"), _ODD)),
    "referrer": st.dictionaries(st.just("host"), _ODD),
})


@settings(deadline=None, max_examples=300)
@given(_ATTRS, _TEXT, _TEXT, _TEXT)
def test_a_visits_combo_reads_each_dimension_as_plain_code_and_the_stored_summary_do(attrs, rule, pool, number):
    from k50core.attribution import visit_summary

    combo = visit_combo(attrs, rule, pool, number)
    assert combo == _old_combo(attrs, rule, pool, number)
    text_only = all(type(v) is str or v is None for part in attrs.values() if type(part) is dict
                    for v in part.values()) and all(type(attrs.get(k)) in (str, type(None))
                                                     for k in ("source", "traffic_type"))
    if text_only:  # (what enrichment makes): the report of a call reads the same from its summary
        summary = visit_summary(attrs)
        for name, value in zip(COMBO_ORDER, combo):
            if name not in ("rule", "pool", "number"):
                assert from_summary(summary, name) == value, name


views = st.lists(st.tuples(st.sampled_from(["v1", "v2", "v3"]), st.integers(0, 5 * GAP_MS), st.booleans(),
                           st.sampled_from(["yandex", "google", None]), st.sampled_from(["/a", "/b"])),
                 max_size=30)


@settings(deadline=None, max_examples=40,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(views)
def test_sessions_decided_across_two_processes_are_counted_with_their_first_view(empty_store, views):
    """Views split between two processes' counters, each writing after each view: every counter
    row equals a recount of the sessions (a visitor's first view, or the first after the gap),
    each with the dimensions of its first view."""
    views = sorted(views, key=lambda v: v[1])
    last, started = {}, []
    counters = [VisitCounter(shared=True), VisitCounter(shared=True)]
    store = empty_store()
    for who, at, second, source, path in views:
        attrs = {"source": source, "landing": {"host": "shop.example", "path": path}}
        if who not in last or at - last[who] >= GAP_MS:
            started.append((float(at // 3_600_000 * 3600), visit_combo(attrs, "r", "p", None)))
        last[who] = at
        c = counters[second]
        c.page_view(who, at, attrs, "r", "p", None)
        starts, touched = c.take_pending()
        sessions.write(store, starts, touched, c.take(at), GAP_MS, None, at)
    counts, combos = _stored(store)
    assert counts == _recount(started)
    assert combos == _combos_after([started], storage.ALL_EXACT[ALL])  # (within the bound: each as it is)


class _ScanAll(VisitCounter):
    """The counter forgetting as a scan of every visitor remembered would."""

    def _forget(self, cut):
        last = self._last
        for visitor in [v for v, t in list(last.items()) if t < cut]:
            seen = self._seen(visitor)
            if seen is None or seen < cut:
                last.pop(visitor, None)
                self._lease.pop(visitor, None)
            elif self.shared and seen > last[visitor]:
                self._touched[visitor] = seen


_TIME = st.builds(lambda k, d: k * GAP_MS // 2 + d, st.integers(0, 8), st.integers(-1, 1))  # near the gap's multiples
_STEPS = st.lists(st.one_of(
    st.tuples(st.just("view"), st.sampled_from(["v1", "v2", "v3"]), _TIME, st.sampled_from([None, "1.1", "2.1"])),
    st.tuples(st.just("take"), _TIME),
    st.tuples(st.just("activity"), st.sampled_from(["1.1", "2.1"]), st.sampled_from(["v1", "v2"]), _TIME)),
    max_size=40)


_KEPT_BY_ITS_LEASE = [("view", "v1", 0, "1.1"), ("activity", "1.1", "v1", GAP_MS), ("take", GAP_MS + 1),
                      ("activity", "1.1", "v1", GAP_MS + 5), ("take", GAP_MS + 2), ("take", 3 * GAP_MS)]


@settings(deadline=None, max_examples=300)
@given(_STEPS, st.booleans())
@example(_KEPT_BY_ITS_LEASE, True)
@example(_KEPT_BY_ITS_LEASE, False)
@example([("view", "v1", 0, "1.1"), ("activity", "1.1", "v1", GAP_MS), ("take", GAP_MS + 1), ("take", GAP_MS - 1),
          ("take", 3 * GAP_MS)], True)  # a take of an earlier clock in between
def test_forgetting_by_time_order_equals_a_scan_of_every_visitor(steps, shared):
    """Views (in any clock order), takes and leases' activity: the counter that checks only the
    visitors due by time answers every view, remembers and reports exactly as a scan of all."""
    activity = {}
    counters = [VisitCounter(activity=lambda lease, v: activity.get((lease, v)), shared=shared),
                _ScanAll(activity=lambda lease, v: activity.get((lease, v)), shared=shared)]
    for step in steps:
        if step[0] == "view":
            _, who, at, lease = step
            answers = {c.page_view(who, at, {}, None, None, None, lease) for c in counters}
            assert len(answers) == 1
        elif step[0] == "take":
            for c in counters:
                c.take(step[1])
            mine, scan = counters
            assert mine._last == scan._last and mine._lease == scan._lease
            assert mine.take_pending()[1] == scan.take_pending()[1]
        else:
            activity[(step[1], step[2])] = step[3]
    mine, scan = (c.take_pending() for c in counters)
    assert mine == scan and counters[0].sessions == counters[1].sessions
