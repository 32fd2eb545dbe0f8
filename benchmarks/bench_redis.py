"""Pools in Redis: k50core's functions beside two straightforward peers, on one private redis-server.

    python benchmarks/bench_redis.py [--numbers 12000] [--claims 4000] [--peer-claims 200] [--concurrency 8] [--repeat 3]

Claims per second, the p99 of one claim, and CPU per claim on the hosts and on redis-server (its
INFO cpu) with 1, 2 and 3 host processes on one Redis (appendonly, appendfsync everysec, as in
production); each host claims one at a time, and with ``--concurrency`` threads at once (a
service's concurrent requests), for

* k50core: ``RedisPools.lease`` (one FCALL: the free number idle longest from a sorted set; the
  claims arriving while one is out go together in the next, ``k50_claim_many``);
* a straightforward Lua pool: one hash number -> "until|holder"; the claim script scans it for
  the free number idle longest (what a first Lua allocator does);
* a WATCH/MULTI pool: the host reads the same hash, picks the number, writes it in MULTI/EXEC
  under WATCH, and starts again when another host got there first;

then returning visitors per second on one host's local path (k50core over Redis, and the
compiled pool in process memory beside it). One run; prints the figures and the ratios.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable

import redis

from k50core import Engine

HOLD_MS, COOL_MS = 900_000, 300_000
SCAN_LUA = """
local now, hold, cool, holder = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local all = redis.call('HGETALL', KEYS[1])
local best, best_until = nil, nil
for i = 1, #all, 2 do
  local v = all[i + 1]
  local untl = tonumber(string.match(v, '^(%d+)'))
  if untl + cool <= now and (best == nil or untl < best_until) then best, best_until = all[i], untl end
end
if best == nil then return nil end
redis.call('HSET', KEYS[1], best, (now + hold) .. '|' .. holder)
return best
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A private redis-server with AOF (everysec) in a temporary directory."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="k50-bench-redis-")
        self.port = free_port()
        self.proc = subprocess.Popen([shutil.which("redis-server") or "/usr/bin/redis-server", "--port", str(self.port),
                                      "--bind", "127.0.0.1", "--dir", self.dir, "--save", "", "--appendonly", "yes",
                                      "--appendfsync", "everysec"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            try:
                redis.Redis(port=self.port).ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def config(n: int) -> dict:
    return {"pools": {"p": {"type": "dynamic", "numbers": [f"+7495{i:07d}" for i in range(n)],
                            "hold_seconds": HOLD_MS // 1000, "cooldown_seconds": COOL_MS // 1000,
                            "on_exhausted": "default"}},
            "rules": [{"name": "all", "pool": "p"}]}


# -- one host process's claims ---------------------------------------------------------------
def _k50(url: str, n: int, host: int) -> Callable[[int], object]:
    engine = Engine.from_config(config(n), state_url=url, warm=False)
    lease = engine.pools.lease

    def claim(i: int) -> object:
        got, _ = lease("p", 0, f"h{host}-{i}", None, int(time.time() * 1000))
        assert got is not None
        return got
    return claim


def _scan(port: int, key: str, host: int) -> Callable[[int], object]:
    r = redis.Redis(port=port)
    script = r.register_script(SCAN_LUA)

    def claim(i: int) -> object:
        got = script(keys=[key], args=[int(time.time() * 1000), HOLD_MS, COOL_MS, f"h{host}-{i}"])
        assert got is not None
        return got
    return claim


def _watch(port: int, key: str, host: int) -> Callable[[int], object]:
    r = redis.Redis(port=port)

    def claim(i: int) -> object:
        while True:
            with r.pipeline() as pipe:
                try:
                    pipe.watch(key)
                    now = int(time.time() * 1000)
                    best, best_until = None, None
                    for number, v in pipe.hgetall(key).items():
                        until = int(v.split(b"|", 1)[0])
                        if until + COOL_MS <= now and (best is None or until < best_until):
                            best, best_until = number, until
                    assert best is not None
                    pipe.multi()
                    pipe.hset(key, best, f"{now + HOLD_MS}|h{host}-{i}")
                    pipe.execute()
                    return best
                except redis.WatchError:
                    continue
    return claim


def _host(kind: str, target: str, n: int, claims: int, host: int, threads: int, start, out) -> None:
    """One host process: ``threads`` threads claiming at once (a service's concurrent requests), the
    host's claims split between them; sends (seconds, latencies, CPU seconds of this process)."""
    port = int(target.split(":")[-1].split("/")[0]) if kind != "k50" else 0
    claim = {"k50": lambda: _k50(target, n, host), "lua-scan": lambda: _scan(port, f"scan:{target}", host),
             "watch-multi": lambda: _watch(port, f"watch:{target}", host)}[kind]()
    lat: list[float] = []
    counter = iter(range(claims))

    def worker() -> None:
        mine = []
        for i in counter:  # next() of a range iterator is atomic under the GIL
            a = time.perf_counter()
            claim(i)
            mine.append(time.perf_counter() - a)
        lat.extend(mine)
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    out.put("ready")
    start.wait()
    cpu0, t0 = time.process_time(), time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    out.put((time.perf_counter() - t0, lat, time.process_time() - cpu0))


def redis_cpu(port: int) -> float:
    """redis-server's CPU seconds so far (user + system, all its threads)."""
    info = redis.Redis(port=port).info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def claims_run(kind: str, server: Server, n: int, claims: int, hosts: int, threads: int = 1) -> dict[str, float]:
    """Claims per second over all hosts, the p99 of one claim (ms), and CPU microseconds per claim
    on the hosts and on redis-server."""
    tag = uuid.uuid4().hex[:8]
    if kind == "k50":
        target = f"redis://127.0.0.1:{server.port}/0?namespace=b{tag}&timeout=5"  # a loaded machine: no default
        Engine.from_config(config(n), state_url=target, warm=False).pools.close()  # set up before timing
    else:
        target = f"{tag}:{server.port}"
        key = ("scan:" if kind == "lua-scan" else "watch:") + target
        redis.Redis(port=server.port).hset(key, mapping={f"+7495{i:07d}": "0|" for i in range(n)})
    ctx = multiprocessing.get_context("fork")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_host, args=(kind, target, n, claims, h, threads, start, out)) for h in range(hosts)]
    for p in procs:
        p.start()
    for _ in procs:  # every host connected and set up
        assert out.get() == "ready"
    rcpu0 = redis_cpu(server.port)
    t0 = time.perf_counter()
    start.set()
    results = [out.get() for _ in procs]
    wall = time.perf_counter() - t0
    rcpu = redis_cpu(server.port) - rcpu0
    for p in procs:
        p.join()
    lat = sorted(x for _, ls, _ in results for x in ls)
    total = hosts * claims
    return {"rate": total / wall, "p99": lat[int(0.99 * (len(lat) - 1))] * 1000,
            "host_us": sum(c for *_, c in results) / total * 1e6, "redis_us": rcpu / total * 1e6}


