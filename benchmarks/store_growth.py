"""A new visitor's store writes as the store grows: 0 / 200,000 / 1,000,000 leases kept from before.

    python benchmarks/store_growth.py                   # the sweep, a markdown table
    python benchmarks/store_growth.py --sizes 0,200000  # fewer sizes

Each row is a fresh SQLite file store holding that many earlier leases (with their visits, in
time order, as an engine stores them), then 20,000 new visitors through ``Engine.assign`` and a
flush. It gives the CPU time per new visitor of the whole call and of the lease and visit rows'
writes, for the store's lease keys (start first, what a store made now uses) and for the keys a
store made before schema version 7 keeps (pool first: each new lease lands on a random page of
the key indexes). A benchmark of an empty store hides this: its indexes fit in a few pages.
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

from sweep_pools import config, numbers, visits  # noqa: E402

from k50core import Engine  # noqa: E402
from k50core.store import LeaseRow  # noqa: E402

NEW = 20_000
ATTRS = {"source": "yandex", "traffic_type": "ads", "utm": {"utm_source": "yandex", "utm_campaign": "c12"},
         "landing": "shop.example.com/catalog/s3", "region": "RU-MOW", "device": "mobile"}


def history(engine: Engine, size: int, pool_size: int) -> None:
    """``size`` earlier leases of the pool's numbers, 10 ms apart, stored as the engine stores them."""
    store, nums, rnd = engine.store, numbers(pool_size), random.Random(1)
    for first in range(0, size, 10_000):
        batch = []
        for k in range(first, min(size, first + 10_000)):
            at = 990.0 - (size - k) * 0.01
            number = rnd.choice(nums)
            row = LeaseRow(store.lease_key("p", number, at, f"{rnd.randrange(pool_size)}.{k}"), "p", number, f"h{k}",
                           None, "paid", at, at, at + 900.0, False)
            batch.append(({"visitor_id": f"h{k}", "session_id": None, "at": at, "attributes": ATTRS}, row))
        store.save_starts(batch)


def one(size: int, time_first: bool, workdir: str) -> tuple[float, float]:
    """(CPU µs per new visitor, of it the lease and visit writes) with ``size`` leases stored."""
    path = tempfile.mktemp(suffix=".db", dir=workdir)  # a fresh file each run
    engine = Engine.from_config(config(NEW), store=path, now=1000.0)
    engine.warm_up()
    store = engine.store
    store.time_first_keys = time_first  # (a store made before version 7 reads False here)
    history(engine, size, NEW)
    spent = [0.0]
    save_writes = store.save_writes

    def timed(*args, **kw):  # type: ignore[no-untyped-def]
        t = time.process_time()
        try:
            return save_writes(*args, **kw)
        finally:
            spent[0] += time.process_time() - t

    store.save_writes = timed  # type: ignore[method-assign]
    vs = visits(NEW, seed=99)
    t0 = time.process_time()
    for k, v in enumerate(vs):
        engine.assign(v, 1000.0 + 10.0 * k / NEW)
    engine.flush()
    whole = time.process_time() - t0
    engine.close()
    return whole / NEW * 1e6, spent[0] / NEW * 1e6


def main(argv: Sequence[str] = ()) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="0,200000,1000000")
    args = ap.parse_args(list(argv) or None)
    print("| leases stored before | lease keys | new visitor (CPU) | of it, lease and visit writes |")
    print("|---:|---|---:|---:|")
    with tempfile.TemporaryDirectory() as workdir:
        one(0, True, workdir)  # the process's first engine pays one-off costs: not a row of the table
        for size in (int(s) for s in args.sizes.split(",")):
            for time_first in (True, False):
                whole, writes = one(size, time_first, workdir)
                print(f"| {size:,} | {'start first' if time_first else 'pool first (before v7)'} | {whole:.1f} us "
                      f"| {writes:.1f} us |", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
