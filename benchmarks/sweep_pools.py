"""Pools at production working sets: 1,000 / 20,000 / 200,000 live leases, store on.

    python benchmarks/sweep_pools.py                     # the sweep, a markdown table, an SVG
    python benchmarks/sweep_pools.py --sizes 1000,20000  # fewer sizes
    python benchmarks/sweep_pools.py --store-cost 100000 # store writes of N leases heartbeating

Every engine keeps what it would persist: nothing is drained or discarded. The clock moves as
in production (each live visitor comes back or heartbeats once per 15 s round, in a shuffled
order), so checkpoints fall inside the timed rounds and their store writes are paid there. The
peer is the lock-based Python pool (baseline_pool.LockedPool) at the same working set, in the
same order, timed in turn with k50core (a busy spell of the machine slows both sides).
Each figure is given twice: the best round (the calls between checkpoints) and the mean over the
rounds (the checkpoints' store writes included, paid by the calls that found them due; the peer
persists nothing). Latency is per call (perf_counter_ns around each one, the timer's own cost
subtracted): p50 / p99 / p99.9 over a pass of single calls each round. The floor is the same
loop doing only what any returning assign must: read the visit's id and its hash (at a large
working set, the cache misses on the caller's own objects).
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from collections.abc import Sequence

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from baseline_pool import LockedPool  # noqa: E402
from svgplot import line_chart  # noqa: E402

from k50core import Engine  # noqa: E402

ROUND_SECONDS = 15.0  # a page heartbeats every 15 s; checkpoints every 30 s (the default)
UAS = [
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.6045.163 "
    "Mobile Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 "
    "Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
    "Safari/537.36 Edg/120.0.2210.61",
]


def numbers(n: int) -> list[str]:
    return [f"+7{495 + i // 10_000_000}{i % 10_000_000:07d}" for i in range(n)]


def config(n: int) -> dict:
    return {"pools": {"p": {"type": "dynamic", "numbers": numbers(n), "hold_seconds": 900,
                            "cooldown_seconds": 300}},
            "rules": [{"name": "paid", "when": {"traffic_type": "paid"}, "pool": "p"},
                      {"name": "organic", "when": {"source": {"$in": ["yandex", "google"]}}, "pool": "p"},
                      {"name": "rest", "pool": "p"}]}


def visits(n: int, seed: int) -> list[dict]:
    """Visits of another shape than the tests': utm and click ids, referrers, varied IPs."""
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        kind = rnd.random()
        if kind < 0.4:
            url = (f"https://shop.example.com/catalog/s{rnd.randrange(40)}?utm_source=yandex&utm_medium=cpc"
                   f"&utm_campaign=c{rnd.randrange(300)}&yclid={rnd.getrandbits(48)}")
            ref = "https://yandex.ru/"
        elif kind < 0.7:
            url, ref = f"https://shop.example.com/p/{rnd.randrange(5000)}", "https://www.google.com/"
        else:
            url, ref = "https://shop.example.com/", None
        v = {"visitor_id": f"{rnd.getrandbits(64):016x}", "url": url, "user_agent": rnd.choice(UAS),
             "ip": f"{rnd.choice([5, 31, 46, 77, 95, 178, 185, 212])}.{rnd.randrange(256)}.{rnd.randrange(256)}."
                   f"{rnd.randrange(1, 255)}"}
        if ref:
            v["referrer"] = ref
        out.append(v)
    return out


def percentiles(samples: list[int], overhead: int) -> tuple[float, float, float]:
    samples.sort()
    n = len(samples)
    return tuple(max(0, samples[min(n - 1, int(q * n))] - overhead) for q in (0.5, 0.99, 0.999))  # type: ignore


