"""Pools in Redis under faults, with real servers: hosts in separate processes (one SIGKILLed),
redis-server SIGKILLed mid-load and restarted from its append-only file, Redis unreachable.

Each host process writes what its visitors were shown (visitor, number, token, when, and the end
of the lease as the host told it) to a file; the checks read those files. The clock is the wall
clock, passed to assign() explicitly, so each record's time is the one Redis judged by.
"""
import json
import multiprocessing
import os
import random
import time

import pytest
from redisserver import RedisServer

from k50core import Engine

NUMBERS = [f"+7495100{i:04d}" for i in range(60)]
HOLD, COOL = 1, 1


def config(numbers=NUMBERS, hold=HOLD, cool=COOL):
    return {"site": {"default_number": "+74951234567"},
            "pools": {"p": {"type": "dynamic", "numbers": list(numbers), "hold_seconds": hold,
                            "cooldown_seconds": cool, "on_exhausted": "default", "default_number": "+74950000099"}},
            "rules": [{"name": "all", "pool": "p"}]}


def host(url, seconds, seed, path, ready, go):
    """A host: a new visitor every 10 ms; between them, visitors of the last half second come back
    (by visitor id, or by token), then leave, so their leases run out and numbers pass on."""
    engine = Engine.from_config(config(), state_url=url)
    rng = random.Random(seed)
    mine = []  # (visitor, token, first seen)
    ready.set()
    go.wait(120)  # every host starts together
    end = time.time() + seconds
    next_new = time.time()
    with open(path, "w") as out:
        n = 0
        while time.time() < end:
            now = time.time()
            mine = [m for m in mine if now - m[2] < 0.5]
            if now >= next_new or not mine:
                next_new = now + 0.01
                n += 1
                visitor, first = f"h{seed}-v{n}", now
                got = engine.assign({"visitor_id": visitor}, now=now)
            else:
                visitor, token, first = rng.choice(mine)
                got = engine.assign({"visitor_id": visitor}, now=now, token=token if rng.random() < 0.3 else None)
                time.sleep(0.0005)
            if got.token:
                mine.append((visitor, got.token, first))
                out.write(json.dumps([visitor, got.number, got.token, now, got.expires_at]) + "\n")
                out.flush()
            if n % 50 == 0:
                out.write(json.dumps(["stats", engine.stats(now=time.time())["redis"]]) + "\n")
        engine.pools.flush()
        out.write(json.dumps(["stats", engine.stats(now=time.time())["redis"]]) + "\n")


def read(paths):
    shown, stats = [], []
    for path in paths:
        with open(path) as f:
            for line in f:
                try:
                    row = json.loads(line)
                except ValueError:  # the last line of a killed host may be cut short
                    continue
                (stats if row[0] == "stats" else shown).append(row + [path] if row[0] != "stats" else row[1])
    return shown, stats


def leases(shown):
    """Each lease as its visitor knew it: (number, token) -> [visitor, first seen, latest end told, file]."""
    out = {}
    for visitor, number, token, at, until, path in shown:
        rec = out.setdefault((number, token), [visitor, at, until, path])
        rec[1], rec[2] = min(rec[1], at), max(rec[2], until)
    return out


def check(shown, killed_files=(), cool=COOL, slack=0.0):
    """No number with two visitors at once; a number passes on only after the last lease's end plus
    the cooldown (a killed host's last renewals may not have reached Redis: its leases are held to
    "not at once", with ``slack`` for the renewal window it lost)."""
    by_number = {}
    for (number, token), (visitor, start, end, path) in leases(shown).items():
        by_number.setdefault(number, []).append((start, end, visitor, path, token))
    passed_on = 0
    for number, spans in by_number.items():
        spans.sort()
        for (s1, e1, v1, p1, _t1), (s2, e2, v2, p2, _t2) in zip(spans, spans[1:]):
            if v1 == v2:
                continue
            passed_on += 1
            gap = 0.0 if p1 in killed_files else cool
            assert s2 >= e1 + gap - slack - 1e-6, (number, (v1, s1, e1, p1), (v2, s2, e2, p2))
    return passed_on


