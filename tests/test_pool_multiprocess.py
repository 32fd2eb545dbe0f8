"""Four processes on one shared pool segment, one SIGKILLed mid-run.

The lease logs each worker flushed, plus the pool state itself, must show
that no two unshared leases of a number ever overlapped, and nothing stays
stuck: the killed worker's leases just run out.
"""
import json
import multiprocessing
import os
import random
import signal
import time

import pytest

from k50core import Engine

HOLD, COOL = 1, 1
NUMBERS = [f"+749500000{i:02d}" for i in range(16)]
CONFIG = {
    "pools": {"p": {"type": "dynamic", "numbers": NUMBERS, "hold_seconds": HOLD, "cooldown_seconds": COOL,
                    "on_exhausted": "default", "default_number": "+74950000099"}},
    "rules": [{"name": "all", "pool": "p"}],
}


def worker(build, path, seconds, seed, log_path, ready):
    engine = Engine.from_config(CONFIG, implementation=build, state_path=path)
    rnd = random.Random(seed)
    tokens = []
    ready.set()
    start = time.time()
    end = start + seconds
    with open(log_path, "a") as log:
        while time.time() < end:
            now = time.time()
            # a new crowd every half second: the old one stops coming back, so its leases
            # run out and the numbers change hands (returning visitors alone would keep
            # every lease alive for the whole run, the spinning workers return that often)
            crowd = int((now - start) / 0.5)
            got = engine.assign({"visitor_id": f"w{seed}-c{crowd}-v{rnd.randrange(200)}"}, now=now)
            if got.token:
                tokens.append(got.token)
            if tokens and rnd.random() < 0.01:
                engine.heartbeat(rnd.choice(tokens[-20:]), now=now)
            events = engine.drain_leases()
            if events:  # flushed per batch: a SIGKILL loses at most the batch being written
                log.write("".join(json.dumps(e._asdict()) + "\n" for e in events))
                log.flush()
            if got.token:  # busy workers spin while the pool is exhausted: freed numbers are raced for
                time.sleep(rnd.random() * 0.004)


def leases_from(paths, holders):
    leases, starts = {}, {}
    for path in paths:
        with open(path) as f:
            for line in f:
                if not line.endswith("\n"):
                    continue  # a line cut short by the kill
                e = json.loads(line)
                key = (e["pool"], e["lease"], e["number"])
                if e["event"] == "start":  # a lease id (slot.gen) is won by exactly one claim
                    assert key not in starts, f"lease {key} started twice: {starts.get(key)} and {e}"
                    starts[key] = e
                rec = leases.setdefault(key, {"start": e["start"], "end": e["end"], "shared": e["shared"]})
                rec["end"] = max(rec["end"], e["end"])
                rec["shared"] = rec["shared"] or e["shared"]
    for h in holders:  # the pool state knows each number's last lease, renewals the logs lost included
        key = (h.pool, h.lease, h.number)
        rec = leases.setdefault(key, {"start": h.start, "end": h.end, "shared": h.shared})
        rec["end"] = max(rec["end"], h.end)
        rec["shared"] = rec["shared"] or h.shared
    return leases


@pytest.mark.parametrize("build", ["compiled", "reference"])
def test_four_processes_one_killed(build, tmp_path):
    path = str(tmp_path / "pool.seg")
    Engine.from_config(CONFIG, implementation=build, state_path=path)  # create the segment
    ctx = multiprocessing.get_context("fork")
    logs = [str(tmp_path / f"w{i}.jsonl") for i in range(4)]
    ready = [ctx.Event() for _ in logs]
    procs = [ctx.Process(target=worker, args=(build, path, 5.0, i, logs[i], ready[i])) for i in range(4)]
    for p in procs:
        p.start()
    for r in ready:
        assert r.wait(30)
    time.sleep(1.5)
    os.kill(procs[0].pid, signal.SIGKILL)
    for p in procs:
        p.join(60)
    assert procs[0].exitcode == -signal.SIGKILL
    assert all(p.exitcode == 0 for p in procs[1:])

    parent = Engine.from_config(CONFIG, implementation=build, state_path=path)
    leases = leases_from(logs, parent.lease_holders())
    assert len(leases) > len(NUMBERS), "numbers changed hands under contention"
    by_number = {}
    for (_pool, lease, number), rec in leases.items():
        by_number.setdefault(number, []).append((rec["start"], rec["end"], rec["shared"], lease))
    for number, spans in by_number.items():
        spans.sort()
        for (_s1, e1, sh1, l1), (s2, _e2, sh2, l2) in zip(spans, spans[1:]):
            if not (sh1 or sh2):
                assert s2 >= e1 + COOL, f"{number}: lease {l2} from {s2} overlaps {l1} ending {e1}"

    # every number's last lease is in the holder index (written by whichever worker claimed it,
    # the killed one included): looked up at an instant it was live, it is found
    table = parent.pools.table
    assert not table.index_overflowed()
    for slot in range(parent.pools.segment.used):
        kind, gen, shared, until = table.state(slot)
        holder = table.record(slot).holder
        if kind == 2 and holder:  # LEASED, a visitor's
            assert table.lease_of(parent.pools._holder(holder.decode())[1], holder, until - 1) == (slot, gen)

    # nothing stuck: once every lease has run out and cooled down, every number is free again
    later = max(rec["end"] for rec in leases.values()) + COOL + 0.01
    fresh = [parent.assign({"visitor_id": f"after-{i}"}, now=later) for i in range(len(NUMBERS))]
    assert sorted(a.number for a in fresh) == sorted(NUMBERS)
    assert not any(a.shared for a in fresh)
