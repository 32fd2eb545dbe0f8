"""The lease recorder's interface (k50core.leases), as a host that places the store's writes
itself drives it (the service's writer does): what it queues, what it takes, what a failed write
leaves, which starts must be committed before their numbers show, and what a kill leaves."""
import signal
import subprocess
import sys

import pytest

from k50core import ConfigError, Engine
from k50core.leases import LeaseRecorder
from k50core.store import open_store

from .test_journal import CFG20, on_disk

URL = "https://shop.example.ru/"


def visit(i):
    return {"visitor_id": f"v{i}", "url": URL}


def test_a_deferring_host_takes_slices_oldest_first_and_the_log_after_its_starts(tmp_path, build):
    db = tmp_path / "k.db"
    engine = Engine.from_config(CFG20, implementation=build, store=str(db))
    leases = engine.lease_recorder
    leases.defer_writes = True
    try:
        got = [engine.assign(visit(i), now=1000 + i) for i in range(5)]
        assert not leases.commit_before_showing()              # journaled: nothing to wait for
        assert on_disk(db) == [f"v{i}" for i in range(5)] and engine.store.count("visits") == 0
        goal = leases.position
        assert goal == 5 and not leases.stored_up_to(goal)
        engine.retire_numbers("p", [got[0].number], now=1010)  # an end in the log for v0's lease
        first = leases.take(max_starts=2, max_events=1)
        assert [v["visitor_id"] for v, _ in first.starts] == ["v0", "v1"] and first.events == []
        leases.write(first, durable=False)
        assert engine.store.count("visits") == 2 and not leases.stored_up_to(goal)
        rest = leases.take(max_starts=10, max_events=1)         # the starts left, then one event
        assert [v["visitor_id"] for v, _ in rest.starts] == ["v2", "v3", "v4"] and len(rest.events) == 1
        leases.write(rest, durable=False)
        assert leases.stored_up_to(goal) and leases.journal.unstored == 0  # nothing in the journal unstored
        while leases.log_waiting:
            leases.write(leases.take(max_events=1), durable=False)
        assert leases.take().empty
        (row,) = engine.store.leases_of(got[0].number, 0, 1e12)
        assert row.ends == 1010.0 and engine.store.count("visits") == 5
    finally:
        leases.defer_writes = False
        engine.close()


def test_a_failed_write_goes_back_ahead_of_what_came_since(tmp_path, build):
    db = tmp_path / "k.db"
    engine = Engine.from_config(CFG20, implementation=build, store=str(db))
    leases = engine.lease_recorder
    leases.defer_writes = True
    real = engine.store.save_writes
    fail = [True]

    def flaky(starts, events=(), durable=False, replayed=False):
        if fail:
            fail.pop()
            raise RuntimeError("disk on fire")
        return real(starts, events, durable, replayed)
    engine.store.save_writes = flaky
    try:
        for i in range(3):
            engine.assign(visit(i), now=1000 + i)
        taken = leases.take()
        engine.assign(visit(3), now=1004)                      # queued while the write is under way
        with pytest.raises(RuntimeError, match="fire"):
            leases.write(taken)
        assert leases.starts_stored == 0 and on_disk(db) == ["v0", "v1", "v2", "v3"]
        again = leases.take()
        assert [v["visitor_id"] for v, _ in again.starts] == ["v0", "v1", "v2", "v3"]
        leases.write(again)
        assert leases.stored_up_to(leases.position) and leases.journal.unstored == 0
    finally:
        leases.defer_writes = False
        engine.close()
    store = open_store(str(db))
    try:
        assert {r[0] for r in store.conn.execute("SELECT visitor_id FROM visits")} == {f"v{i}" for i in range(4)}
    finally:
        store.close()


def test_which_starts_are_committed_before_their_numbers_show(store_url, build):
    """PostgreSQL (no journal): a deferring host hears once, per new lease, that it must commit
    first; a returning visitor or an exclusion queues nothing. Not deferring, the recorder commits
    the start itself inside assign(). A SQLite file never asks (the journal keeps the start)."""
    engine = Engine.from_config(CFG20, implementation=build, store=store_url)
    leases = engine.lease_recorder
    postgres = store_url.startswith("postgresql")
    try:
        leases.defer_writes = True
        engine.assign(visit(1), now=1000)
        assert leases.commit_before_showing() is postgres
        assert leases.commit_before_showing() is False             # asked once: cleared
        engine.assign(visit(1), now=1001)                          # returning: nothing new
        assert leases.commit_before_showing() is False
        leases.write(leases.take())
        assert engine.store.count("visits") == 1
        leases.defer_writes = False
        engine.assign(visit(2), now=1002)
        assert engine.store.count("visits") == (2 if postgres else 1)  # PostgreSQL: committed in assign()
        assert leases.commit_before_showing() is False
    finally:
        leases.defer_writes = False
        engine.close()


