"""Enrichment on the visitor path: a visit's attribute dict, per build, with its URLs seen before and not.

    python benchmarks/bench_enrich.py [--visits 20000] [--repeats 5]

Printed first, ns per visit of the enricher alone (``Engine.enrich``, what ``Engine.attributes`` runs) over
the visits of benchmarks/sweep_pools.py (``visits(n, seed)``: utm tags and click ids, referrers, varied
addresses), the reference and the compiled build timed in turn in this process: ``warm``, every landing
URL and referrer parsed before (each visit is still a dict of its own); ``cold``, the URL caches emptied
before each pass (40% of these visits carry a click id of their own, so their URLs are new anyway).
Then, with every URL new (no cache hit), what URL parsing, percent-decoding and the referrer's site (the
public suffix look-up) cost a visit: ns per ``split_url`` of a new landing URL with percent-encoded
tags, per ``SourceCatalogue.classify`` of a new referrer (two registrable-domain look-ups), and per
decision of ``Engine.decide_many`` over new visits (enrichment, rules, no lease). Best of ``--repeats``.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from sweep_pools import visits as sweep_visits  # noqa: E402

from k50core import Engine  # noqa: E402
from k50core.cli import demo_config_path  # noqa: E402
from k50core.enrich import SourceCatalogue  # noqa: E402
from k50core.enrich.url import split_url  # noqa: E402

BUILDS = ("reference", "compiled")

UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
REFERRERS = ("news.example.co.uk", "blog.shop{}.msk.ru", "m.site{}.com.br", "user{}.github.io", "www.site{}.de",
             "forum{}.example.com")


def urls(n: int) -> list[str]:
    return [f"https://shop.example.ru/catalog/%D0%B4%D0%B8%D0%B2%D0%B0%D0%BD%D1%8B/{i}?utm_source=yandex"
            f"&utm_medium=cpc&utm_campaign=spring%20sale%20{i}&utm_term=%D0%BA%D1%83%D0%BF%D0%B8%D1%82%D1%8C"
            for i in range(n)]


def best_ns(fn: Callable[[], object], per: int, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best / per * 1e9


def enrich_per_visit(visits: int, repeats: int) -> dict[str, float]:
    """ns per visit of each build's enricher, warm and cold, the builds timed in turn."""
    vs = sweep_visits(visits, seed=11)
    engines = {build: Engine.from_config(demo_config_path(), implementation=build) for build in BUILDS}
    best = {f"enrich_{state}_{build}_ns": float("inf") for state in ("warm", "cold") for build in BUILDS}
    for enrich in (e.enrich for e in engines.values()):
        for v in vs:  # the URLs parsed, the User-Agents and GeoIP records decoded once
            enrich(v, 5.0)
    for _ in range(repeats):
        for build, engine in engines.items():
            enrich = engine.enrich
            for state in ("warm", "cold"):
                if state == "cold":
                    enrich.clear_caches()
                t = time.perf_counter()
                for v in vs:
                    enrich(v, 5.0)
                key = f"enrich_{state}_{build}_ns"
                best[key] = min(best[key], (time.perf_counter() - t) / len(vs) * 1e9)
    for engine in engines.values():
        engine.close()
    for state in ("warm", "cold"):
        best[f"enrich_{state}_ratio"] = best[f"enrich_{state}_reference_ns"] / best[f"enrich_{state}_compiled_ns"]
    return best


def measure(visits: int, repeats: int) -> dict[str, float]:
    landing = urls(visits)
    refs = [REFERRERS[i % len(REFERRERS)].format(i) for i in range(visits)]
    catalogue = SourceCatalogue()
    out = {
        "split_url_ns": best_ns(lambda: [split_url(u) for u in landing], visits, repeats),
        "classify_referrer_ns": best_ns(lambda: [catalogue.classify("shop.example.ru", {}, r) for r in refs],
                                        visits, repeats),
    }
    for build in ("compiled", "reference"):
        engine = Engine.from_config(demo_config_path(), implementation=build)
        runs = [[{"visitor_id": f"v{r}-{i}", "ip": "5.101.68.156", "url": u + f"&r={r}",
                  "referrer": "https://" + refs[i] + "/", "user_agent": UA} for i, u in enumerate(landing)]
                for r in range(repeats)]
        it = iter(runs)
        out[f"decide_{build}_ns"] = best_ns(lambda engine=engine, it=it: engine.decide_many(next(it), 0.0),
                                             visits, repeats)
        engine.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visits", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    for name, value in {**enrich_per_visit(args.visits, args.repeats), **measure(args.visits, args.repeats)}.items():
        print(f"{name:28s} {value:10.1f}" if name.endswith("ratio") else f"{name:28s} {value:10.0f}")


if __name__ == "__main__":
    main()