def run_hosts(url, tmp_path, n, seconds):
    ctx = multiprocessing.get_context("spawn")  # a fresh interpreter each, as a host is
    paths = [str(tmp_path / f"host{i}.jsonl") for i in range(n)]
    ready, go = [ctx.Event() for _ in range(n)], ctx.Event()
    procs = [ctx.Process(target=host, args=(url, seconds, i, paths[i], ready[i], go)) for i in range(n)]
    for p in procs:
        p.start()
    for r in ready:
        assert r.wait(60)
    go.set()
    return procs, paths


def test_three_hosts_one_killed(tmp_path):
    server = RedisServer()
    try:
        url = server.url()
        procs, paths = run_hosts(url, tmp_path, 3, 4.0)
        time.sleep(1.5)
        os.kill(procs[2].pid, 9)  # a host dies mid-run: its leases run out, nothing stays stuck
        for p in procs:
            p.join(60)
        assert procs[2].exitcode == -9 and procs[0].exitcode == 0 and procs[1].exitcode == 0
        shown, _ = read(paths)
        assert {p for *_, p in shown} == set(paths), "every host handed out numbers"
        passed_on = check(shown, killed_files={paths[2]}, slack=0.3)
        assert passed_on >= 5, "numbers passed from visitor to visitor under load"
        # nothing stuck: once the last lease and its cooldown are over, every number is free again
        after = max(until for *_, until, _p in shown) + COOL + 0.01
        engine = Engine.from_config(config(), state_url=url)
        stats = engine.stats(now=after)["pools"]["p"]
        assert (stats["leased"], stats["cooling"], stats["free"]) == (0, 0, len(NUMBERS))
        got = {engine.assign({"visitor_id": f"late{i}"}, now=after).number for i in range(len(NUMBERS))}
        assert got == set(NUMBERS)
        engine.close()
    finally:
        server.stop()


def test_redis_killed_mid_load_and_restarted_from_its_aof(tmp_path):
    """appendfsync everysec: up to a second of writes is lost (cut off the file here, as a machine
    that stops would lose them). The restarted server (a new run id)
    quarantines the pool's numbers for hold + cooldown and the hosts re-assert the leases they know,
    so no number reaches a second visitor while the first one's lease, as their host told it, lives."""
    server = RedisServer(aof=True)
    try:
        url = server.url()
        procs, paths = run_hosts(url, tmp_path, 2, 5.0)
        tail, sizes = server.aof_tail(), []
        while not sizes or time.time() - sizes[0][0] < 1.5:  # how long the file was, moment by moment
            sizes.append((time.time(), os.path.getsize(tail)))
            time.sleep(0.02)
        server.kill()
        killed_at = time.time()
        # a SIGKILL loses nothing the server wrote (the kernel has it); a machine that stops loses
        # what was not yet fsynced: up to a second. That second is cut off the file here.
        lost_from = max(size for at, size in sizes if at <= killed_at - 1.0)
        with open(tail, "r+b") as f:
            f.truncate(lost_from)
        assert lost_from < sizes[-1][1], "writes were lost"
        server.start()
        for p in procs:
            p.join(60)
        assert [p.exitcode for p in procs] == [0, 0]
        shown, stats = read(paths)
        assert any(at < killed_at for _v, _n, _t, at, _u, _p in shown)
        assert any(at > killed_at + 0.3 for _v, _n, _t, at, _u, _p in shown), "numbers handed out after the restart"
        assert sum(s["epoch_changes"] for s in stats[-2:]) >= 1, "the hosts saw the restart"
        assert max(s["unreachable"] for s in stats) >= 1, "the hosts saw Redis go"
        check(shown)
    finally:
        server.stop()


