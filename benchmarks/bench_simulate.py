"""Simulator speed: one simulated day of 3,000 visits (4 min average) through the real engine.

pytest-benchmark functions, and ``compare()`` printing seconds per simulated day for
each build (``python benchmarks/bench_simulate.py``).
"""
from __future__ import annotations

import time

from k50core.simulate import simulate

DAY = dict(visits_per_day=3000, avg_visit_minutes=4.0, numbers=92, days=1, seed=0)


def bench_simulate_one_day(benchmark):
    report = benchmark.pedantic(simulate, kwargs=DAY, rounds=3, iterations=1)
    assert report.human_visits > 2500 and report.calls > 0


def bench_simulate_one_day_every_visit_calls(benchmark):
    report = benchmark.pedantic(simulate, kwargs=dict(DAY, call_share=1.0), rounds=2, iterations=1)
    assert report.calls > 2500


def compare(repeats: int = 3) -> dict[str, float]:
    """Best wall seconds per simulated day of 3,000 visits, per build and call share."""
    out: dict[str, float] = {}
    for build in ("compiled", "reference"):
        for share in (0.05, 1.0):
            best = float("inf")
            for _ in range(repeats):
                t = time.perf_counter()
                simulate(implementation=build, call_share=share, **DAY)
                best = min(best, time.perf_counter() - t)
            out[f"{build}, {share:.0%} of visits call"] = best
    return out


if __name__ == "__main__":
    for name, seconds in compare().items():
        print(f"one simulated day of 3,000 visits ({name}): {seconds:.2f} s")
