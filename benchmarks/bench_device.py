"""Benchmarks: device_type (compiled, reference) vs user_agents.parse.

    pytest benchmarks/bench_device.py --benchmark-enable   # pytest-benchmark
    python benchmarks/bench_device.py                      # compare(), printed

``compare()`` times everything in one process and returns ns figures and
ratios; the side-by-side script imports it. The user_agents baseline is
``user_agents.parse(ua)`` plus reading is_bot/is_tablet/is_mobile/is_pc, with
ua-parser's own 200-entry cache (warm for the repeated UA, cleared for new).
"""
from __future__ import annotations

import collections
import importlib
import itertools
import timeit
from collections.abc import Callable
from types import ModuleType
from typing import Any

import user_agents
from ua_parser import user_agent_parser

from k50core import _impl

UA = "Mozilla/5.0 (Linux; Android 13; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.144 Mobile Safari/537.36"

_PLATFORMS = [
    "Windows NT 10.0; Win64; x64", "Windows NT 6.1; WOW64", "Macintosh; Intel Mac OS X 10_15_7", "X11; Linux x86_64",
    "X11; CrOS x86_64 15359.58.0", "iPhone; CPU iPhone OS 17_1 like Mac OS X", "iPad; CPU OS 16_6 like Mac OS X",
    "Linux; Android 14; Pixel 8", "Linux; Android 13; SM-X710", "Linux; Android 12; Redmi Note 11",
    "Linux; Android 11; moto g(30)", "Linux; Android 10; K", "compatible; Googlebot/2.1; +http://www.google.com/bot.html",
]
_ENGINES = [
    "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.{b}.{p} Safari/537.36",
    "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.{b}.{p} Mobile Safari/537.36",
    "AppleWebKit/605.1.15 (KHTML, like Gecko) Version/{v}.{p} Mobile/15E148 Safari/604.1",
    "Gecko/20100101 Firefox/{v}.{p}",
    "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.{b}.{p} Safari/537.36 Edg/{v}.0.{b}.{p}",
    "AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/{p}.0 Chrome/{v}.0.{b}.0 Mobile Safari/537.36",
]


