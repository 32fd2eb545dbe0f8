"""New visitors through the service with the pools in Redis, before and after their claims left
the event loop, under wrk.

    python benchmarks/bench_service_redis.py [--before REV] [--workers 1,2] [--seconds 5] [--repeats 3]

``k50core serve --state-url redis://… --store FILE.db --no-rate-limits`` (1 and 2 workers) on one
private redis-server with AOF (``appendfsync everysec``), a pool of 20,000 numbers (hold 5 s,
cooldown 1 s, so it never runs out). wrk posts new visitors as the snippet does with the flood
protection on: a browser's first ``POST /v1/visit`` gets a claim ticket (no Redis), the second, with
the ticket, claims a number (one claim in Redis). Every request of the run is a new visitor's.

"before" is the code at ``--before`` (default: the merge base with main), run from a ``git archive``
of it beside this build's compiled core (the .pyx files must be the same), "after" this checkout.
Both services are up at once and the wrk runs alternate between them (after a warm-up run each).
Per run: requests/s and p99 from wrk; claims made in Redis (the pool's ``claims`` counter in
``/v1/pools``) per second; and ``FCALL`` commands Redis served (``INFO commandstats``) per claim,
which is below 1 when claims go to Redis together.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap

import httpx
import redis

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_redis import Server  # noqa: E402
from bench_service_load import _port, _serve, _wrk  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEY = "bench-key"
BROWSER_UA = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/120.0.0.0 Safari/537.36")
PAGE = "https://shop.example.com/catalog/item?utm_source=yandex&utm_medium=cpc&utm_campaign=winter"

# Each wrk thread: a new visitor's first visit, or (as soon as one came back) the claim of a ticket
# it was given; ids are the run's prefix, the thread and a counter.
NEW_VISITORS_LUA = textwrap.dedent("""
    local threads = 0
    function setup(thread)
        threads = threads + 1
        thread:set("tid", threads)
    end
    function init(args)
        prefix = args[1] or "r"
        counter, pending, waiting = 0, {}, 0
    end
    local headers = {["Content-Type"] = "application/json", ["User-Agent"] = "@UA@"}
    request = function()
        local body
        if waiting > 0 then
            local p = pending[waiting]
            pending[waiting] = nil
            waiting = waiting - 1
            body = '{"url": "@PAGE@", "visitor_id": "' .. p[1] .. '", "claim": "' .. p[2] .. '"}'
        else
            counter = counter + 1
            body = '{"url": "@PAGE@", "visitor_id": "' .. prefix .. '-' .. tid .. '-' .. counter .. '"}'
        end
        return wrk.format("POST", "/v1/visit", headers, body)
    end
    response = function(status, headers, body)
        local claim = body:match('"claim":"([^"]+)"')
        if claim then
            waiting = waiting + 1
            pending[waiting] = {body:match('"visitor_id":"([^"]+)"'), claim}
        end
    end
