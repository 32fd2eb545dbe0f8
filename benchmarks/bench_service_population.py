"""The service in steady state: a population of visitors who come back, under wrk.

    python benchmarks/bench_service_population.py [--visitors 20000] [--workers 1,2] [--seconds 5]

20,000 visitors first arrive as browsers with the snippet do (a browser's User-Agent, the claim
step), each getting a number from a pool sized by ``k50core.sizing.recommend`` for that traffic
(spread over a day). Then wrk replays them: each request is one of them at random, a page view
(``POST /v1/visit`` with their visitor id and token: a returning visitor) or, three times as
often, a heartbeat (``POST /v1/heartbeat``), as open pages send them. The service is
``k50core serve`` with a SQLite file store (1 and 2 workers on one shared segment), with its
flood protection on (loopback is exempt from the per-address limits; the per-IP request limits are
off, since all of wrk comes from one address). The peer is a bare ASGI hello-world under the same
uvicorn with as many workers; runs alternate, medians of ``--repeats``. Target: >= 50% of hello-world, p99 < 10 ms.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import textwrap
from concurrent.futures import ThreadPoolExecutor

import httpx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_service_load import HELLO, _port, _serve, _wrk  # noqa: E402

from k50core.sizing import recommend  # noqa: E402

BROWSER_UA = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/120.0.0.0 Safari/537.36")
PAGE = "https://shop.example.com/catalog/item?utm_source=yandex&utm_medium=cpc&utm_campaign=winter"

POPULATION_LUA = textwrap.dedent("""
    local ids, tokens, n = {}, {}, 0
    function init(args)
        for line in io.lines(args[1]) do
            local vid, token = line:match("(%S+) (%S+)")
            n = n + 1
            ids[n], tokens[n] = vid, token
        end
        math.randomseed(tonumber(args[2]) or 1)
    end
    local ua = "@UA@"
    request = function()
        local k = math.random(n)
        if math.random(4) == 1 then
            local body = '{"url": "@PAGE@", "visitor_id": "' .. ids[k] .. '", "token": "' .. tokens[k] .. '"}'
            return wrk.format("POST", "/v1/visit", {["Content-Type"] = "application/json", ["User-Agent"] = ua}, body)
        end
        return wrk.format("POST", "/v1/heartbeat", {["Content-Type"] = "application/json", ["User-Agent"] = ua},
                          '{"token": "' .. tokens[k] .. '"}')
    end
""").replace("@UA@", BROWSER_UA).replace("@PAGE@", PAGE)


def pool_size(visitors: int) -> int:
    """The pool `k50core size` recommends for this many visits a day of 4 minutes."""
    return recommend(visitors, 4.0).numbers


def populate(base: str, visitors: int, threads: int = 8) -> list[tuple[str, str]]:
    """Each visitor arrives as the snippet does; (visitor id, token) of each."""
    def some(k: int) -> list[tuple[str, str]]:
        out = []
        with httpx.Client(base_url=base, headers={"User-Agent": BROWSER_UA}, timeout=30) as c:
            for i in range(k, visitors, threads):
                body = {"url": PAGE, "visitor_id": f"pop{i:06d}"}
                got = c.post("/v1/visit", json=body).json()
                if got.get("claim"):
                    got = c.post("/v1/visit", json=dict(body, claim=got["claim"])).json()
                if not got.get("token"):
                    raise RuntimeError(f"visitor {i} got no number: {got}")
                out.append((got["visitor_id"], got["token"]))
        return out
    with ThreadPoolExecutor(threads) as pool:
        return [p for part in pool.map(some, range(threads)) for p in part]


def run(visitors: int, workers: int, seconds: int, connections: int, repeats: int) -> dict[str, float]:
    numbers = pool_size(visitors)
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "hello.py"), "w") as f:
            f.write(HELLO)
        cfg = {"pools": {"site": {"type": "dynamic", "hold_seconds": 900, "cooldown_seconds": 60,
                                  "on_exhausted": "share",
                                  "numbers": [f"+7495{i:07d}" for i in range(1, numbers + 1)]}},
               "rules": [{"name": "all", "pool": "site"}]}
        with open(os.path.join(tmp, "k50.json"), "w") as f:
            json.dump(cfg, f)
        script = os.path.join(tmp, "population.lua")
        with open(script, "w") as f:
            f.write(POPULATION_LUA)
        hello_port, k50_port = _port(), _port()
        servers = [_serve([sys.executable, "-m", "uvicorn", "hello:app", "--port", str(hello_port),  # as many
                           "--workers", str(workers), "--log-level", "warning", "--no-access-log"],  # workers
                          hello_port, tmp)]
        try:
            servers.append(_serve([sys.executable, "-m", "k50core.cli", "serve", "--config", "k50.json",
                                   "--port", str(k50_port), "--store", os.path.join(tmp, "k50.db"),
                                   "--workers", str(workers), "--log-level", "warning", "--no-rate-limits"],
                                  k50_port, tmp))
            base = f"http://127.0.0.1:{k50_port}"
            people = populate(base, visitors)
            population = os.path.join(tmp, "population.txt")
            with open(population, "w") as f:
                f.writelines(f"{vid} {token}\n" for vid, token in people)
            hello_url = f"http://127.0.0.1:{hello_port}/"
            _wrk(hello_url, 2, connections)
            _wrk(base + "/", 2, connections, script, [population, "0"])
            hello, k50 = [], []
            for r in range(repeats):
                hello.append(_wrk(hello_url, seconds, connections))
                k50.append(_wrk(base + "/", seconds, connections, script, [population, str(r + 1)]))
            alive = sum(1 for _vid, token in people[:200]
                        if httpx.post(base + "/v1/heartbeat", json={"token": token},
                                      headers={"User-Agent": BROWSER_UA}).json().get("alive"))
        finally:
            for proc in servers:
                proc.terminate()
                proc.wait()
    out = {"numbers": numbers, "hello_rps": statistics.median(r for r, _ in hello),
           "hello_p99_ms": statistics.median(p for _, p in hello),
           "k50_rps": statistics.median(r for r, _ in k50), "k50_p99_ms": statistics.median(p for _, p in k50),
           "alive_of_200": alive}
    out["share"] = out["k50_rps"] / out["hello_rps"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--visitors", type=int, default=20_000)
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--connections", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    print("| workers | visitors | pool | hello-world req/s (p99) | k50core req/s (p99) | share | target |")
    print("|---|---|---|---|---|---|---|")
    for w in (int(x) for x in a.workers.split(",")):
        r = run(a.visitors, w, a.seconds, a.connections, a.repeats)
        print(f"| {w} | {a.visitors:,} | {r['numbers']} | {r['hello_rps']:,.0f} ({r['hello_p99_ms']:.1f} ms) "
              f"| {r['k50_rps']:,.0f} ({r['k50_p99_ms']:.1f} ms) | **{r['share']:.0%}** | >= 50%, p99 < 10 ms |",
              flush=True)


if __name__ == "__main__":
    main()
