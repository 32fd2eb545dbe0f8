"""Enrichment on the visitor path, with every URL new (no cache hit): what URL parsing, percent-decoding
and the referrer's site (the public suffix look-up) cost a visit.

    python benchmarks/bench_enrich.py [--visits 20000] [--repeats 5]

Printed, per build: ns per ``split_url`` of a new landing URL with percent-encoded tags, per
``SourceCatalogue.classify`` of a new referrer (two registrable-domain look-ups), and per decision of
``Engine.decide_many`` over new visits (enrichment, rules, no lease). Best of ``--repeats``.
"""
from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from k50core import Engine
from k50core.cli import demo_config_path
from k50core.enrich import SourceCatalogue
from k50core.enrich.url import split_url

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
    for name, ns in measure(args.visits, args.repeats).items():
        print(f"{name:28s} {ns:10.0f}")


if __name__ == "__main__":
    main()
