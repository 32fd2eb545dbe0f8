"""Load on the service: `wrk` against POST /v1/visit beside a bare ASGI hello-world, same server.

Both run under uvicorn (one worker, on loopback) in this process's children; wrk (Debian's) drives
each for a few seconds with the same connections and threads. Printed: requests/s and p99 latency
of each, and the service's share of the hello-world's throughput (target >= 50%, p99 < 10 ms).

    python benchmarks/bench_service_load.py [--seconds 10] [--connections 16]
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from typing import Dict, Tuple

import httpx

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # a source checkout's bindings/

HELLO = textwrap.dedent("""
    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": b'{"hello": "world"}'})
""")

# Each request a different visitor, a third of them returning: what a site's traffic looks like.
VISIT_LUA = textwrap.dedent("""
    counter = 0
    request = function()
        counter = counter + 1
        local body = '{"url": "https://shop.example.ru/?utm_campaign=spring_sale", "visitor_id": "lv' ..
                     (counter % 3000) .. '"}'
        return wrk.format("POST", "/v1/visit", {["Content-Type"] = "application/json"}, body)
    end
""")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(args: list, port: int, cwd: str) -> subprocess.Popen:
    proc = subprocess.Popen(args, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT] + sys.path)))
    for _ in range(300):
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"server on port {port} did not start")


def _wrk(url: str, seconds: int, connections: int, script: str = None) -> Tuple[float, float]:
    """(requests/s, p99 latency in ms) from one wrk run."""
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    if script:
        cmd[1:1] = ["-s", script]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    value, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", out).groups()
    p99 = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    if "Non-2xx" in out:
        raise RuntimeError("wrk saw error responses:\n" + out)
    return rps, p99


def compare(seconds: int = 10, connections: int = 16) -> Dict[str, float]:
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is needed: apt-get install wrk")
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "hello.py"), "w") as f:
            f.write(HELLO)
        script = os.path.join(tmp, "visit.lua")
        with open(script, "w") as f:
            f.write(VISIT_LUA)
        out: Dict[str, float] = {}
        hello_port, k50_port = _port(), _port()
        hello = _serve([sys.executable, "-m", "uvicorn", "hello:app", "--port", str(hello_port),
                        "--log-level", "warning", "--no-access-log"], hello_port, tmp)
        try:
            out["hello_rps"], out["hello_p99_ms"] = _wrk(f"http://127.0.0.1:{hello_port}/", seconds, connections)
        finally:
            hello.terminate()
            hello.wait()
        # rate limits are per IP and all of wrk comes from one address: off, so every request assigns
        k50 = _serve([sys.executable, "-m", "k50core.cli", "serve", "--demo", "--port", str(k50_port), "--store",
                      os.path.join(tmp, "k50.db"), "--log-level", "warning", "--no-rate-limits"], k50_port, tmp)
        try:
            out["visit_rps"], out["visit_p99_ms"] = _wrk(f"http://127.0.0.1:{k50_port}/v1/visit", seconds,
                                                         connections, script)
        finally:
            k50.terminate()
            k50.wait()
    out["share_of_hello"] = out["visit_rps"] / out["hello_rps"]
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=16)
    a = ap.parse_args()
    r = compare(a.seconds, a.connections)
    print(f"ASGI hello-world      {r['hello_rps']:>10,.0f} req/s   p99 {r['hello_p99_ms']:.2f} ms")
    print(f"POST /v1/visit        {r['visit_rps']:>10,.0f} req/s   p99 {r['visit_p99_ms']:.2f} ms")
    print(f"share of hello-world  {r['share_of_hello']:.0%} (target >= 50%, p99 < 10 ms)")
