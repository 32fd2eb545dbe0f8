"""Storage parity: the same behaviour from SQLite and PostgreSQL, both real."""

import sqlite3

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from k50core.pools import LeaseEvent
from k50core.store import LeaseRow, lease_key, migrations, open_store


def event(kind, visitor, start, last, end, shared=False, lease="3.1", number="+74950000001"):
    return LeaseEvent(kind, "p", number, visitor, None, "all", start, last, end, shared, lease)


def test_migrations_are_versioned_and_applied_once(store_url):
    shipped = migrations()
    assert [v for v, _ in shipped] == sorted({v for v, _ in shipped}) and shipped[0][0] == 1
    with open_store(store_url) as store:
        assert store.migrate() == shipped[-1][0]
    with open_store(store_url) as again:                      # reopening migrates nothing twice
        assert again.migrate() == shipped[-1][0] and again.count("leases") == 0


def test_a_newer_schema_is_refused(store_url):
    with open_store(store_url) as store:
        with store.transaction():
            store.conn.cursor().execute(store._sql("INSERT INTO schema_version (version) VALUES (?)"), (999,))
    with pytest.raises(RuntimeError, match="newer than this k50core"):
        open_store(store_url)


def test_lease_log_upserts_keep_the_latest_end(store_url):
    with open_store(store_url) as store:
        store.save_events([event("start", "v1", 1000.0, 1000.0, 1900.0)])
        store.save_events([event("renew", "v1", 1000.0, 1500.0, 2400.0), event("renew", "v1", 1000.0, 1200.0, 2100.0)])
        (row,) = store.leases_of("+74950000001", 0, 10_000)
        assert (row.visitor_id, row.start, row.last, row.ends, row.shared) == ("v1", 1000.0, 1500.0, 2400.0, False)
        store.save_events([event("end", "v1", 1000.0, 1600.0, 1600.0)])   # retired: cut short
        assert store.leases_of("+74950000001", 0, 10_000)[0].ends == 1600.0
        assert store.leases_of("+74950000001", 1700, 1800) == []


def test_shared_joins_are_recorded_beside_the_holder(store_url):
    with open_store(store_url) as store:
        store.save_events([event("start", "v1", 1000.0, 1000.0, 1900.0),
                           event("share", "v2", 1000.0, 1300.0, 2200.0, shared=True),
                           event("share", "v1", 1000.0, 1400.0, 2300.0, shared=True)])   # the holder is no joiner
        (row,) = store.leases_of("+74950000001", 0, 10_000)
        assert row.shared and row.visitor_id == "v1" and row.ends == 2300.0
        assert [j[0] for j in store.joins_of(row.lease)] == ["v2"]


def _lease_log(store):
    cur = store.conn.cursor()
    cur.execute("SELECT lease, visitor_id, start, last, ends, shared FROM leases ORDER BY lease")
    leases = [tuple(r[:5]) + (bool(r[5]),) for r in cur.fetchall()]
    cur.execute("SELECT lease, visitor_id, at FROM lease_joins ORDER BY lease, visitor_id")
    return leases, [tuple(r) for r in cur.fetchall()]


# one lease's life as the engine logs it: a start, renewals and joins (each later than the last), maybe an end
_steps = st.lists(st.tuples(st.sampled_from(["renew", "share"]), st.sampled_from(["v1", "v2", "v3"]),
                            st.integers(1, 300)), max_size=25)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lives=st.lists(st.tuples(_steps, st.booleans()), min_size=1, max_size=3))
def test_a_batch_of_the_lease_log_stores_what_its_events_one_by_one_do(tmp_path_factory, lives):
    events, t = [], 1000.0
    for n, (steps, ended) in enumerate(lives):
        start = t
        events.append(event("start", "v1", start, start, start + 900, lease=f"{n}.1"))
        for kind, who, gap in steps:
            t += gap
            events.append(event(kind, who if kind == "share" else "v1", start, t, t + 900,
                                shared=kind == "share", lease=f"{n}.1"))
        if ended:
            t += 1
            events.append(event("end", "v1", start, t, t, lease=f"{n}.1"))
        t += 1000
    folder = tmp_path_factory.mktemp("log")
    with open_store(str(folder / "batch.db")) as batch, open_store(str(folder / "single.db")) as single:
        batch.save_events(events)            # renewals and returns folded (coalesced)
        for e in events:
            single.save_events([e])
        assert _lease_log(batch) == _lease_log(single)