def new_uas(n: int, seed: int = 0) -> list[str]:
    """n distinct, realistic UAs (browser builds differ, so regex groups do)."""
    out = []
    for i in itertools.count(seed):
        plat, eng = _PLATFORMS[i % len(_PLATFORMS)], _ENGINES[(i // len(_PLATFORMS)) % len(_ENGINES)]
        out.append(f"Mozilla/5.0 ({plat}) " + eng.format(v=60 + i % 67, b=1000 + i // 7, p=i % 97))
        if len(out) == n:
            return out
    raise AssertionError


def user_agents_type(ua: str) -> str:
    """The baseline: what the brief maps user_agents' flags to."""
    u = user_agents.parse(ua)
    if u.is_bot:
        return "bot"
    if u.is_tablet:
        return "tablet"
    if u.is_mobile:
        return "mobile"
    return "desktop" if u.is_pc else "other"


def _cold(core: ModuleType) -> None:
    """Empty every cache of a build (and ua-parser's)."""
    mod = core if hasattr(core, "_device_cache_configure") else importlib.import_module(core.__name__ + ".device")
    mod._device_cache_configure()
    user_agent_parser._PARSE_CACHE.clear()


def _per_call_ns(stmt: str, env: dict[str, Any], number: int, repeat: int = 5) -> float:
    return min(timeit.repeat(stmt, globals=env, number=number, repeat=repeat)) / number * 1e9


def _per_item_ns(fn: Callable[[], Any], items: int, repeat: int = 5, setup: Callable[[], None] = lambda: None) -> float:
    best = float("inf")
    for _ in range(repeat):
        setup()
        best = min(best, timeit.timeit(fn, number=1))
    return best / items * 1e9


def compare(repeat_calls: int = 1_000_000, batch: int = 100_000, new: int = 1_000) -> dict[str, float]:
    """ns per UA and speed-ups of the compiled build over user_agents."""
    core = _impl.by_name("compiled")
    f, fs, env = core.device_type, core.device_types, {"ua": UA}
    f(UA)
    r: dict[str, float] = {}
    r["loop_overhead_ns"] = _per_call_ns("ua", env, repeat_calls)  # timeit's own loop, included below
    r["compiled_repeat_single_ns"] = _per_call_ns("f(ua)", {**env, "f": f}, repeat_calls)
    same = [UA] * batch
    r["compiled_repeat_batch_ns_per_item"] = _per_item_ns(lambda: fs(same), batch)
    uas = new_uas(new)
    r["compiled_cached_distinct_batch_ns_per_item"] = _per_item_ns(lambda: fs(uas), new, setup=lambda: fs(uas))
    r["compiled_new_cold_ns"] = _per_item_ns(lambda: fs(uas), new, setup=lambda: _cold(core))
    # new strings for the answer cache, their regex matches seen before (as
    # for a new build number of a known browser): memos kept, answers cleared
    r["compiled_new_warm_memo_ns"] = _per_item_ns(
        lambda: fs(uas), new, setup=lambda: (fs(uas), core._device_cache_configure(memos=False))
    )
    ref = _impl.by_name("reference").device_type
    ref(UA)
    r["reference_repeat_single_ns"] = _per_call_ns("f(ua)", {**env, "f": ref}, repeat_calls // 10)
    user_agents_type(UA)
    r["user_agents_repeat_ns"] = _per_call_ns("g(ua)", {**env, "g": user_agents_type}, 20_000)
    r["user_agents_new_ns"] = _per_item_ns(lambda: [user_agents_type(u) for u in uas], new, repeat=2, setup=user_agent_parser._PARSE_CACHE.clear)
    r["ratio_repeat_single"] = r["user_agents_repeat_ns"] / r["compiled_repeat_single_ns"]
    r["ratio_repeat_single_net_of_loop"] = r["user_agents_repeat_ns"] / max(r["compiled_repeat_single_ns"] - r["loop_overhead_ns"], 1e-9)
    r["ratio_repeat_batch"] = r["user_agents_repeat_ns"] / r["compiled_repeat_batch_ns_per_item"]
    r["ratio_cached_distinct_batch"] = r["user_agents_repeat_ns"] / r["compiled_cached_distinct_batch_ns_per_item"]
    r["ratio_new_cold"] = r["user_agents_new_ns"] / r["compiled_new_cold_ns"]
    r["ratio_new_warm_memo"] = r["user_agents_new_ns"] / r["compiled_new_warm_memo_ns"]
    return r


# ---- pytest-benchmark ---------------------------------------------------------

def _calls(benchmark: Any, f: Callable[[str], str], n: int) -> None:
    """n single calls per round, driven from C (deque(map(...))) so the
    harness adds ~nothing; per-call ns go to extra_info."""
    same = [UA] * n
    benchmark(lambda: collections.deque(map(f, same), maxlen=0))
    benchmark.extra_info["calls_per_round"] = n
    benchmark.extra_info["ns_per_call_min"] = benchmark.stats.stats.min / n * 1e9


def test_repeated_ua(benchmark: Any) -> None:
    _calls(benchmark, _impl.by_name("compiled").device_type, 10_000)


def test_repeated_ua_reference(benchmark: Any) -> None:
    _calls(benchmark, _impl.by_name("reference").device_type, 1_000)


def test_repeated_ua_user_agents(benchmark: Any) -> None:
    _calls(benchmark, user_agents_type, 20)


def test_batch_repeated(benchmark: Any) -> None:
    fs, same = _impl.by_name("compiled").device_types, [UA] * 10_000
    assert benchmark(fs, same)[0] == "mobile"


def test_batch_cached_distinct(benchmark: Any) -> None:
    fs, uas = _impl.by_name("compiled").device_types, new_uas(1_000)
    fs(uas)
    assert len(benchmark(fs, uas)) == 1_000


def test_new_uas_cold(benchmark: Any) -> None:
    core = _impl.by_name("compiled")
    uas = new_uas(200, seed=10_000)
    result = benchmark.pedantic(core.device_types, args=(uas,), setup=lambda: _cold(core), rounds=5, iterations=1)
    assert len(result) == 200


def test_new_uas_user_agents(benchmark: Any) -> None:
    uas = new_uas(50, seed=20_000)
    run = lambda: [user_agents_type(u) for u in uas]  # noqa: E731
    assert len(benchmark.pedantic(run, setup=user_agent_parser._PARSE_CACHE.clear, rounds=3, iterations=1)) == 50


if __name__ == "__main__":
    for key, value in compare().items():
        print(f"{key:45s} {value:14.1f}")
