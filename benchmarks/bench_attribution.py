"""Attributions per second on each storage backend (SQLite file, PostgreSQL server).

Each call is parsed, the lease log flushed, the number's leases read, the
call and its attribution committed durably (fsync for SQLite, a synchronous
commit for PostgreSQL): the whole of ``Engine.attribute``.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time

from k50core import Engine

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

N = 300
CONFIG = {"pools": {"p": {"type": "dynamic", "numbers": [f"+7495{i:07d}" for i in range(1, N + 1)]}},
          "rules": [{"name": "all", "pool": "p"}]}


def _run(store: str, calls: int = N) -> float:
    """Attributions per second for ``calls`` calls, each to a number leased a minute earlier."""
    with Engine.from_config(CONFIG, store=store) as engine:
        shown = [engine.assign({"visitor_id": f"v{i}", "url": "https://shop.example.ru/?utm_source=vk"}, now=1000)
                 for i in range(calls)]
        t = time.perf_counter()
        for i, a in enumerate(shown):
            got = engine.attribute({"call_id": f"c{i}", "number": a.number, "caller": f"+7916{i:07d}",
                                    "started_at": 1060, "duration_seconds": 30}, now=1070)
            assert got.status == "matched"
        return calls / (time.perf_counter() - t)


def compare() -> dict[str, float]:
    from pgserver import PostgresServer

    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        out["sqlite_file_per_s"] = _run(os.path.join(tmp, "k50.db"))
    out["sqlite_memory_per_s"] = _run(":memory:")
    server = PostgresServer()
    try:
        out["postgresql_per_s"] = _run(server.database())
    finally:
        server.stop()
    return out


def bench_attribute_sqlite_file(benchmark, tmp_path):
    benchmark.pedantic(_run, args=(str(tmp_path / "k50.db"), 100), rounds=1, iterations=1)


if __name__ == "__main__":
    for k, v in compare().items():
        print(f"{k:24s} {v:,.0f}")