def test_an_injected_recorder_gets_every_lease_event_once(tmp_path, build):
    """A recorder made by the caller (over the engine's store, with a sink of its own) is the one
    the engine writes through; its sink sees each event once, a failed write and its retry
    included."""
    store = open_store(str(tmp_path / "k.db"))
    seen = []
    leases = LeaseRecorder(store, lease_sink=seen.extend)
    engine = Engine.from_config(CFG20, implementation=build, store=store, lease_recorder=leases)
    assert engine.lease_recorder is leases and engine.store is store
    leases.defer_writes = True
    real, fail = store.save_writes, [True]

    def flaky(starts, events=(), durable=False, replayed=False):
        if fail and events:
            fail.pop()
            raise RuntimeError("disk on fire")
        return real(starts, events, durable, replayed)
    store.save_writes = flaky
    try:
        a = engine.assign(visit(1), now=1000)
        engine.heartbeat(a.token, now=1005)
        with pytest.raises(RuntimeError):
            leases.write(leases.take(checkpoint=True))
        leases.write(leases.take(checkpoint=True))
        assert [e.event for e in seen] == ["start", "renew"]
        (row,) = store.leases_of(a.number, 0, 1e12)
        assert row.last == 1005.0
    finally:
        leases.defer_writes = False
        engine.close()
        store.close()


def test_an_engine_refuses_a_recorder_over_another_store(tmp_path):
    store = open_store(str(tmp_path / "one.db"))
    try:
        with pytest.raises(ConfigError, match="lease_recorder"):
            Engine.from_config(CFG20, store=str(tmp_path / "two.db"), lease_recorder=LeaseRecorder(store))
        with pytest.raises(ConfigError, match="lease_recorder"):
            Engine.from_config(CFG20, lease_sink=print, lease_recorder=LeaseRecorder(store))
    finally:
        store.close()


def test_the_page_view_calls_are_the_cores_own(build):
    """Engine.assign, assign_many, heartbeat and heartbeat_many are the core's methods themselves,
    with no Python layer between (they are the visitor path)."""
    engine = Engine.from_config(CFG20, implementation=build)
    assert type(engine.assign.__self__).__name__ == "Assigner"
    assert engine.assign_many.__self__ is engine.assign.__self__
    assert engine.heartbeat.__self__ is engine.pools.table and engine.heartbeat_many.__self__ is engine.pools.table
    token = engine.assign(visit(1), now=1000).token
    assert engine.assign_many([visit(1), visit(2)], now=1001)[0].token == token
    assert engine.heartbeat(token, now=1002) and engine.heartbeat_many([token, "0.0.0"], now=1003) == 1


_TAKE_AND_DIE = """
import os, signal, sys
sys.path[:0] = {path!r}
from k50core import Engine
engine = Engine.from_config({cfg!r}, implementation={build!r}, store={db!r})
leases = engine.lease_recorder
leases.defer_writes = True
for i in range(6):
    engine.assign({{"visitor_id": f"k{{i}}", "url": "https://shop.example.ru/"}}, now=1000 + i)
leases.write(leases.take(max_starts=2), durable=False)   # two stored
taken = leases.take()                                    # four taken, never written
print(len(taken.starts), flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_starts_a_killed_host_took_but_never_wrote_are_recovered(tmp_path, build):
    """A host takes the queued starts and is killed before its write: taking releases nothing of
    the journal (only a write does), so the next engine replays them."""
    db = str(tmp_path / "k.db")
    script = _TAKE_AND_DIE.format(path=sys.path, cfg=CFG20, build=build, db=db)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == -signal.SIGKILL and done.stdout.strip() == "4", done.stderr[-2000:]
    with Engine.from_config(CFG20, implementation=build, store=db) as again:
        ids = {r[0] for r in again.store.conn.execute("SELECT visitor_id FROM visits")}
    assert ids == {f"k{i}" for i in range(6)}


def test_the_service_writer_writes_visit_counts_without_lease_traffic(tmp_path):
    """A worker whose visits take no number (no rule matches) has nothing of the leases to write;
    its visit counts still reach the store at the writer's next round once they are due."""
    import asyncio

    from k50core.bindings.service.writer import StoreThread
    cfg = {"pools": CFG20["pools"], "rules": [{"name": "paid", "when": {"traffic_type": "paid"}, "pool": "p"}]}
    engine = Engine.from_config(cfg, store=str(tmp_path / "k.db"))
    writer = StoreThread(engine)
    try:
        for i in range(3):
            assert engine.assign(visit(i), now=1000 + i).number is None
        assert engine.recorder.due()
        asyncio.run(writer.commit(with_log=True))
        counted = engine.store.conn.execute("SELECT count(*) FROM visit_counts").fetchone()[0]
        assert counted > 0 and not engine.recorder.due() and engine.store.count("leases") == 0
    finally:
        asyncio.run(writer.close(close_engine=False))
        engine.close()
