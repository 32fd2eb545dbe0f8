"""Load on the service: `wrk` against POST /v1/visit beside a bare ASGI hello-world, same server.

Both run under uvicorn (one worker, on loopback) in this process's children; wrk (Debian's) drives
each with the same connections and threads, runs alternating, medians of ``--repeats``. The service
is ``k50core serve --demo`` (the README's command, its SQLite file store: a new lease is in the
engine's journal before its number is shown, in the store within a second). Printed: requests/s and p99 latency of each, and the service's share
of the hello-world's throughput (target >= 50%, p99 < 10 ms).

    python benchmarks/bench_service_load.py [--seconds 5] [--connections 16] [--repeats 3]
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Sequence

import httpx

HELLO = textwrap.dedent("""
    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": b'{"hello": "world"}'})
""")

# A visitor views three pages: the first request of each visitor id is a new visitor (enrichment,
# rules and, with the service's flood protection, a claim ticket: wrk does not take the claim step,
# so these visitors take no number; bench_service_population.py replays visitors who did), the
# next two are the same visit again. Every
# wrk thread and every run has its own ids (the run's prefix comes as a script argument).
VISIT_LUA = textwrap.dedent("""
    local threads = 0
    function setup(thread)
        threads = threads + 1
        thread:set("tid", threads)
    end
    function init(args)
        prefix = args[1] or "r"
        counter = 0
    end
    request = function()
        counter = counter + 1
        local body = '{"url": "https://shop.example.ru/?utm_campaign=spring_sale", "visitor_id": "' ..
                     prefix .. '-' .. tid .. '-' .. math.floor(counter / 3) .. '"}'
        return wrk.format("POST", "/v1/visit", {["Content-Type"] = "application/json",
                          ["User-Agent"] = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0 Safari/537.36"}, body)
    end
""")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(args: list, port: int, cwd: str) -> subprocess.Popen:
    proc = subprocess.Popen(args, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    for _ in range(300):
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"server on port {port} did not start")


def _wrk(url: str, seconds: int, connections: int, script: str | None = None,
         args: Sequence[str] = ()) -> tuple[float, float]:
    """(requests/s, p99 latency in ms) from one wrk run."""
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    if script:
        cmd[1:1] = ["-s", script]
    if args:
        cmd += ["--", *args]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    value, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", out).groups()
    p99 = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    if "Non-2xx" in out:
        raise RuntimeError("wrk saw error responses:\n" + out)
    return rps, p99


def compare(seconds: int = 5, connections: int = 10, repeats: int = 3) -> dict[str, float]:
    """Both servers up at once; wrk runs alternate between them (after a warm-up run each), so a
    noisy neighbour on this shared machine hits both alike; the medians are kept."""
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is needed: apt-get install wrk")
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "hello.py"), "w") as f:
            f.write(HELLO)
        script = os.path.join(tmp, "visit.lua")
        with open(script, "w") as f:
            f.write(VISIT_LUA)
        hello_port, k50_port = _port(), _port()
        servers = [_serve([sys.executable, "-m", "uvicorn", "hello:app", "--port", str(hello_port),
                           "--log-level", "warning", "--no-access-log"], hello_port, tmp)]
        try:
            # rate limits are per IP and all of wrk comes from one address: off, so every request assigns
            servers.append(_serve([sys.executable, "-m", "k50core.cli", "serve", "--demo", "--port", str(k50_port),
                                   "--store", os.path.join(tmp, "k50.db"), "--log-level", "warning",
                                   "--no-rate-limits"], k50_port, tmp))
            hello_url, visit_url = f"http://127.0.0.1:{hello_port}/", f"http://127.0.0.1:{k50_port}/v1/visit"
            _wrk(hello_url, 2, connections)
            _wrk(visit_url, 2, connections, script, ["warm"])
            hello, visit = [], []
            for run in range(repeats):
                hello.append(_wrk(hello_url, seconds, connections))
                visit.append(_wrk(visit_url, seconds, connections, script, [f"run{run}"]))
        finally:
            for proc in servers:
                proc.terminate()
                proc.wait()
    out = {"hello_rps": statistics.median(r for r, _ in hello), "hello_p99_ms": statistics.median(p for _, p in hello),
           "visit_rps": statistics.median(r for r, _ in visit), "visit_p99_ms": statistics.median(p for _, p in visit)}
    out["share_of_hello"] = out["visit_rps"] / out["hello_rps"]
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--connections", type=int, default=10)  # wrk's own default
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    r = compare(a.seconds, a.connections, a.repeats)
    print(f"ASGI hello-world      {r['hello_rps']:>10,.0f} req/s   p99 {r['hello_p99_ms']:.2f} ms")
    print(f"POST /v1/visit        {r['visit_rps']:>10,.0f} req/s   p99 {r['visit_p99_ms']:.2f} ms")
    print(f"share of hello-world  {r['share_of_hello']:.0%} (target >= 50%, p99 < 10 ms)")
