"""Pools in Redis: k50core's functions beside two straightforward peers, on one private redis-server.

    python benchmarks/bench_redis.py [--numbers 5000] [--claims 1500] [--peer-claims 200]

Claims per second and the p99 of one claim with 1, 2 and 3 host processes on one Redis
(appendonly, appendfsync everysec, as in production), for

* k50core: ``RedisPools.lease`` (one FCALL: the free number idle longest from a sorted set);
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


def _host(kind: str, target: str, n: int, claims: int, host: int, start, out) -> None:
    port = int(target.split(":")[-1].split("/")[0]) if kind != "k50" else 0
    claim = {"k50": lambda: _k50(target, n, host), "lua-scan": lambda: _scan(port, f"scan:{target}", host),
             "watch-multi": lambda: _watch(port, f"watch:{target}", host)}[kind]()
    start.wait()
    lat = []
    t0 = time.perf_counter()
    for i in range(claims):
        a = time.perf_counter()
        claim(i)
        lat.append(time.perf_counter() - a)
    out.put((time.perf_counter() - t0, lat))


def claims_run(kind: str, server: Server, n: int, claims: int, hosts: int) -> tuple[float, float]:
    """(claims per second over all hosts, p99 of one claim in ms)."""
    tag = uuid.uuid4().hex[:8]
    if kind == "k50":
        target = f"redis://127.0.0.1:{server.port}/0?namespace=b{tag}"
        Engine.from_config(config(n), state_url=target, warm=False).pools.close()  # set up before timing
    else:
        target = f"{tag}:{server.port}"
        key = ("scan:" if kind == "lua-scan" else "watch:") + target
        redis.Redis(port=server.port).hset(key, mapping={f"+7495{i:07d}": "0|" for i in range(n)})
    ctx = multiprocessing.get_context("fork")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_host, args=(kind, target, n, claims, h, start, out)) for h in range(hosts)]
    for p in procs:
        p.start()
    time.sleep(1.0 if kind == "k50" else 0.3)  # every host connected and set up
    t0 = time.perf_counter()
    start.set()
    results = [out.get() for _ in procs]
    wall = time.perf_counter() - t0
    for p in procs:
        p.join()
    lat = sorted(x for _, ls in results for x in ls)
    return hosts * claims / wall, lat[int(0.99 * (len(lat) - 1))] * 1000


# -- returning visitors on one host ------------------------------------------------------------
def returning_run(url: str, visitors: int = 10_000, rounds: int = 20) -> dict[str, float]:
    """Returning visitors per second on one host: the local path over Redis, and in process memory."""
    out = {}
    for name, kw in (("redis", {"state_url": url}), ("memory", {})):
        engine = Engine.from_config(config(2 * visitors), **kw)
        t = time.time()
        vs = [{"visitor_id": f"r{i}"} for i in range(visitors)]
        for v in vs:
            engine.assign(v, now=t)
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
    ap.add_argument("--numbers", type=int, default=5000)
    ap.add_argument("--claims", type=int, default=1500, help="k50core's claims per host process (hosts x claims < numbers)")
    ap.add_argument("--peer-claims", type=int, default=200, help="the peers' claims per host process (each scans the pool)")
    args = ap.parse_args(argv)
    assert 3 * args.claims <= args.numbers, "the pool must not run out during the run"
    server = Server()
    try:
        print(f"redis-server {server.port} (appendfsync everysec); pool of {args.numbers} numbers, "
              f"{args.claims} claims per host ({args.peer_claims} for the peers); cores: {os.cpu_count()}")
        rows: dict[tuple[str, int], tuple[float, float]] = {}
        for hosts in (1, 2, 3):
            for kind in ("k50", "lua-scan", "watch-multi"):
                claims = args.claims if kind == "k50" else args.peer_claims
                rows[kind, hosts] = claims_run(kind, server, args.numbers, claims, hosts)
                rate, p99 = rows[kind, hosts]
                print(f"{kind:12s} hosts={hosts}  {rate:10,.0f} claims/s   p99 {p99:7.3f} ms")
        for hosts in (1, 2, 3):
            k = rows["k50", hosts][0]
            print(f"hosts={hosts}: k50 / lua-scan {k / rows['lua-scan', hosts][0]:6.1f}x   "
                  f"k50 / watch-multi {k / rows['watch-multi', hosts][0]:6.1f}x")
        ret = returning_run(f"redis://127.0.0.1:{server.port}/0?namespace=r{uuid.uuid4().hex[:8]}")
        print(f"returning visitors, one host: {ret['redis']:,.0f}/s over Redis (local path), "
              f"{ret['memory']:,.0f}/s in process memory (compiled); ratio {ret['redis'] / ret['memory']:.2f}")
    finally:
        server.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
