"""k50core beside its peers, in one process; prints a table of ratios.

    python benchmarks/side_by_side.py            # full run
    python benchmarks/side_by_side.py --quick    # fewer repeats
    python benchmarks/side_by_side.py --markdown # the README table

Each figure is the best of several timed repeats (time.perf_counter), the
repeats of k50core and its peer taken in turn, so a busy spell of the machine
inflates both sides of a ratio rather than one.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import rule_engine  # noqa: E402
import rulesets  # noqa: E402
from _build import matcher  # noqa: E402
from growthbook.core import evalCondition  # noqa: E402

import k50core  # noqa: E402
from k50core import Engine  # noqa: E402
from k50core.cli import DEMO_VISITS, demo_config_path  # noqa: E402
from k50core.rules import compile_condition  # noqa: E402

Row = tuple[str, float, str, float, str]  # what, k50 ns, peer name, peer ns, target


def best_ns(fn: Callable[[], object], per_call: int, repeats: int) -> float:
    """Best time of one call of ``fn`` divided by the operations it performs."""
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best / per_call * 1e9


def best_each(fns: list[tuple[Callable[[], object], int]], repeats: int) -> list[float]:
    """best_ns() of several functions, their repeats taken in turn (both sides of a ratio
    then see the same busy and quiet spells of the machine)."""
    best = [float("inf")] * len(fns)
    for _ in range(repeats):
        for k, (fn, _per_call) in enumerate(fns):
            t = time.perf_counter()
            fn()
            best[k] = min(best[k], time.perf_counter() - t)
    return [b / per_call * 1e9 for b, (_fn, per_call) in zip(best, fns)]


def loop(fn: Callable, arg: object, n: int) -> Callable[[], None]:
    def run() -> None:
        for _ in range(n):
            fn(arg)
    return run


def conditions(repeats: int) -> list[Row]:
    cond, attrs, text = rulesets.one_condition()
    fast = compile_condition(cond)
    rule = rule_engine.Rule(text, context=rule_engine.Context(resolver=rule_engine.resolve_item))
    assert fast.matches(attrs) and evalCondition(attrs, cond) and rule.matches(attrs)
    k50, gb, re_, unc = best_each([
        (loop(fast.matches, attrs, 100_000), 100_000),
        (lambda: [evalCondition(attrs, cond) for _ in range(5_000)], 5_000),
        (loop(rule.matches, attrs, 500), 500),
        (lambda: [k50core.evaluate(cond, attrs) for _ in range(2_000)], 2_000),
    ], repeats)
    return [
        ("one 5-clause condition (compiled once)", k50, "growthbook evalCondition", gb, ">= 20x"),
        ("one 5-clause condition (compiled once)", k50, "rule-engine Rule.matches", re_, ""),
        ("k50core.evaluate (compiles every call)", unc, "growthbook evalCondition", gb, ""),
    ]


def first_match(repeats: int) -> list[Row]:
    rules, visits = rulesets.rules(1000), rulesets.visits(3000)
    fast = matcher(rules, rulesets.SAVED_GROUPS)

    def gb_first(attrs: dict) -> int:
        for i, c in enumerate(rules):
            if evalCondition(attrs, c, rulesets.SAVED_GROUPS):
                return i
        return -1

    sample = visits[:30]
    assert fast.first_match_many(sample) == [gb_first(v) for v in sample]
    k50, gb = best_each([(lambda: fast.first_match_many(visits), len(visits)),
                         (lambda: [gb_first(v) for v in sample], len(sample))], repeats)
    return [("first match over 1,000 rules", k50, "growthbook loop", gb, ">= 1000x")]


def throughput(repeats: int) -> list[Row]:
    rules, visits = rulesets.rules(1000), rulesets.visits(3000)
    engine_1000 = Engine.from_config({"pools": {"p": {"type": "static", "numbers": ["+74950000100"]}},
                                      "lists": rulesets.SAVED_GROUPS,
                                      "rules": [{"name": f"r{i}", "when": c, "pool": "p"} for i, c in enumerate(rules)]})
    demo = Engine.from_config(demo_config_path())
    demo_attrs = [demo.attributes(v, now=0) for v in DEMO_VISITS] * 400
    big = best_ns(lambda: engine_1000.match_many(visits), len(visits), repeats)
    small = best_ns(lambda: demo.match_many(demo_attrs), len(demo_attrs), repeats)
    decide = best_ns(lambda: demo.decide_many(DEMO_VISITS * 20, 0.0), len(DEMO_VISITS) * 20, repeats)
    return [
        ("Engine.match_many, 1,000 rules (decisions/s)", big, "", 0.0, ">= 1M/s"),
        ("Engine.match_many, demo config (decisions/s)", small, "", 0.0, ">= 1M/s"),
        ("Engine.decide_many incl. enrichment (decisions/s)", decide, "", 0.0, ""),
    ]


def peers_of_helpers() -> list[Row]:
    rows: list[Row] = []
    try:
        import bench_geoip
        g = bench_geoip.compare()
        rows.append(("GeoIP region lookup", g["k50core_ns"], "maxminddb Reader.get", g["maxminddb_ns"], ">= 40x"))
    except ImportError:
        pass
    try:
        import bench_device
        d = bench_device.compare()
        peer = "user_agents.parse"
        rows.append(("device_type, repeated UA (one call)", d["compiled_repeat_single_ns"], peer, d["user_agents_repeat_ns"], ">= 1000x"))
        rows.append(("device_types, repeated UA (batch, per UA)", d["compiled_repeat_batch_ns_per_item"], peer, d["user_agents_repeat_ns"], ">= 1000x"))
        rows.append(("device_types, new UAs (cold)", d["compiled_new_cold_ns"], peer, d["user_agents_new_ns"], "as fast as possible"))
    except ImportError:
        pass
    return rows


def pools() -> list[Row]:
    import bench_pools
    p = bench_pools.compare()
    peer = "lock-based Python pool"
    rows: list[Row] = [
        ("heartbeat (one call), 1,000 live leases, SQLite file store", p["k50_heartbeat_ns"], peer + " renew", p["peer_renew_ns"], ""),
        ("heartbeat_many (per token), same", p["k50_heartbeat_many_ns"], peer + " renew", p["peer_renew_ns"], ">= 20x"),
        ("lease log: drain_leases, per renewal event", p["k50_drain_per_event_ns"], "", 0.0, "off the hot path"),
        ("returning visitor: Engine.assign, whole, same", p["k50_returning_assign_ns"], peer + " bare assign", p["peer_returning_assign_ns"], ">= 5x"),
        ("returning visitors: Engine.assign_many (per visit)", p["k50_returning_assign_many_ns"], peer + " bare assign", p["peer_returning_assign_ns"], ">= 5x, >= 1M/s"),
        ("new visitor: Engine.assign, whole (2,000-number pool)", p["k50_fresh_assign_ns"], peer + " bare assign", p["peer_fresh_assign_ns"], ""),
    ]
    for n in (1, 2, 4):
        rows.append((f"returning assigns/s, {n} process(es) on one shared segment", 1e9 / p[f"scaling_{n}_per_s"], "", 0.0, ""))
    for n in (2_000, 10_000):
        rows.append((f"claim of the number idle longest, {n:,} numbers each leased before", p[f"steady_claim_{n}_ns"],
                     "", 0.0, ""))
    return rows


def attribution() -> list[Row]:
    import bench_attribution
    a = bench_attribution.compare()
    return [
        ("Engine.attribute, SQLite file (durable commit each)", 1e9 / a["sqlite_file_per_s"], "", 0.0, ""),
        ("Engine.attribute, SQLite in memory", 1e9 / a["sqlite_memory_per_s"], "", 0.0, ""),
        ("Engine.attribute, PostgreSQL (local socket)", 1e9 / a["postgresql_per_s"], "", 0.0, ""),
    ]


def simulator() -> list[Row]:
    import bench_simulate
    s = bench_simulate.compare(repeats=2)
    return [(f"simulate one day of 3,000 visits ({k})", v * 1e9, "", 0.0, "well under a minute")
            for k, v in s.items() if k.startswith("compiled")]


def fmt_ns(ns: float) -> str:
    if ns >= 1e9:
        return f"{ns / 1e9:.2f} s"
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    return f"{ns / 1000:.2f} µs" if ns >= 1000 else f"{ns:.0f} ns"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    repeats = 3 if args.quick else 7
    rows = conditions(repeats) + first_match(repeats) + throughput(repeats) + peers_of_helpers() + pools() \
        + attribution() + simulator()
    print(f"k50core {k50core.__version__} ({k50core.IMPLEMENTATION} build), Python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs\n")
    print("| what | k50core | peer | peer time | ratio | target |")
    print("|---|---|---|---|---|---|")
    for what, k50, peer, peer_ns, target in rows:
        if peer:
            r = peer_ns / k50
            ratio = f"**{r:,.0f}×**" if r >= 10 else f"**{r:.1f}×**" if r >= 1 else f"{r:.2f}× ({k50 / peer_ns:.0f}× slower)"
            print(f"| {what} | {fmt_ns(k50)} | {peer} | {fmt_ns(peer_ns)} | {ratio} | {target} |")
        else:
            per_s = 1e9 / k50
            rate = f" ({per_s / 1e6:.2f} M/s)" if per_s >= 1e5 else f" ({per_s:,.0f}/s)" if per_s >= 10 else ""
            print(f"| {what} | {fmt_ns(k50)}{rate} | | | | {target} |")
    print("\nRatios above 1× mean k50core is faster.")


if __name__ == "__main__":
    main()
