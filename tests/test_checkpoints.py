"""Lease activity reaches the store at checkpoints, not per renewal; nothing is lost to a kill -9.

A renewal (a heartbeat, a returning visitor) changes the pool state only. Every
``store.checkpoint_seconds`` of renewal clock, each lease renewed since the last checkpoint is one
row; its final state goes with the start of the lease that replaces it. Attribution reads the
pool state for the called number, so it is exact between checkpoints.
"""
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from k50core import Engine

NUMBERS = [f"+7495{i:07d}" for i in range(1, 201)]


def config(checkpoint=30, numbers=NUMBERS):
    return {"pools": {"p": {"type": "dynamic", "numbers": numbers, "hold_seconds": 900, "cooldown_seconds": 60}},
            "rules": [{"name": "all", "pool": "p"}], "store": {"checkpoint_seconds": checkpoint}}


def call(call_id, number, at):
    return {"call_id": call_id, "number": number, "caller": "+79161234567", "started_at": at,
            "duration_seconds": 60, "answered": True}


class CountingStore:
    """Counts the lease-log rows an engine hands its store (the store itself is real)."""

    def __init__(self, engine):
        self.rows = 0
        real = engine.store.save_writes

        def save_writes(starts, events, *args, **kw):
            self.rows += len(events)
            return real(starts, events, *args, **kw)
        engine.store.save_writes = save_writes


def stored_lease(engine, visitor):
    cur = engine.store.conn.cursor()
    cur.execute(engine.store._sql("SELECT last, ends FROM leases WHERE visitor_id = ?"), (visitor,))
    return tuple(cur.fetchone())


def test_heartbeats_write_nothing_until_a_checkpoint(build, store_url):
    engine = Engine.from_config(config(), implementation=build, store=store_url)
    counted = CountingStore(engine)
    shown = [engine.assign({"visitor_id": f"v{i}"}, now=1000) for i in range(200)]
    engine.flush()
    base = counted.rows
    for t in range(1001, 1030):                     # 29 s of heartbeats from 200 pages: 5,800 renewals
        assert engine.heartbeat_many([a.token for a in shown], now=t) == 200
        engine.flush()                              # what a host does every second: no renewal rows
    assert counted.rows == base
    lease = "v7"
    assert stored_lease(engine, lease) == pytest.approx((1000.0, 1900.0))
    engine.heartbeat(shown[0].token, now=1031.5)    # 30 s after the first renewal: the checkpoint
    engine.flush()
    assert counted.rows - base == 200               # one row per live lease, not one per renewal
    assert stored_lease(engine, lease) == pytest.approx((1029.0, 1929.0))
    # between checkpoints the pool state answers: a call after the stored end is still the visitor's
    engine.heartbeat(shown[7].token, now=1050)
    got = engine.attribute(call("c1", shown[7].number, 1940), now=1940)
    assert (got.status, got.visitor_id) == ("matched", "v7")
    engine.close()                                  # a clean stop is a last checkpoint
    if store_url.endswith(".db"):
        with Engine.from_config(config(), implementation=build, store=store_url) as again:
            assert stored_lease(again, lease) == pytest.approx((1050.0, 1950.0))


def test_a_checkpoint_writes_every_lease_once_at_any_working_set(build, tmp_path):
    """20,000 live leases renewed three times each between checkpoints: 20,000 rows, not 60,000.
    (The reference scans every number for a claim: 2,000 of them keep its test short.)"""
    live = 20_000 if build == "compiled" else 2_000
    numbers = [f"+7495{i:07d}" for i in range(live)]
    engine = Engine.from_config(config(numbers=numbers), implementation=build, store=str(tmp_path / "k.db"))
    counted = CountingStore(engine)
    tokens = [engine.assign({"visitor_id": f"v{i}"}, now=1000).token for i in range(live)]
    engine.flush()
    base = counted.rows
    for k in range(3):
        engine.heartbeat_many(tokens, now=1001 + k)
    engine.flush()
    assert counted.rows == base
    engine.heartbeat(tokens[0], now=1040)
    engine.flush()
    assert counted.rows - base == live
    engine.close()


WORKER = textwrap.dedent("""
    import sys, time
    from k50core import Engine
    numbers = [f"+7495{i:07d}" for i in range(1, 201)]
    cfg = {"pools": {"p": {"type": "dynamic", "numbers": numbers, "hold_seconds": 900, "cooldown_seconds": 60}},
           "rules": [{"name": "all", "pool": "p"}], "store": {"checkpoint_seconds": 30}}
    engine = Engine.from_config(cfg, store=sys.argv[1])
    shown = [engine.assign({"visitor_id": f"v{i}", "url": "https://shop.example.ru/?utm_source=vk"}, now=1000)
             for i in range(50)]
    t = 1000.0
    while t < 2000:                     # 1,000 s of heartbeats every 7 s: checkpoints every 30 s
        t += 7
        engine.heartbeat_many([a.token for a in shown], now=t)
    print(t, *[a.number for a in shown], flush=True)
    if sys.argv[2] == "clean":
        engine.close()
    else:
        time.sleep(60)  # killed here
""")


@pytest.mark.parametrize("stop", ["clean", "kill"])
def test_attribution_after_a_kill_is_as_before_within_the_checkpoint_interval(store_url, stop, tmp_path):
    """A worker heartbeats 50 leases for 1,000 s and is killed (or stops): a call within the hold
    of the last checkpoint's activity is the visitor's. With a SQLite file the pool segment beside
    it survives the kill too, so even a call just before the true end matches."""
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    proc = subprocess.Popen([sys.executable, str(script), store_url, stop], stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline().split()
    if stop == "kill":
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    last, numbers = float(line[0]), line[1:]
    assert len(numbers) == 50
    segment_kept = store_url.endswith(".db") or stop == "clean"
    # the last checkpoint is at most 30 s of renewal clock behind the last heartbeat
    at = last + 900 - (1 if segment_kept else 31)
    with Engine.from_config(config(), store=store_url) as fresh:
        for i, number in enumerate(numbers):
            got = fresh.attribute(call(f"c{i}", number, at), now=at)
            assert (got.status, got.visitor_id, got.attributes.get("source")) == ("matched", f"v{i}", "vk"), got

