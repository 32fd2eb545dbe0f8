"""Reports at scale: 1,000,000 visit sessions and 100,000 calls (with deals) over 30 days, on a
SQLite file and on PostgreSQL; each report timed as ``Engine.report`` runs it.

    python benchmarks/bench_reports.py                      # both stores (PostgreSQL: a private one)
    python benchmarks/bench_reports.py --stores sqlite --visits 200000 --calls 20000

Visits go through the engine's own counter (k50core.report.visits), as a running engine would
count them, then into the store as its checkpoints would write them; calls and attributions are
written as Engine.attribute stores them (with their report rows), deals as import_deals does. PostgreSQL: $K50CORE_POSTGRES_DSN, else a throwaway
cluster from Debian's binaries (tests/pgserver.py).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

from k50core.config import parse  # noqa: E402
from k50core.report import query, storage  # noqa: E402
from k50core.report.visits import VisitCounter  # noqa: E402
from k50core.store import open_store  # noqa: E402

T0 = 1_764_547_200.0  # 2025-12-01 UTC
DAYS = 30
SOURCES = ["yandex", "google", "vk", "direct", "telegram", "mail.ru", "dzen", "avito", "2gis", "bing"] + \
    [f"partner{i}" for i in range(10)]
REGIONS = ["RU-MOW", "RU-SPE", "RU-MOS", "RU-LEN", "RU-KDA", "RU-SVE", "RU-NVS", "RU-TA", "RU-BA", "RU-NIZ"]
BYS = ["source", "source,query.utm_campaign", "day,status", "landing.path", "geo.region,device.type", "number",
       "source,landing.path", "query.utm_campaign,geo.region,number", "day,source,device.type"]  # the last three: ALL


def zipf(rng: random.Random, items: list[Any], s: float = 1.1) -> Any:
    weights = [1 / (i + 1) ** s for i in range(len(items))]
    return rng.choices(items, weights)[0]


def config(numbers: int) -> dict[str, Any]:
    return {"pools": {"ads": {"type": "dynamic", "numbers": [f"+7495{1000000 + i}" for i in range(numbers)]}},
            "rules": [{"name": "paid", "when": {"traffic_type": "ads"}, "pool": "ads"}]}


def populate(store: Any, visits: int, calls: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    campaigns = [f"campaign-{i}" for i in range(60)]
    paths = [f"/catalog/{c}/{i}" for c in ("sofas", "beds", "tables", "chairs") for i in range(25)]
    numbers = [f"+7495{1000000 + i}" for i in range(200)]
    counter = VisitCounter()
    summaries = []
    t = time.perf_counter()
    for i in range(visits):
        at = int((T0 + rng.random() * DAYS * 86400) * 1000)
        source, campaign, path = zipf(rng, SOURCES), zipf(rng, campaigns), zipf(rng, paths)
        attrs = {"source": source, "traffic_type": "ads" if source in ("yandex", "google", "vk") else "organic",
                 "query": {"utm_source": source, "utm_medium": "cpc", "utm_campaign": campaign},
                 "landing": {"host": "shop.example", "path": path}, "geo": {"region": zipf(rng, REGIONS)},
                 "device": {"type": rng.choice(["desktop", "mobile", "tablet"])}}
        counter.page_view(None, at, attrs, "paid", "ads", rng.choice(numbers))
        if len(summaries) < calls and rng.random() < calls / visits * 1.05:
            summaries.append((at / 1000.0, attrs))
        if (i + 1) % 200_000 == 0:
            storage.add_visit_counts(store, counter.take())
    storage.add_visit_counts(store, counter.take())
    print(f"  {visits:,} visit sessions counted and stored in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    t = time.perf_counter()
    call_rows, attr_rows, deal_rows = [], [], []
    statuses = ["matched"] * 80 + ["late"] * 8 + ["ambiguous"] * 6 + ["unmatched"] * 6
    for i in range(calls):
        at, attrs = summaries[i % len(summaries)]
        started = at + rng.random() * 600
        caller = f"+7916{rng.randrange(10**7):07d}"
        status = rng.choice(statuses)
        summary = {"source": attrs["source"], "traffic_type": attrs["traffic_type"],
                   "utm": attrs["query"], "landing": "shop.example" + attrs["landing"]["path"],
                   "region": attrs["geo"]["region"], "device": attrs["device"]["type"], "ip": "5.6.7.8",
                   "ga_client_id": f"{rng.randrange(10**9)}.{int(at)}"}
        duration = rng.choice([0, 15, 45, 90, 200, 600])
        call_rows.append((f"call-{i}", rng.choice(numbers), caller, started, duration, duration > 0, started + 5))
        attr_rows.append((f"call-{i}", status, None if status == "unmatched" else f"lease-{i}", None, None,
                          None if status == "unmatched" else "ads", None if status == "unmatched" else "paid",
                          0.97, None, "[]", "{}" if status == "unmatched" else json.dumps(summary, sort_keys=True), 0))
        if rng.random() < 0.3:
            deal_rows.append((f"deal-{i}", caller, started + 3600, float(rng.randrange(1000, 90000)),
                              rng.choice(["won", "lost", "open"]), "RUB", None, f"call-{i}", "bench", started + 3600))
    storage.run_many(store, "INSERT INTO calls (call_id, number, caller, started_at, duration_seconds, answered, "
                            "received_at) VALUES (?, ?, ?, ?, ?, ?, ?)", call_rows)
    storage.run_many(store, "INSERT INTO attributions (call_id, status, lease, visitor_id, session_id, pool, rule, "
                            "likelihood, repeat_of, candidates, attributes, more_candidates) VALUES "
                            "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", attr_rows)
    storage.run_many(store, storage.REPORT_CALL, [
        storage.report_call_row(dict(zip(("call_id", "number", "caller", "started_at", "duration_seconds", "answered"),
                                         c[:6])),
                                {"status": a[1], "pool": a[5], "rule": a[6], "repeat_of": None,
                                 "attributes": json.loads(a[10])}) for c, a in zip(call_rows, attr_rows)])
    storage.run_many(store, "INSERT INTO deals (deal_id, phone, created_at, amount, status, currency, title, call_id, "
                            "origin, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", deal_rows)
    with store.transaction():
        storage.update_deal_figures(store, store.conn.cursor(), [d[7] for d in deal_rows])
    print(f"  {calls:,} calls, {len(deal_rows):,} deals stored in {time.perf_counter() - t:.1f} s", file=sys.stderr)


def run(name: str, target: str, visits: int, calls: int, repeat: int) -> list[str]:
    store = open_store(target)
    if store.count("calls") == 0:
        print(f"{name}: populating", file=sys.stderr)
        populate(store, visits, calls)
    if store.backend == "postgresql":
        store.conn.execute("VACUUM ANALYZE")
    cfg, _ = parse(config(200))
    lines = []
    for by in BYS:
        best = float("inf")
        for _ in range(repeat):
            t = time.perf_counter()
            rows = query.report(store, cfg, by, T0, T0 + DAYS * 86400)
            best = min(best, time.perf_counter() - t)
        total_calls = sum(r["calls"] for r in rows)
        total_visits = sum(r["visits"] or 0 for r in rows)
        lines.append(f"| {name} | `{by}` | {len(rows):,} | {total_visits:,} | {total_calls:,} | {best:.3f} s |")
    store.close()
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stores", default="sqlite,postgresql")
    ap.add_argument("--visits", type=int, default=1_000_000)
    ap.add_argument("--calls", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--sqlite-file", help="a SQLite store to keep (populated once, reused after)")
    args = ap.parse_args()
    lines = ["| store | by | groups | visits | calls | report (best of runs) |", "|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.stores.split(","):
            if name == "sqlite":
                lines += run("SQLite", args.sqlite_file or os.path.join(tmp, "k50.db"), args.visits, args.calls,
                             args.repeat)
            elif name == "postgresql":
                from pgserver import PostgresServer
                server = PostgresServer()
                try:
                    lines += run("PostgreSQL", server.database(), args.visits, args.calls, args.repeat)
                finally:
                    server.stop()
    print("\n".join(lines))


if __name__ == "__main__":
    main()
