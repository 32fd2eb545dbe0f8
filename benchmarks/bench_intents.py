"""Call intents: accuracy against pool size with and without taps / copies, two traffic models.

    python benchmarks/bench_intents.py                    # both models, the default sizes, the SVG
    python benchmarks/bench_intents.py --sizes 50,75 --days 2

3,000 visits a day of 4 minutes on average, hold 900 s, cooldown 300 s, a pool that shares its least
recently active number when exhausted. With intents, 35% of calls follow a tap (mobile) or copy
(desktop) of the number within 60 s; without, nobody taps (the same traffic otherwise: caller history
and landline regions still count). Every visit calls (calls do not change the pools, so this only
measures more precisely), as ``simulate.smallest_pool`` does. A call is right when the engine's best
guess is the visitor who called.

* A: ``k50core.simulate`` with ``CallerModel.with_intent_share(0.35)`` (hourly Poisson steps,
  exponential visits, 60 s heartbeats, 20% returning visitors, 2% of visits tap without calling,
  15% landline callers over four regions).
* B: ``benchmarks/traffic_b.py``, written apart from the simulator (a sinusoidal day, log-normal
  visits, 30 s heartbeats, Weibull dialling delays, gamma delays after the visit, 15% returning,
  3% taps without a call, 10% landline callers over three regions).

Prints one table per model and writes benchmarks/results/intents_accuracy.svg (the share of calls
attributed to the wrong visitor: the target is at most 5%), then the likelihoods' calibration of every
run: per bin of likelihood (width 0.1) with at least 50 calls, its calls, their mean likelihood and the
share right (the target: within 3 points), also written to benchmarks/results/intents_calibration.md.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from svgplot import line_chart  # noqa: E402
from traffic_b import TrafficB  # noqa: E402

from k50core.simulate import CallerModel, simulate  # noqa: E402
from k50core.simulate_callers import REGIONS  # noqa: E402

SIZES = (30, 40, 50, 60, 75, 92, 150)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "intents_accuracy.svg")
CALIBRATION = os.path.join(os.path.dirname(OUT), "intents_calibration.md")
FILLED = 50   # calibration: bins with at least this many calls


Bins = list[tuple[float, int, float, float]]   # (low edge, calls, mean likelihood, share right)


def model_a(numbers: int, share: float, days: float) -> tuple[float, Bins]:
    callers = CallerModel.with_intent_share(share, noise_share=0.02, landline_share=0.15, regions=REGIONS)
    r = simulate(visits_per_day=3000, avg_visit_minutes=4, numbers=numbers, days=days, call_share=1.0,
                 seed=0, callers=callers)
    return r.accuracy, [(b.low, b.calls, b.mean_likelihood, b.share_right) for b in r.calibration]


def model_b(numbers: int, share: float, days: float) -> tuple[float, Bins]:
    r = TrafficB(intent_share=share, days=days).run(numbers)
    return r["accuracy"], r["calibration"]


def calibration_rows(name: str, numbers: int, intents: str, bins: Bins) -> list[str]:
    filled = [b for b in bins if b[1] >= FILLED]
    return [f"| {name} | {numbers} | {intents} | {low:.1f}-{low + 0.1:.1f} | {calls:,} | {mean:.3f} | {right:.3f} | "
            f"{right - mean:+.3f}{' **over 3 points**' if abs(right - mean) > 0.03 else ''} |"
            for low, calls, mean, right in filled]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default=",".join(map(str, SIZES)), help="pool sizes, comma-separated")
    ap.add_argument("--days", type=float, default=1.0, help="days of traffic per run")
    ap.add_argument("--share", type=float, default=0.35, help="share of calls after a tap or copy")
    ap.add_argument("--svg", default=OUT, help="where the chart goes ('' for none)")
    ap.add_argument("--calibration", default=CALIBRATION, help="where the calibration table goes ('' for none)")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    series: dict[str, list[float]] = {}
    calibration = ["| model | numbers | intents | likelihood | calls | mean likelihood | share right | right - mean |",
                   "|---|---:|---|---|---:|---:|---:|---:|"]
    for name, run in (("A", model_a), ("B", model_b)):
        print(f"\nmodel {name}: accuracy (calls attributed to the visitor who made them)")
        print("| numbers | without intents | with intents |\n|---:|---:|---:|")
        without, tapped = [], []
        for n in sizes:
            started = time.perf_counter()
            plain_accuracy, plain_bins = run(n, 0.0, args.days)
            with_accuracy, with_bins = run(n, args.share, args.days)
            without.append(plain_accuracy)
            tapped.append(with_accuracy)
            calibration += calibration_rows(name, n, "none", plain_bins)
            calibration += calibration_rows(name, n, f"{args.share:.0%}", with_bins)
            print(f"| {n} | {without[-1]:.2%} | {tapped[-1]:.2%} |  ({time.perf_counter() - started:.0f} s)",
                  flush=True)
        series[f"{name}: no intents"] = [100 * (1 - a) for a in without]
        series[f"{name}: {args.share:.0%} intents"] = [100 * (1 - a) for a in tapped]
        reached = [n for n, a in zip(sizes, tapped) if a >= 0.95]
        plain = [n for n, a in zip(sizes, without) if a >= 0.95]
        print(f"model {name}: 95% reached with intents from {reached[0] if reached else 'none of these'} numbers, "
              f"without from {plain[0] if plain else 'none of these'}")
    print(f"\ncalibration: bins of at least {FILLED} calls (the target: share right within 3 points of the mean)")
    print("\n".join(calibration))
    if args.calibration:
        os.makedirs(os.path.dirname(args.calibration) or ".", exist_ok=True)
        with open(args.calibration, "w", encoding="utf-8") as f:
            f.write(f"# Likelihood calibration (benchmarks/bench_intents.py, {args.days:g} day(s) a run)\n\n"
                    + "\n".join(calibration) + "\n")
        print(f"\ncalibration table: {args.calibration}")
    if args.svg:
        series["target: 5%"] = [5.0] * len(sizes)
        os.makedirs(os.path.dirname(args.svg) or ".", exist_ok=True)
        with open(args.svg, "w", encoding="utf-8") as f:
            f.write(line_chart("Calls attributed to the wrong visitor, 3,000 visits/day of 4 min",
                               "tracking numbers in the pool", "wrong, % of calls", sizes, series))
        print(f"\nchart: {args.svg}")


if __name__ == "__main__":
    main()