# -- returning visitors on one host ------------------------------------------------------------
def returning_run(url: str, visitors: int = 10_000, rounds: int = 20) -> dict[str, float]:
    """Returning visitors per second on one host: the local path over Redis, and in process memory."""
    out = {}
    for name, kw in (("redis", {"state_url": url}), ("memory", {})):
        engine = Engine.from_config(config(2 * visitors), **kw)
        t = time.time()
        vs = [{"visitor_id": f"r{i}"} for i in range(visitors)]
        for v in vs:
            while not engine.assign(v, now=t).token:  # a round trip timed out: the default; again
                time.sleep(0.6)
        assign = engine.assign
        best = float("inf")
        for k in range(rounds):
            now = t + 1 + k * 0.01  # inside the hold: each visit renews the lease
            a = time.perf_counter()
            for v in vs:
                assign(v, now)
            best = min(best, time.perf_counter() - a)
        out[name] = visitors / best
        engine.close()
    return out


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--numbers", type=int, default=12000)
    ap.add_argument("--claims", type=int, default=4000, help="k50core's claims per host process (hosts x claims < numbers)")
    ap.add_argument("--peer-claims", type=int, default=200, help="the peers' claims per host process (each scans the pool)")
    ap.add_argument("--concurrency", type=int, default=8, help="claims in flight at once in each host process")
    ap.add_argument("--repeat", type=int, default=3,
                    help="k50core's runs of each row (the fastest is shown: a shared machine's load comes and goes)")
    args = ap.parse_args(argv)
    assert 3 * args.claims <= args.numbers, "the pool must not run out during the run"
    server = Server()
    try:
        print(f"redis-server {server.port} (appendfsync everysec); pool of {args.numbers} numbers, "
              f"{args.claims} claims per host ({args.peer_claims} for the peers); cores: {os.cpu_count()}")
        c = args.concurrency
        runs = (("k50", 1, args.claims), ("k50", c, args.claims), ("lua-scan", c, args.peer_claims),
                ("watch-multi", c, args.peer_claims))
        rows: dict[tuple[str, int, int], dict[str, float]] = {}
        for hosts in (1, 2, 3):
            for kind, threads, claims in runs:
                tries = args.repeat if kind == "k50" else 1  # the peers' runs are long enough
                rows[kind, threads, hosts] = r = max((claims_run(kind, server, args.numbers, claims, hosts, threads)
                                                      for _ in range(tries)), key=lambda x: x["rate"])
                print(f"{kind:12s} hosts={hosts} concurrent={threads:<2d} {r['rate']:10,.0f} claims/s   "
                      f"p99 {r['p99']:7.3f} ms   CPU per claim: hosts {r['host_us']:7.1f} us, "
                      f"redis-server {r['redis_us']:7.1f} us", flush=True)
        for hosts in (1, 2, 3):
            k = rows["k50", c, hosts]["rate"]
            print(f"hosts={hosts}: k50 batched / one at a time {k / rows['k50', 1, hosts]['rate']:5.1f}x   "
                  f"k50 / lua-scan {k / rows['lua-scan', c, hosts]['rate']:6.1f}x   "
                  f"k50 / watch-multi {k / rows['watch-multi', c, hosts]['rate']:6.1f}x")
        r = rows["k50", c, 3]
        print(f"ceiling on {os.cpu_count()} cores at 3 hosts' CPU per claim: redis-server alone "
              f"{1e6 / r['redis_us']:,.0f}/s (one core), hosts and server together "
              f"{(os.cpu_count() or 1) * 1e6 / (r['redis_us'] + r['host_us']):,.0f}/s")
        ret = returning_run(f"redis://127.0.0.1:{server.port}/0?namespace=r{uuid.uuid4().hex[:8]}&timeout=5")
        print(f"returning visitors, one host: {ret['redis']:,.0f}/s over Redis (local path), "
              f"{ret['memory']:,.0f}/s in process memory (compiled); ratio {ret['redis'] / ret['memory']:.2f}")
    finally:
        server.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