def timer_overhead() -> int:
    ns = time.perf_counter_ns
    samples = []
    for _ in range(20_000):
        t = ns()
        samples.append(ns() - t)
    samples.sort()
    return samples[len(samples) // 2]


def engine_for(n: int, store: str, workdir: str) -> Engine:
    path = os.path.join(workdir, f"k50-{n}-{store}.db") if store == "sqlite" else None
    engine = Engine.from_config(config(n), store=path, now=1_000.0)
    engine.warm_up()
    return engine


def sweep_one(n: int, store: str, rounds: int, workdir: str, overhead: int) -> dict[str, float]:
    """One working set: new visitors, then rounds of returns and heartbeats, k50core and peer. A
    small working set gets more rounds (at least 100,000 calls of each kind in all): a round of
    1,000 calls is over too soon to time alone on a shared machine."""
    rounds = max(rounds, rounds * 25_000 // n)
    engine = engine_for(n, store, workdir)
    vs = visits(n, seed=n + 7)
    ns = time.perf_counter_ns
    now = 1_000.0
    new_lat: list[int] = []
    t0 = time.perf_counter()
    assign = engine.assign
    tokens = []
    for k, v in enumerate(vs):  # the pool fills over one round
        at = now + ROUND_SECONDS * k / n
        t = ns()
        got = assign(v, at)
        new_lat.append(ns() - t)
        tokens.append(got.token)
    new_us = (time.perf_counter() - t0) / n * 1e6
    assert all(tokens), "every new visitor got a number"
    # what the new visitors still owe the store: their lease and visit rows not yet batched out,
    # and their visit sessions' report counters, written at the next checkpoint
    t = time.perf_counter()
    engine.checkpoint()
    new_owed_us = (time.perf_counter() - t) / n * 1e6
    peer = LockedPool(numbers(n), 900.0, 300.0)
    ids = [v["visitor_id"] for v in vs]
    for k, vid in enumerate(ids):
        peer.assign(vid, now + ROUND_SECONDS * k / n)
    rnd = random.Random(n)
    order = list(range(n))
    took: dict[str, list[float]] = {k: [] for k in ("assign", "peer_assign", "hb", "hb_many", "peer_renew", "floor")}
    lat: dict[str, list[int]] = {"assign": [], "hb": []}
    heartbeat, heartbeat_many = engine.heartbeat, engine.heartbeat_many
    for r in range(rounds):
        rnd.shuffle(order)
        base = now + ROUND_SECONDS * (r + 1)
        times = [base + ROUND_SECONDS * k / n for k in range(n)]
        batch = [vs[i] for i in order]
        # returning visitors (page views): the whole round timed, then per call
        t = time.perf_counter()
        for v, at in zip(batch, times):
            assign(v, at)
        took["assign"].append((time.perf_counter() - t) / n * 1e9)
        pids = [ids[i] for i in order]
        # the floor under any returning assign: the loop, reading the visit's id and its hash
        t = time.perf_counter()
        for v, _at in zip(batch, times):
            hash(v["visitor_id"])
        took["floor"].append((time.perf_counter() - t) / n * 1e9)
        t = time.perf_counter()
        for vid, at in zip(pids, times):
            peer.assign(vid, at)
        took["peer_assign"].append((time.perf_counter() - t) / n * 1e9)
        toks = [tokens[i] for i in order]
        hb_times = [at + ROUND_SECONDS / 2 for at in times]
        t = time.perf_counter()
        for tok, at in zip(toks, hb_times):
            heartbeat(tok, at)
        took["hb"].append((time.perf_counter() - t) / n * 1e9)
        t = time.perf_counter()
        for vid, at in zip(pids, hb_times):
            peer.renew(vid, at)
        took["peer_renew"].append((time.perf_counter() - t) / n * 1e9)
        # heartbeat_many: batches of 500 pages, as a service collecting them would send
        many_times = [at + ROUND_SECONDS / 4 for at in times]
        t = time.perf_counter()
        for k in range(0, n, 500):
            heartbeat_many(toks[k:k + 500], many_times[k])
        took["hb_many"].append((time.perf_counter() - t) / n * 1e9)
        # latency of single calls, a shorter pass at the round's end
        sample = order[: min(n, 20_000)] if r < 6 else []  # latency: the first six rounds
        for i in sample:
            at = base + ROUND_SECONDS * 0.99
            t = ns()
            assign(vs[i], at)
            lat["assign"].append(ns() - t)
            t = ns()
            heartbeat(tokens[i], at)
            lat["hb"].append(ns() - t)
    alive = engine.stats(now=now + ROUND_SECONDS * (rounds + 1))["pools"]["p"]["leased"]
    engine.close()
    out: dict[str, float] = {k: min(v) for k, v in took.items()}
    out.update({k + "_mean": sum(v) / len(v) for k, v in took.items()})
    out["new_us"] = new_us
    out["new_whole_us"] = new_us + new_owed_us
    out["alive"] = alive
    out["new_p"] = percentiles(new_lat, overhead)
    out["assign_p"] = percentiles(lat["assign"], overhead)
    out["hb_p"] = percentiles(lat["hb"], overhead)
    return out


def store_cost(n: int, seconds: float, workdir: str) -> tuple[float, float, int]:
    """n live leases heartbeating every 15 s for ``seconds`` of clock: the share of one core the
    store writes took (their time over the clock's), the longest single write (an embedding
    engine pays a checkpoint inside the call that finds it due; the service spreads it), and the
    rows written."""
    engine = engine_for(n, "sqlite", workdir)
    vs = visits(n, seed=99)
    tokens = [engine.assign(v, 1_000.0 + ROUND_SECONDS * k / n).token for k, v in enumerate(vs)]
    engine.flush()
    real = engine.store.save_writes
    spent, rows, longest = [0.0], [0], [0.0]

    def timed(starts, events, *a, **kw):
        t = time.perf_counter()
        try:
            return real(starts, events, *a, **kw)
        finally:
            took = time.perf_counter() - t
            spent[0] += took
            longest[0] = max(longest[0], took)
            rows[0] += len(events)
    engine.store.save_writes = timed
    rounds = int(seconds / ROUND_SECONDS)
    for r in range(rounds):
        base = 1_000.0 + ROUND_SECONDS * (r + 1)
        for k in range(0, n, 500):
            engine.heartbeat_many(tokens[k:k + 500], base + ROUND_SECONDS * k / n)
        engine.flush()  # what a host does every second or so: starts and the log, no renewals
    engine.store.save_writes = real
    engine.close()
    return spent[0] / (rounds * ROUND_SECONDS), longest[0], rows[0]


COLD = """
import sys, time
t = time.perf_counter()
from k50core import Engine
sys.path.insert(0, sys.argv[1])
from sweep_pools import config, visits
imported = time.perf_counter()
engine = Engine.from_config(config(100))
built = time.perf_counter()
v = visits(2, seed=5)
engine.decide(v[0], now=1000.0)
decided = time.perf_counter()
engine.assign(v[1], now=1000.0)
assigned = time.perf_counter()
print(imported - t, built - imported, decided - built, assigned - decided)
"""


def latency(n: int, workdir: str, overhead: int) -> list[tuple[str, tuple[float, float, float]]]:
    """Single calls in steady state (a SQLite file store, n live leases): decide and attribute."""
    engine = engine_for(n, "sqlite", workdir)
    vs = visits(n, seed=3)
    shown = [engine.assign(v, 1_000.0 + ROUND_SECONDS * k / n) for k, v in enumerate(vs)]
    ns = time.perf_counter_ns
    decide, attribute = [], []
    fresh = visits(20_000, seed=11)
    for v in fresh:
        t = ns()
        engine.decide(v, now=1_020.0)
        decide.append(ns() - t)
    for k in range(2_000):
        a = shown[(k * 7919) % n]
        call = {"call_id": f"c{k}", "number": a.number, "caller": f"+7916{k:07d}", "started_at": 1_030.0 + k / 100,
                "duration_seconds": 60, "answered": True}
        t = ns()
        engine.attribute(call, now=1_031.0 + k / 100)
        attribute.append(ns() - t)
    engine.close()
    return [("decide (enrichment + rules)", percentiles(decide, overhead)),
            ("attribute (a SQLite file: on disk before it returns)", percentiles(attribute, overhead))]


def cold_start() -> tuple[float, float, float, float]:
    import subprocess
    done = subprocess.run([sys.executable, "-c", COLD, os.path.dirname(os.path.abspath(__file__))],
                          capture_output=True, text=True, check=True)
    return tuple(float(x) for x in done.stdout.split())  # type: ignore


def main(argv: Sequence[str] = ()) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,20000,200000")
    ap.add_argument("--stores", default="memory,sqlite")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--svg", default=os.path.join(os.path.dirname(__file__), "results", "pools_sweep.svg"))
    ap.add_argument("--store-cost", type=int, default=0, metavar="N")
    ap.add_argument("--latency", type=int, default=0, metavar="N", help="decide/attribute latency at N leases")
    args = ap.parse_args(argv or None)
    workdir = tempfile.mkdtemp(prefix="k50-sweep-")
    if args.latency:
        overhead = timer_overhead()
        print("| single call | p50 | p99 | p99.9 |\n|---|---|---|---|")
        for name, (p50, p99, p999) in latency(args.latency, workdir, overhead):
            print(f"| {name} | {p50 / 1000:.1f} us | {p99 / 1000:.1f} us | {p999 / 1000:.1f} us |")
        imp, built, decided, assigned = cold_start()
        print(f"\ncold start, a fresh process: import {imp * 1000:.0f} ms, from_config {built * 1000:.0f} ms "
              f"(the User-Agent parser loaded), first decide {decided * 1e6:.0f} us, first new visitor "
              f"{assigned * 1e6:.0f} us")
        return
    if args.store_cost:
        share, longest, rows = store_cost(args.store_cost, 120.0, workdir)
        print(f"{args.store_cost:,} live leases heartbeating every 15 s, 120 s of clock: store writes "
              f"{share * 100:.2f}% of a core ({rows:,} rows, {share * 120 / max(rows, 1) * 1e6:.1f} us a row); "
              f"the longest write (one checkpoint) {longest * 1000:.0f} ms")
        return
    overhead = timer_overhead()
    sizes = [int(s) for s in args.sizes.split(",")]
    results: dict[tuple[int, str], dict[str, float]] = {}
    print("| live leases | store | returning `assign`: best / mean | peer | ratios | floor | `heartbeat_many`: best / mean "
          "| peer renew | ratios | `heartbeat` (one) | new visitor: the call / with what it owes the store | p50 / p99 / p99.9 returning "
          "| p50 / p99 / p99.9 heartbeat | p50 / p99 / p99.9 new |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for n in sizes:
        for store in args.stores.split(","):
            r = results[(n, store)] = sweep_one(n, store, args.rounds, workdir, overhead)
            p = lambda key, unit=1: " / ".join(f"{x / unit:,.0f}" for x in r[key])  # noqa: E731, B023 (used in this round)
            print(f"| {n:,} ({r['alive']:,} alive) | {store} | {r['assign']:.0f} / {r['assign_mean']:.0f} ns "
                  f"| {r['peer_assign']:.0f} ns | **{r['peer_assign'] / r['assign']:.1f}x** / "
                  f"{r['peer_assign_mean'] / r['assign_mean']:.1f}x | {r['floor']:.0f} ns "
                  f"| {r['hb_many']:.0f} / {r['hb_many_mean']:.0f} ns "
                  f"| {r['peer_renew']:.0f} ns | **{r['peer_renew'] / r['hb_many']:.1f}x** / "
                  f"{r['peer_renew_mean'] / r['hb_many_mean']:.1f}x | {r['hb']:.0f} ns | {r['new_us']:.1f} / {r['new_whole_us']:.1f} us "
                  f"| {p('assign_p')} ns | {p('hb_p')} ns | {p('new_p', 1000)} us |", flush=True)
    if args.svg:
        os.makedirs(os.path.dirname(args.svg), exist_ok=True)
        series = {}
        for store in args.stores.split(","):
            series[f"assign ({store})"] = [1e9 / results[(n, store)]["assign"] for n in sizes]
            series[f"heartbeat_many ({store})"] = [1e9 / results[(n, store)]["hb_many"] for n in sizes]
        series["peer assign (memory)"] = [1e9 / results[(n, args.stores.split(",")[0])]["peer_assign"] for n in sizes]
        with open(args.svg, "w") as f:
            f.write(line_chart("Returning visitors and heartbeats against live leases", "live leases",
                               "calls per second (one core)", sizes, series))
        print(f"\nwrote {args.svg}")


if __name__ == "__main__":
    main(sys.argv[1:])