""").replace("@UA@", BROWSER_UA).replace("@PAGE@", PAGE)


def config(path: str, numbers: int) -> None:
    with open(path, "w") as f:
        f.write("site: {default_number: '+74951234567', region: RU}\n")
        f.write("pools:\n  paid:\n    type: dynamic\n    hold_seconds: 5\n    cooldown_seconds: 1\n"
                "    default_number: '+74950000099'\n    numbers:\n")
        for i in range(numbers):
            f.write(f"      - '+7495{2000000 + i:07d}'\n")
        f.write("rules:\n  - {name: paid, when: {query.utm_medium: cpc}, pool: paid}\n")


def before_tree(rev: str, tmp: str) -> str:
    """The code at ``rev`` as an importable tree beside this build's compiled core."""
    changed = subprocess.run(["git", "-C", ROOT, "diff", "--quiet", rev, "--", "src/k50core/*.pyx",
                              "src/k50core/*.pxi", "src/k50core/*.pxd", "src/k50core/_csrc"])
    if changed.returncode != 0:
        raise RuntimeError(f"the compiled core changed since {rev}: build that tree to compare")
    tree = os.path.join(tmp, "before")
    os.makedirs(tree)
    archive = subprocess.run(["git", "-C", ROOT, "archive", rev], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", tree], input=archive, check=True)
    for name in os.listdir(os.path.join(ROOT, "src", "k50core")):
        if name.endswith(".so"):
            shutil.copy(os.path.join(ROOT, "src", "k50core", name), os.path.join(tree, "src", "k50core", name))
    os.symlink(os.path.join(tree, "bindings"), os.path.join(tree, "src", "k50core", "bindings"))
    return os.path.join(tree, "src")


def serve(src: str | None, port: int, tmp: str, cfg: str, url: str, workers: int, name: str) -> subprocess.Popen:
    env_path = [src] if src else []
    args = [sys.executable, "-m", "k50core.cli", "serve", "--config", cfg, "--port", str(port),
            "--store", os.path.join(tmp, f"{name}.db"), "--state-url", url, "--workers", str(workers),
            "--api-key", KEY, "--no-rate-limits", "--log-level", "warning"]
    old = sys.path[:]
    sys.path[:0] = env_path  # _serve passes sys.path on as PYTHONPATH
    try:
        return _serve(args, port, tmp)
    finally:
        sys.path[:] = old


def claims(port: int) -> int:
    pools = httpx.get(f"http://127.0.0.1:{port}/v1/pools", headers={"X-API-Key": KEY}, timeout=30).json()["pools"]
    return int(pools["paid"]["claims"])


def fcalls(r: redis.Redis) -> int:
    return int(r.info("commandstats").get("cmdstat_fcall", {}).get("calls", 0))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", default=None, help="the revision to compare with (default: merge-base with main)")
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--numbers", type=int, default=20_000)
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install wrk")
    rev = args.before or subprocess.run(["git", "-C", ROOT, "merge-base", "HEAD", "main"], capture_output=True,
                                        text=True, check=True).stdout.strip()
    server = Server()
    r = redis.Redis(port=server.port)
    print(f"redis-server {server.port} (appendfsync everysec); before: {rev[:10]}, after: this checkout; "
          f"{args.connections} connections, {args.seconds} s a run, median of {args.repeats}", flush=True)
    print("| workers | build | requests/s | p99 | claims/s | FCALLs per claim |")
    print("|---|---|---|---|---|---|")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            src = before_tree(rev, tmp)
            script = os.path.join(tmp, "new.lua")
            with open(script, "w") as f:
                f.write(NEW_VISITORS_LUA)
            cfg = os.path.join(tmp, "site.yaml")
            config(cfg, args.numbers)
            for workers in [int(w) for w in args.workers.split(",")]:
                builds = {"before": src, "after": None}
                procs, ports = {}, {}
                try:
                    for name, tree in builds.items():
                        ports[name] = _port()
                        url = f"redis://127.0.0.1:{server.port}/0?namespace={name}{workers}"
                        procs[name] = serve(tree, ports[name], tmp, cfg, url, workers, f"{name}{workers}")
                    results: dict[str, list[tuple[float, float, float, float]]] = {n: [] for n in builds}
                    for name in builds:  # warm-up
                        _wrk(f"http://127.0.0.1:{ports[name]}/v1/visit", 2, args.connections, script, ["warm"])
                    for run in range(args.repeats):
                        for name in builds:
                            port = ports[name]
                            c0, f0 = claims(port), fcalls(r)
                            rps, p99 = _wrk(f"http://127.0.0.1:{port}/v1/visit", args.seconds, args.connections,
                                            script, [f"{name}{run}"])
                            c1, f1 = claims(port), fcalls(r)
                            made = max(1, c1 - c0)
                            results[name].append((rps, p99, made / args.seconds, (f1 - f0) / made))
                    for name in builds:
                        rows = results[name]
                        med = [statistics.median(x[i] for x in rows) for i in range(4)]
                        print(f"| {workers} | {name} | {med[0]:,.0f} | {med[1]:.1f} ms | {med[2]:,.0f} | "
                              f"{med[3]:.2f} |", flush=True)
                finally:
                    for proc in procs.values():
                        proc.terminate()
                        proc.wait(30)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
