"""What a new visitor's visit session costs the report counters, per session: ``page_view`` on
the visit's path, and what it owes the store (``Recorder.write``: the session decided against
``visit_sessions``, its counters added to ``visit_counts`` and ``visit_combos``), on a SQLite file.

    python benchmarks/bench_counters.py                  # 20,000 new visitors in 15 s of clock
    python benchmarks/bench_counters.py --sessions 200000

CPU time (time.process_time). Writes the engine makes while the visitors come (a write is due
every 50,000 sessions pending) count with the checkpoint's. ``page_view`` is timed by replaying
the calls the engine made, on a fresh recorder (best of three). Compare builds by running this
in turn (the machine is shared: ratios, not absolute figures).
"""
from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from sweep_pools import config, visits  # noqa: E402

from k50core import Engine  # noqa: E402
from k50core.report.recorder import Recorder  # noqa: E402


def run(n: int) -> tuple[float, float]:
    """(owed µs a session, page_view µs a session)."""
    e = Engine.from_config(config(n), store=os.path.join(tempfile.mkdtemp(), "k50.db"), now=1000.0)
    e.warm_up()
    calls: list[tuple[Any, ...]] = []
    spent = [0.0]
    page_view, write = e.recorder.page_view, e.recorder.write

    def spy(*args: Any) -> None:
        calls.append((e.recorder.started,) + args)
        page_view(*args)

    def timed(*args: Any, **kwargs: Any) -> None:
        t = time.process_time()
        try:
            write(*args, **kwargs)
        finally:
            spent[0] += time.process_time() - t

    e.recorder.page_view = spy  # type: ignore[method-assign]
    e.recorder.write = timed  # type: ignore[method-assign]
    for k, v in enumerate(visits(n, seed=99)):
        e.assign(v, 1002.0 + k * 15 / n)
    gc.collect()
    e.checkpoint()
    owed = spent[0] / len(calls) * 1e6
    best = float("inf")
    for _ in range(3):
        r = Recorder(30_000)
        r.pools = e.pools
        t = time.process_time()
        for started, *args in calls:
            r.started = started
            r.page_view(*args)
        best = min(best, time.process_time() - t)
    e.close()
    return owed, best / len(calls) * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=20_000)
    args = ap.parse_args()
    owed, view = run(args.sessions)
    print(f"{args.sessions:,} sessions: page_view {view:.2f} µs, owed to the store {owed:.2f} µs a session")


if __name__ == "__main__":
    main()