def test_calls_are_recorded_once(store_url):
    call = {"call_id": "c1", "number": "+74950000001", "caller": "+79161234567", "started_at": 1100.0,
            "duration_seconds": 30.0, "answered": True, "received_at": 1200.0}
    made = {"status": "matched", "lease": "k", "visitor_id": "v1", "session_id": None, "pool": "p", "rule": "all",
            "likelihood": 0.97, "repeat_of": None, "candidates": [], "attributes": {"source": "yandex"}}
    with open_store(store_url) as store:
        assert store.save_call(call, made) is True
        assert store.save_call(call, dict(made, status="late")) is False
        assert store.saved_attribution("c1")["status"] == "matched"
        assert store.count("calls") == store.count("attributions") == 1
        assert store.first_call_of("+79161234567", 5000, "c2") == "c1"
        assert store.first_call_of("+79161234567", 5000, "c1") is None


def test_visit_attributes_round_trip(store_url):
    key = lease_key("p", "+74950000001", 1000.0, "3.1")
    row = LeaseRow(key, "p", "+74950000001", "v1", "s1", "all", 1000.0, 1000.0, 1900.0, False)
    with open_store(store_url) as store:
        store.save_start({"visitor_id": "v1", "session_id": "s1", "at": 1000.0,
                          "attributes": {"utm": {"utm_source": "yandex"}, "region": "RU-MOW"}}, row, durable=True)
        assert store.visit_of(key) == {"utm": {"utm_source": "yandex"}, "region": "RU-MOW"}
        assert store.leases_of("+74950000001", 1500, 1500)[0].session_id == "s1"


def test_every_stored_call_is_in_the_export(store_url):
    """The export without an end (until: infinite) has every call the store holds, whatever its start:
    it stopped at 1e18, so a call stamped 1e300 was stored and never exported."""
    made = {"status": "unmatched", "lease": None, "visitor_id": None, "session_id": None, "pool": None,
            "rule": None, "likelihood": 0.0, "repeat_of": None, "candidates": [], "attributes": {}}
    with open_store(store_url) as store:
        for i, at in enumerate([0.0, 1100.0, 1e18, 1e300]):
            store.save_call({"call_id": f"c{i}", "number": "+74950000001", "caller": None, "started_at": at,
                             "duration_seconds": 0.0, "answered": False, "received_at": 1200.0}, made)
        assert [r["call_id"] for r in store.calls_page(limit=10)] == ["c0", "c1", "c2", "c3"]
        assert [r["call_id"] for r in store.calls()] == ["c0", "c1", "c2", "c3"]
        assert [r["call_id"] for r in store.calls_page(since=1000.0, until=1e18, limit=10)] == ["c1"]


def test_a_new_store_keys_leases_by_their_start_first_and_an_older_one_keeps_its_format(tmp_path):
    """Time-first keys append to the key indexes; a store that has leases from before keeps the
    format its rows and journals agree on (pool first), whatever k50core opens it later."""
    path = str(tmp_path / "k.db")
    with open_store(path) as store:
        assert store.time_first_keys
        assert store.lease_key("p", "+74950000001", 1000.0, "3.1") == "0000001000000:p:+74950000001:3.1"
        keys = [store.lease_key("p", n, t, "0.1") for t, n in ((1000.0, "+7999"), (1000.5, "+7000"), (2000.0, "+7500"))]
        assert keys == sorted(keys)                       # later starts sort later, whatever the number
    old = sqlite3.connect(str(tmp_path / "old.db"))       # a store at version 6 with a lease in it
    for version, sql in migrations():
        if version <= 6:
            old.executescript(sql)
    old.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    old.execute("INSERT INTO schema_version (version) VALUES (6)")
    old.execute("INSERT INTO leases VALUES ('p:+74950000001:1000000:3.1', 'p', '+74950000001', 'v1', NULL, 'all', "
                "1000.0, 1000.0, 1900.0, 0)")
    old.commit()
    old.close()
    with open_store(str(tmp_path / "old.db")) as store:
        assert not store.time_first_keys
        assert store.lease_key("p", "+74950000001", 1000.0, "3.1") == "p:+74950000001:1000000:3.1"
