"""First match against the number of rules: does a decision cost the visit, or the rule count?

    python benchmarks/sweep_rules.py                      # 100 / 1,000 / 10,000 / 100,000 rules
    python benchmarks/sweep_rules.py --sizes 100,1000 --quick

For each size it builds a mixed rule set (``rulesets.mixed_rules``: half path
regexes ``^/catalog/sectionN(/|$)``, the rest ``$in`` of regions / sources /
devices, ``$host``, ``$cidr``, ``$glob``, ``$or``, five ``$not`` country exclusions and three
residual unanchored regexes) into an ``Engine`` and measures:

* compile: ``Engine.from_config`` with those rules (compiling, indexing, packing);
* ``match_many`` decisions/s over enriched visits (best of ``--repeats``);
* the same compiled programs without the index (every rule tried in order,
  as before the index), on a sample of the visits;
* single ``match`` calls: p50 / p99 (perf_counter_ns around each call, so the
  timer's own ~0.1 us is included);
* GrowthBook's first-match loop (``evalCondition`` over the rules in order) on
  a sample of the same visits, at 100 and 1,000 rules only: measured, never
  extrapolated. GrowthBook has no ``$host`` / ``$cidr`` / ``$glob`` and treats
  them as false; the script counts the visits where the two disagree for any
  other reason (it should print 0).

Visits come from ``rulesets.mixed_visits`` with ``--seed`` and ``--mix`` (by
default not the seed and mix the index was tuned on). Rates are CPU time of
this process (``time.process_time``): on a shared machine wall time mostly
measures the neighbours. Prints a markdown table and writes an SVG of
decisions/s against the rule count (log-log).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import rulesets  # noqa: E402
from growthbook.core import evalCondition  # noqa: E402

from k50core import Engine  # noqa: E402
from k50core.rules import index  # noqa: E402

K50_ONLY = ("$host", "$cidr", "$glob")
BOTS = {"device.type": "bot"}  # the engine's implicit first rule, given to GrowthBook too


def engine_for(conditions: list[dict[str, Any]]) -> tuple[Engine, float, float]:
    """The engine, and the wall and CPU seconds ``Engine.from_config`` took."""
    cfg = {"pools": {"p": {"type": "static", "numbers": ["+74950000100"]}},
           "rules": [{"name": f"r{i}", "when": c, "pool": "p"} for i, c in enumerate(conditions)]}
    t, c = time.perf_counter(), time.process_time()
    engine = Engine.from_config(cfg, implementation="compiled")
    return engine, time.perf_counter() - t, time.process_time() - c


def best_rate(fn: Any, arg: Any, count: int, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.process_time()
        fn(arg)
        best = min(best, time.process_time() - t)
    return count / best


def single_calls(engine: Engine, visits: Sequence[Any]) -> tuple[float, float]:
    """p50, p99 of one ``match`` call in microseconds."""
    match, clock = engine.match, time.perf_counter_ns
    samples = []
    for v in visits:
        t = clock()
        match(v)
        samples.append(clock() - t)
    samples.sort()
    return samples[len(samples) // 2] / 1e3, samples[int(len(samples) * 0.99)] / 1e3


def growthbook_loop(conditions: list[dict[str, Any]], visits: Sequence[Any]) -> tuple[float, list[int]]:
    rules = [BOTS] + conditions
    t = time.process_time()
    out = [next((i for i, c in enumerate(rules) if evalCondition(v, c, {})), -1) for v in visits]
    return len(visits) / (time.process_time() - t), out


def unexplained(engine: Engine, conditions: list[dict[str, Any]], visits: Sequence[Any], gb: list[int]) -> int:
    """Visits where GrowthBook and k50core disagree, other than by an operator GrowthBook lacks."""
    names = {f"r{i}": i + 1 for i in range(len(conditions))}
    names["(bots)"] = 0
    rules = [BOTS] + conditions
    bad = 0
    for v, theirs in zip(visits, gb):
        d = engine.match(v)
        ours = -1 if d.rule is None else names[d.rule]
        if ours == theirs:
            continue
        if ours >= 0 and any(op in repr(rules[ours]) for op in K50_ONLY):
            continue  # a rule GrowthBook cannot read matched first
        bad += 1
    return bad


def sweep(sizes: Sequence[int], n_visits: int, seed: int, mix: str, repeats: int, gb_visits: int) -> list[dict[str, Any]]:
    rows = []
    for n in sizes:
        conditions = rulesets.mixed_rules(n)
        engine, compile_s, compile_cpu = engine_for(conditions)
        visits = rulesets.mixed_visits(n_visits, n, seed=seed, mix=mix)
        engine.match_many(visits[:1000])  # warm: first resolutions, caches
        rate = best_rate(engine.match_many, visits, len(visits), repeats)
        p50, p99 = single_calls(engine, visits[: min(len(visits), 20000)])
        plain, ix, always = _programs(conditions)
        sample = visits[: max(200, min(len(visits), 2_000_000 // n))]
        plain_rate = best_rate(plain.first_match_many, sample, len(sample), 3)
        row: dict[str, Any] = {"rules": n, "compile_s": compile_s, "compile_cpu": compile_cpu, "rate": rate, "p50": p50, "p99": p99,
                               "plain_rate": plain_rate, "plain_visits": len(sample),
                               "gb_rate": None, "gb_visits": 0, "unexplained": None,
                               "index": index.describe(ix, always, n)}
        if n <= 1000 and gb_visits:
            sample = visits[:gb_visits]
            row["gb_rate"], gb = growthbook_loop(conditions, sample)
            # k50core on the very visits GrowthBook was timed on (the sample, repeated to ~20,000
            # decisions): the same inputs on both sides of the ratio
            repeated = sample * max(1, 20_000 // len(sample))
            row["same_rate"] = best_rate(engine.match_many, repeated, len(repeated), repeats)
            row["gb_visits"] = len(sample)
            row["unexplained"] = unexplained(engine, conditions, sample, gb)
        rows.append(row)
        print(f"# {n} rules: compiled in {compile_s:.2f} s, {rate / 1e6:.2f} M decisions/s", file=sys.stderr)
    return rows


def _programs(conditions: list[dict[str, Any]]) -> tuple[Any, Any, list[int]]:
    """A compiled matcher of the rules without an index (tries every rule), and their index."""
    from k50core import _impl
    from k50core.rules.compiler import Compiler, PathTable

    compiler = Compiler(PathTable(), {}, strict=True)
    roots = [compiler.add(c) for c in [BOTS] + conditions]
    ix, always = index.build(compiler.nodes, roots[1:])
    return _impl.by_name("compiled").Matcher(compiler.nodes, compiler.paths.paths, roots), ix, always


def markdown(rows: list[dict[str, Any]]) -> str:
    out = ["| rules | compile (wall / CPU) | `match_many` | `match` p50 / p99 | no index (every rule) | GrowthBook loop | "
           "vs GrowthBook | residual rules |",
           "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        gb = f"{r['gb_rate']:,.0f}/s ({r['gb_visits']} visits)" if r["gb_rate"] else "not measured"
        ratio = (f"{r['rate'] / r['gb_rate']:,.0f}× ({r['same_rate'] / r['gb_rate']:,.0f}× on its visits)"
                 if r["gb_rate"] else "—")
        out.append(f"| {r['rules']:,} | {r['compile_s']:.2f} / {r['compile_cpu']:.2f} s | {r['rate'] / 1e6:.2f} M/s | "
                   f"{r['p50']:.2f} / {r['p99']:.2f} µs | {_rate(r['plain_rate'])} ({r['plain_visits']} visits) | "
                   f"{gb} | {ratio} | {r['index']['residual']} |")
    return "\n".join(out)


# -- the chart: decisions/s against rules, both axes logarithmic -----------------------------
W, H = 640, 400
LEFT, RIGHT, TOP, BOTTOM = 72, 24, 40, 52


def chart_svg(rows: list[dict[str, Any]], path: Path | None = None,
              title: str = "First match: decisions per second against rules") -> str:
    import math

    series = [("k50core match_many", "#2c7fb8", [(r["rules"], r["rate"]) for r in rows]),
              ("compiled, no index (every rule)", "#7a7a7a", [(r["rules"], r["plain_rate"]) for r in rows]),
              ("GrowthBook first-match loop", "#d95f0e", [(r["rules"], r["gb_rate"]) for r in rows if r["gb_rate"]])]
    xs = [x for _, _, pts in series for x, _ in pts]
    ys = [y for _, _, pts in series for _, y in pts]
    x0, x1 = math.floor(math.log10(min(xs))), math.ceil(math.log10(max(xs)))
    y0, y1 = math.floor(math.log10(min(ys))), math.ceil(math.log10(max(ys)))
    x1, y1 = max(x1, x0 + 1), max(y1, y0 + 1)

    def px(x: float) -> float:
        return LEFT + (math.log10(x) - x0) / (x1 - x0) * (W - LEFT - RIGHT)

    def py(y: float) -> float:
        return TOP + (y1 - math.log10(y)) / (y1 - y0) * (H - TOP - BOTTOM)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
           f'font-family="sans-serif" font-size="12">',
           f"<title>{escape(title)}</title>",
           f'<rect x="0" y="0" width="{W}" height="{H}" fill="white"/>',
           f'<text x="{W / 2:.1f}" y="22" text-anchor="middle" font-size="15">{escape(title)}</text>']
    for e in range(y0, y1 + 1):
        out.append(f'<line x1="{LEFT}" y1="{py(10 ** e):.1f}" x2="{W - RIGHT}" y2="{py(10 ** e):.1f}" stroke="#e4e4e4"/>')
        out.append(f'<text x="{LEFT - 6}" y="{py(10 ** e) + 4:.1f}" text-anchor="end">{_si(10 ** e)}/s</text>')
    for e in range(x0, x1 + 1):
        out.append(f'<line x1="{px(10 ** e):.1f}" y1="{TOP}" x2="{px(10 ** e):.1f}" y2="{H - BOTTOM}" stroke="#e4e4e4"/>')
        out.append(f'<text x="{px(10 ** e):.1f}" y="{H - BOTTOM + 18}" text-anchor="middle">{10 ** e:,}</text>')
    out.append(f'<text x="{(LEFT + W - RIGHT) / 2:.1f}" y="{H - 12}" text-anchor="middle">rules (log scale)</text>')
    out.append(f'<text x="16" y="{(TOP + H - BOTTOM) / 2:.1f}" text-anchor="middle" '
               f'transform="rotate(-90 16 {(TOP + H - BOTTOM) / 2:.1f})">decisions per second (log scale)</text>')
    for k, (name, color, pts) in enumerate(series):
        if not pts:
            continue
        line = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
        out.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{line}"/>')
        for x, y in pts:
            out.append(f'<circle class="point" cx="{px(x):.1f}" cy="{py(y):.1f}" r="3.5" fill="{color}" '
                       f'data-rules="{x}" data-rate="{y:.0f}"><title>{x:,} rules: {y:,.0f}/s</title></circle>')
        ly = H - BOTTOM - 46 + 18 * k  # bottom left: below every line of this sweep
        out.append(f'<line x1="{LEFT + 10}" y1="{ly - 4}" x2="{LEFT + 30}" y2="{ly - 4}" stroke="{color}" stroke-width="2"/>')
        out.append(f'<text x="{LEFT + 36}" y="{ly}">{escape(name)}</text>')
    out.append("</svg>")
    svg = "\n".join(out) + "\n"
    if path is not None:
        Path(path).write_text(svg)
    return svg


def _rate(x: float) -> str:
    return f"{x / 1e6:.2f} M/s" if x >= 1e6 else f"{x:,.0f}/s"


def _si(x: float) -> str:
    for unit, div in (("M", 1e6), ("k", 1e3)):
        if x >= div:
            return f"{x / div:g}{unit}"
    return f"{x:g}"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="100,1000,10000,100000")
    ap.add_argument("--visits", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--mix", default="alt", choices=sorted(rulesets.MIXES))
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--gb-visits", type=int, default=0, help="visits for GrowthBook's loop (default: 2000 at 100 rules' scale)")
    ap.add_argument("--svg", default=str(Path(__file__).parent / "results" / "rules_sweep.svg"))
    ap.add_argument("--quick", action="store_true", help="fewer visits and repeats")
    args = ap.parse_args(argv)
    if args.quick:
        args.visits, args.repeats = 10000, 3
    sizes = [int(s) for s in args.sizes.split(",")]
    gb_visits = args.gb_visits or (300 if args.quick else 1000)
    rows = sweep(sizes, args.visits, args.seed, args.mix, args.repeats, gb_visits)
    print(markdown(rows))
    for r in rows:
        if r["unexplained"] is not None:
            print(f"\n{r['rules']:,} rules: {r['unexplained']} of {r['gb_visits']} visits decided differently "
                  f"from GrowthBook other than by $host / $cidr / $glob")
    print("\nindex by kind: " + "; ".join(f"{r['rules']:,}: " + ", ".join(f"{k} {v}" for k, v in r["index"].items())
                                           for r in rows))
    if args.svg:
        Path(args.svg).parent.mkdir(parents=True, exist_ok=True)
        chart_svg(rows, Path(args.svg))
        print(f"\nwrote {args.svg}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