def test_redis_unreachable_gives_the_default_and_recovers(tmp_path):
    import httpx
    from service_support import serving

    from k50core.bindings.service import create_app

    server = RedisServer(aof=True)
    try:
        engine = Engine.from_config(config(hold=60, cool=30), state_url=server.url())
        app = create_app(engine, api_keys=["k"], rate_limits=None)
        t = 1_700_000_000.0
        held = engine.assign({"visitor_id": "before"}, now=t)
        assert held.number in NUMBERS
        with serving(app) as base:
            assert httpx.get(base + "/healthz").json()["status"] == "ok"
            server.kill()
            started = time.monotonic()
            got = engine.assign({"visitor_id": "during"}, now=t + 1)
            assert got.number == "+74950000099" and got.token is None  # the pool's default
            for i in range(20):  # at once: no round trip tried while Redis is marked down
                assert engine.assign({"visitor_id": f"during{i}"}, now=t + 1).number == "+74950000099"
            assert time.monotonic() - started < 5  # a generous bound: one short timeout, not twenty
            back = engine.assign({"visitor_id": "before"}, now=t + 2)  # Redis confirmed it: still theirs
            assert back.number == held.number
            assert httpx.get(base + "/healthz").json()["status"] == "degraded"
            metrics = httpx.get(base + "/metrics", headers={"X-API-Key": "k"}).text
            assert "k50_redis_up 0" in metrics
            unreachable = [line for line in metrics.splitlines() if line.startswith("k50_redis_unreachable_total ")]
            assert unreachable and float(unreachable[0].split()[1]) >= 1
            server.start()
            deadline = time.monotonic() + 15
            while httpx.get(base + "/healthz").json()["status"] != "ok":
                assert time.monotonic() < deadline, "the service did not recover by itself"
                time.sleep(0.1)
            # the restart quarantined the free numbers for hold + cooldown; after that, claims again
            assert engine.assign({"visitor_id": "before"}, now=t + 3).number == held.number
            fresh = engine.assign({"visitor_id": "after"}, now=t + 3 + 60 + 30 + 1)
            assert fresh.number in NUMBERS and fresh.token
            assert engine.stats(now=t + 95)["redis"]["epoch_changes"] >= 1
        engine.close()
    finally:
        server.stop()


def test_a_dead_redis_at_start_is_a_clear_error():
    from redisserver import free_port

    from k50core import ConfigError

    with pytest.raises(ConfigError, match="state_url"):
        Engine.from_config(config(), state_url=f"redis://127.0.0.1:{free_port()}/0")
    with pytest.raises(ConfigError, match="state_url"):
        Engine.from_config(config(), state_url="http://127.0.0.1/0")


def test_a_redis_that_lost_everything_is_set_up_again_without_handing_out_live_numbers():
    """No AOF: the restarted server is empty. The first claim finds the pool missing; the host sets
    it up again with every number waiting hold + cooldown, since leases hosts still honour may name
    them; then claims go on."""
    server = RedisServer()
    try:
        engine = Engine.from_config(config(numbers=NUMBERS[:2], hold=60, cool=30), state_url=server.url())
        t = 1_700_000_000.0
        held = engine.assign({"visitor_id": "v1"}, now=t)
        server.kill()
        server.start()  # empty
        time.sleep(0.6)  # past the pause after the failed round trip, if any
        other = engine.assign({"visitor_id": "v2"}, now=t + 1)
        assert other.number == "+74950000099", "no number while a lease the host honours may name it"
        assert engine.assign({"visitor_id": "v1"}, now=t + 2).number == held.number  # still theirs
        later = engine.assign({"visitor_id": "v3"}, now=t + 1 + 60 + 30)
        assert later.number in NUMBERS[:2] and later.token
        assert engine.stats(now=t + 91)["pools"]["p"]["numbers"] == 2
        engine.close()
    finally:
        server.stop()


def test_a_call_redis_refuses_gives_the_default_not_an_error(redis_server):
    """A pool function missing its keys' type (here: someone wrote a string where the free set
    lives): the visitor gets the default number, the failure is counted, nothing raises."""
    import redis as redis_client

    url = redis_server.url()
    engine = Engine.from_config(config(), state_url=url)
    ns = url.rsplit("namespace=", 1)[1]
    redis_client.Redis(port=redis_server.port).set(f"{{{ns}:p}}:free", "not a sorted set")
    got = engine.assign({"visitor_id": "v1"}, now=1_700_000_000.0)
    assert got.number == "+74950000099" and got.token is None
    assert engine.stats(now=1_700_000_000.0)["redis"]["unreachable"] >= 1
    engine.pools.close()
