"""A traffic and call simulator that drives the real engine with injected time.

Visits arrive as a Poisson stream whose hourly rate follows a daily profile; each
visit lasts an exponential time with the given mean and its open page heartbeats
every ``heartbeat_seconds`` while it lasts. Some visitors come back later (the same
visitor id, within a day), bots arrive with a crawler User-Agent (the engine
excludes them: no number, no call). A share of the human visits call the number
they were shown, at a moment drawn from ``sizing.CallDelay``: during the visit (a
uniform moment inside it) or after its end by an exponential delay. Every event
(arrival, heartbeat, call, utilisation sample) sits in one time-ordered heap and
reaches the engine with ``now=`` its simulated time: the wall clock is never read.

What counts as right (``counts_as_right``): a call is right when the engine names the
visitor who really called. A call to a shared number — *ambiguous*, or *late* after a
shared lease — comes with ranked candidates, and it is right only when its top candidate
is the caller (being somewhere in the list is not enough, nor being the lease's first
holder when a later visitor ranks first). A matched or late call of an unshared lease is
right when the lease was the caller's; an unmatched call is always wrong. ``strict_accuracy``
counts every call to a shared number wrong, as ``sizing.recommend`` does.

Calls do not change the pools (attribution only reads the lease history), so the
share of visitors who call only sets how many calls are measured: ``smallest_pool``
lets every human visit call to measure accuracy precisely for the same traffic.
"""
from __future__ import annotations

import bisect
import copy
import heapq
import math
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import sizing
from .attribution import STATUSES
from .simulate_callers import MOBILE_UA, CallerModel, Callers
from .simulate_svg import chart_svg

__all__ = ["simulate", "sweep", "smallest_pool", "chart_svg", "SimulationReport", "CalibrationBin",
           "peak_hours", "counts_as_right", "HUMAN_UA", "BOT_UA", "CallerModel"]

HUMAN_UA = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/120.0 Safari/537.36")
BOT_UA = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
_IP = "5.101.68.156"
_URL = "https://shop.example.ru/catalog?utm_source=yandex&utm_medium=cpc&utm_campaign=sim"
_POOL = "sim"
_BINS = 10  # calibration bins of width 0.1

# event kinds, in the order they run at one instant
_ARRIVE, _BEAT, _CALL, _SAMPLE, _INTENT = 0, 1, 2, 3, 4


@dataclass(frozen=True)
class CalibrationBin:
    low: float
    high: float
    calls: int
    mean_likelihood: float
    share_right: float


@dataclass
class SimulationReport:
    """What a simulated run measured. Shares are of ``calls`` (the calls sent to the engine)."""
    numbers: int                    # dynamic numbers in the simulated pool(s)
    days: float
    visits: int                     # every arrival, bots included
    human_visits: int
    returning_visits: int           # human visits that reused an earlier visitor id
    bot_visits: int
    bot_numbers: int                # bots that were shown a tracking number (the engine excludes them: 0)
    calls: int
    calls_without_number: int       # would-be callers whose page kept its own number (not sent)
    right: int                      # calls counted right (see counts_as_right)
    accuracy: float                 # right / calls
    shares: dict[str, float]        # status -> share of calls (matched, late, ambiguous, unmatched, ...)
    right_by_status: dict[str, int]
    peak_calls: int                 # calls whose visit arrived in a busiest hour of the profile
    peak_accuracy: float
    strict_accuracy: float          # calls to shared numbers counted wrong, as sizing.recommend counts them
    peak_strict_accuracy: float
    utilisation_mean: float         # leased / numbers, sampled over the simulated days
    utilisation_peak: float
    occupied_mean: float            # (leased + cooling) / numbers
    occupied_peak: float
    exhausted_shared: int           # visits given a shared number (pool exhausted)
    exhausted_default: int          # visits given the default number (pool exhausted)
    calibration: list[CalibrationBin]
    implementation: str
    seed: int
    wall_seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def exhaustion_events(self) -> int:
        return self.exhausted_shared + self.exhausted_default

    def summary(self) -> list[str]:
        """Human-readable lines for the CLI."""
        s = self.shares
        lines = [
            f"simulated {self.days:g} day(s): {self.visits:,} visits ({self.human_visits:,} human, "
            f"{self.returning_visits:,} returning, {self.bot_visits:,} bots; bots given a number: {self.bot_numbers})",
            f"pool: {self.numbers} numbers ({self.implementation} build, seed {self.seed})",
            f"calls: {self.calls:,}" + (f" (+{self.calls_without_number} to the page's own number, not sent)"
                                          if self.calls_without_number else ""),
            f"accuracy: {self.accuracy:.2%} (calls attributed to the visitor who made them; a call to a "
            "shared number counts only when its top candidate made it)",
            f"peak-hour accuracy: {self.peak_accuracy:.2%} over {self.peak_calls:,} calls",
            f"counting calls to shared numbers as wrong (as sizing does): {self.strict_accuracy:.2%}, "
            f"peak hour {self.peak_strict_accuracy:.2%}",
            "shares: " + ", ".join(f"{k} {s.get(k, 0.0):.2%}" for k in ("matched", "late", "ambiguous", "unmatched"))
            + "".join(f", {k} {v:.2%}" for k, v in s.items() if k not in ("matched", "late", "ambiguous", "unmatched")
                      and v),
            f"pool utilisation (leased): mean {self.utilisation_mean:.1%}, peak {self.utilisation_peak:.1%}; "
            f"with cooldown: mean {self.occupied_mean:.1%}, peak {self.occupied_peak:.1%}",
            f"exhaustion events: {self.exhaustion_events:,} (shared {self.exhausted_shared:,}, "
            f"default {self.exhausted_default:,})",
            "calibration (likelihood -> share right):",
        ]
        for b in self.calibration:
            lines.append(f"  {b.low:.1f}-{b.high:.1f}: {b.calls:>6,} calls, mean likelihood {b.mean_likelihood:.3f}, "
                         f"right {b.share_right:.3f}")
        lines.append(f"simulated in {self.wall_seconds:.2f} s")
        return lines


def counts_as_right(attribution: Any, caller: str) -> bool:
    """Whether ``attribution`` names ``caller`` (a visitor id): for a call to a shared number (it has
    candidates) its top candidate, the engine's best guess, must be the caller; otherwise its visitor."""
    candidates = getattr(attribution, "candidates", ())
    if candidates:
        return candidates[0].visitor_id == caller
    return attribution.visitor_id == caller


def peak_hours(daily_profile: Sequence[float]) -> tuple[int, ...]:
    """The busiest hours of a profile (every hour tied with the maximum): what sizing.recommend sizes for."""
    values = list(daily_profile)
    if len(values) != 24 or min(values) < 0 or max(values) <= 0:
        raise ValueError("daily_profile: expected 24 non-negative hourly values, not all zero")
    top = max(values)
    return tuple(h for h, v in enumerate(values) if v >= top * (1 - 1e-9))


def _numbers(n: int) -> list[str]:
    return [f"+7495{i:07d}" for i in range(1, n + 1)]


def _config(config: Mapping[str, Any] | None, numbers: int, hold: float, cooldown: float,
            late: float | None) -> tuple[dict[str, Any], list[str]]:
    """The config to run, and the names of the dynamic pools measured."""
    if config is None:
        pool: dict[str, Any] = {"type": "dynamic", "numbers": _numbers(numbers), "hold_seconds": int(hold),
                                "cooldown_seconds": int(cooldown), "on_exhausted": "share"}
        if late is not None:
            pool["late_seconds"] = int(late)
        return {"site": {"default_number": "+74951234567"}, "pools": {_POOL: pool},
                "rules": [{"name": "all", "pool": _POOL}]}, [_POOL]
    cfg = copy.deepcopy(dict(config))
    pools = cfg.get("pools") or {}
    dynamic = [name for name, p in pools.items() if isinstance(p, Mapping) and p.get("type", "dynamic") == "dynamic"]
    if numbers is not None and dynamic:
        pools[dynamic[0]] = dict(pools[dynamic[0]], numbers=_numbers(numbers))
    return cfg, dynamic


def simulate(config: Mapping[str, Any] | None = None, *, visits_per_day: float = 3000, days: float = 1,
             avg_visit_minutes: float = 4.0, numbers: int | None = None, hold_seconds: float = 900,
             cooldown_seconds: float = 300, late_seconds: float | None = None, call_share: float = 0.05,
             call_delay: sizing.CallDelay = sizing.CallDelay(), returning_share: float = 0.2,
             bot_share: float = 0.05, daily_profile: Sequence[float] = sizing.DEFAULT_DAILY_PROFILE,
             seed: int = 0, heartbeat_seconds: float = 60, implementation: str | None = None,
             store: Any = None, progress: bool = False, start: float = 1_800_000_000.0,
             sample_seconds: float = 60, call_minutes: float = 3.0,
             callers: CallerModel | None = None) -> SimulationReport:
    """Simulate ``days`` of traffic and calls through a real Engine and measure attribution.

    ``visits_per_day`` counts the human visits (those that take a number, as in
    ``sizing.recommend``); bots come on top, ``bot_share`` of all arrivals.
    ``numbers`` is the pool size (default: ``sizing.recommend`` for a 95% target);
    with a ``config`` it replaces the numbers of its first dynamic pool, whose own
    hold / cooldown then apply. ``late_seconds`` overrides the engine's late window
    for the built-in config. ``start`` is local midnight of the first day (unix
    seconds); hour h of the profile is ``start + h * 3600``. ``callers`` (a CallerModel) adds call
    intents (a tap or copy of the number shortly before the call, sent to ``Engine.intent``),
    landline callers and visitors' regions. Deterministic for a seed.
    """
    from .engine import Engine

    if not 0 <= call_share <= 1 or not 0 <= returning_share <= 1 or not 0 <= bot_share < 1:
        raise ValueError("call_share, returning_share: shares from 0 to 1; bot_share: from 0 to below 1")
    if visits_per_day <= 0 or days <= 0 or avg_visit_minutes <= 0 or heartbeat_seconds <= 0:
        raise ValueError("visits_per_day, days, avg_visit_minutes and heartbeat_seconds must be positive")
    shares = [v / sum(daily_profile) for v in daily_profile]
    busiest = set(peak_hours(daily_profile))
    if numbers is None and config is None:
        numbers = sizing.recommend(visits_per_day, avg_visit_minutes, 0.95, hold_seconds=hold_seconds,
                                   cooldown_seconds=cooldown_seconds, call_delay=call_delay,
                                   daily_profile=daily_profile).numbers
    cfg, measured = _config(config, numbers, hold_seconds, cooldown_seconds, late_seconds)  # type: ignore[arg-type]

    rng = random.Random(seed)
    cs = Callers(callers, seed) if callers is not None and callers.active else None
    intents = 0
    wall = time.perf_counter()
    engine = Engine.from_config(cfg, implementation=implementation, store=store, now=start)
    arrivals_per_day = visits_per_day / (1.0 - bot_share)
    horizon = start + days * 86400.0
    mean_visit = avg_visit_minutes * 60.0
    tail_mean = call_delay.tail_mean_seconds
    during = call_delay.during_visit_share

    heap: list[tuple[float, int, int, Any]] = []
    seq = 0

    def push(t: float, kind: int, data: Any) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(heap, (t, kind, seq, data))

    def next_arrival(t: float) -> float | None:
        """The next Poisson arrival after t; the rate is constant within an hour (memoryless restarts)."""
        while t < horizon:
            hour_end = start + (math.floor((t - start) / 3600.0) + 1) * 3600.0
            rate = arrivals_per_day * shares[int((t - start) // 3600) % 24] / 3600.0
            if rate > 0:
                nxt = t + rng.expovariate(rate)
                if nxt < hour_end:
                    return nxt if nxt < horizon else None
            t = hour_end
        return None

    first = next_arrival(start)
    if first is not None:
        push(first, _ARRIVE, None)
    push(start, _SAMPLE, None)

    seen_t: list[float] = []     # arrival times of human visitors, in order (for returning visitors)
    seen_v: list[int] = []
    n_visitors = 0
    counts = {"visits": 0, "human": 0, "returning": 0, "bots": 0, "bot_numbers": 0, "no_number": 0}
    status_n: dict[str, int] = {}
    status_right: dict[str, int] = {}
    calls = right = peak_calls = peak_right = strict = peak_strict = 0
    bins: list[list[Any]] = [[0, 0.0, 0] for _ in range(_BINS)]  # calls, sum of likelihoods, right
    samples = leased_sum = occupied_sum = 0.0
    leased_peak = occupied_peak = 0.0
    total_numbers = 0

    bar = None
    if progress:
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        bar = Progress(TextColumn("simulating"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                       TimeRemainingColumn(), transient=True)
        task = bar.add_task("simulate", total=days * 86400.0)
        bar.start()
    try:
        while heap:
            t, kind, _, data = heapq.heappop(heap)
            if kind == _BEAT:
                token, end = data
                engine.heartbeat(token, now=t)
                if t + heartbeat_seconds <= end:
                    push(t + heartbeat_seconds, _BEAT, data)
            elif kind == _INTENT:
                token, what, who = data
                intents += engine.intent(token, what, now=t, visitor=f"v{who}")
            elif kind == _ARRIVE:
                counts["visits"] += 1
                nxt = next_arrival(t)
                if nxt is not None:
                    push(nxt, _ARRIVE, None)
                if rng.random() < bot_share:
                    counts["bots"] += 1
                    got = engine.assign({"visitor_id": f"b{counts['bots']}", "ip": "66.249.66.1", "url": _URL,
                                         "user_agent": BOT_UA}, now=t)
                    counts["bot_numbers"] += got.number is not None
                    continue
                counts["human"] += 1
                lo = bisect.bisect_left(seen_t, t - 86400.0)
                if rng.random() < returning_share and lo < len(seen_t):
                    who = seen_v[rng.randrange(lo, len(seen_t))]
                    counts["returning"] += 1
                else:
                    n_visitors += 1
                    who = n_visitors
                seen_t.append(t)
                seen_v.append(who)
                duration = rng.expovariate(1.0 / mean_visit)
                ip, agent = _IP, HUMAN_UA
                if cs is not None:
                    region = cs.region(who)
                    ip = region[0] if region is not None else _IP
                    agent = MOBILE_UA if cs.mobile(who) else HUMAN_UA
                got = engine.assign({"visitor_id": f"v{who}", "session_id": f"s{counts['human']}", "ip": ip,
                                     "url": _URL, "user_agent": agent}, now=t)
                if got.token is not None and heartbeat_seconds <= duration:
                    push(t + heartbeat_seconds, _BEAT, (got.token, t + duration))
                if rng.random() < call_share:
                    if rng.random() < during:
                        at = t + rng.random() * duration
                    else:
                        at = t + duration + rng.expovariate(1.0 / tail_mean)
                    if cs is not None and got.token is not None:
                        left = cs.intent(who)
                        if left is not None:  # a tap or copy on the open page, the call right after it
                            moment = t + cs.uniform() * duration
                            push(moment, _INTENT, (got.token, left[0], who))
                            at = moment + left[1]
                    if got.number is None:
                        counts["no_number"] += 1
                    else:
                        peak = int((t - start) // 3600) % 24 in busiest
                        push(at, _CALL, (who, got.number, peak))
                elif cs is not None and got.token is not None and cs.noise():  # a tap that leads to no call
                    push(t + cs.uniform() * duration, _INTENT, (got.token, "click", who))
            elif kind == _CALL:
                who, number, peak = data
                calls += 1
                talk = rng.expovariate(1.0 / (call_minutes * 60.0))
                answered = rng.random() < 0.85
                made = engine.attribute({"call_id": f"c{calls}", "number": number,
                                         "caller": cs.caller(who) if cs is not None else f"+7916{who:07d}",
                                         "started_at": t, "duration_seconds": round(talk) if answered else 0,
                                         "answered": answered}, now=t)
                ok = counts_as_right(made, f"v{who}")
                sure = ok and not made.candidates and made.status != "ambiguous"
                right += ok
                strict += sure
                status_n[made.status] = status_n.get(made.status, 0) + 1
                status_right[made.status] = status_right.get(made.status, 0) + ok
                if peak:
                    peak_calls += 1
                    peak_right += ok
                    peak_strict += sure
                b = bins[min(int(made.likelihood * _BINS), _BINS - 1)]
                b[0] += 1
                b[1] += made.likelihood
                b[2] += ok
            else:  # _SAMPLE
                pools = engine.stats(now=t)["pools"]
                leased = sum(pools[p]["leased"] for p in measured)
                occupied = leased + sum(pools[p]["cooling"] for p in measured)
                total_numbers = sum(pools[p]["numbers"] for p in measured)
                if total_numbers:
                    samples += 1
                    leased_sum += leased / total_numbers
                    occupied_sum += occupied / total_numbers
                    leased_peak = max(leased_peak, leased / total_numbers)
                    occupied_peak = max(occupied_peak, occupied / total_numbers)
                if t + sample_seconds < horizon:
                    push(t + sample_seconds, _SAMPLE, None)
                if bar is not None:
                    bar.update(task, completed=t - start)
        pools = engine.stats(now=horizon)["pools"]
        implementation_name = engine.implementation
    finally:
        if bar is not None:
            bar.stop()
        engine.close()

    def share(n: int) -> float:
        return n / calls if calls else 0.0

    return SimulationReport(
        numbers=total_numbers, days=days, visits=counts["visits"], human_visits=counts["human"],
        returning_visits=counts["returning"], bot_visits=counts["bots"], bot_numbers=counts["bot_numbers"],
        calls=calls, calls_without_number=counts["no_number"], right=right, accuracy=share(right),
        shares={s: share(status_n.get(s, 0)) for s in STATUSES}, right_by_status=status_right,
        peak_calls=peak_calls, peak_accuracy=peak_right / peak_calls if peak_calls else 0.0,
        strict_accuracy=share(strict), peak_strict_accuracy=peak_strict / peak_calls if peak_calls else 0.0,
        utilisation_mean=leased_sum / samples if samples else 0.0, utilisation_peak=leased_peak,
        occupied_mean=occupied_sum / samples if samples else 0.0, occupied_peak=occupied_peak,
        exhausted_shared=sum(pools[p]["exhausted_shared"] for p in measured),
        exhausted_default=sum(pools[p]["exhausted_default"] for p in measured),
        calibration=[CalibrationBin(i / _BINS, (i + 1) / _BINS, n, s / n, r / n)
                     for i, (n, s, r) in enumerate(bins) if n],
        implementation=implementation_name, seed=seed, wall_seconds=time.perf_counter() - wall,
        extra={"status_calls": status_n, "intents": intents},
    )


def sweep(numbers: Sequence[int], **kw: Any) -> list[tuple[int, SimulationReport]]:
    """simulate() for each pool size, the same traffic (same seed) each time."""
    return [(n, simulate(numbers=n, **kw)) for n in numbers]


def smallest_pool(target: float = 0.95, lo: int = 1, hi: int = 400, *, metric: str = "peak_strict_accuracy",
                  **kw: Any) -> tuple[int, SimulationReport]:
    """The smallest pool whose simulated ``metric`` reaches ``target``, by bisection over [lo, hi].

    It measures what ``sizing.recommend`` promises, like with like: by default the
    peak-hour accuracy (calls of visits that arrived in the profile's busiest hours)
    with ambiguous calls counted wrong, and a late window equal to the cooldown (calls
    after hold + cooldown are lost) unless ``late_seconds`` is given. Pass
    ``metric="peak_accuracy"`` to count the engine's top candidate of an ambiguous call.
    Every human visit calls unless ``call_share`` is given (calls do not disturb the
    pools, so this only measures more precisely). Every size runs the same traffic (same
    seed), so the accuracy is close to monotone in the pool size. Returns (size, its
    report); ``hi`` itself when even ``hi`` misses the target.
    """
    kw.setdefault("call_share", 1.0)
    if kw.get("config") is None:
        kw.setdefault("late_seconds", kw.get("cooldown_seconds", 300))
    cache: dict[int, SimulationReport] = {}

    def run(n: int) -> SimulationReport:
        if n not in cache:
            cache[n] = simulate(numbers=n, **kw)
        return cache[n]

    if getattr(run(hi), metric) < target:
        return hi, run(hi)
    while lo < hi:
        mid = (lo + hi) // 2
        if getattr(run(mid), metric) >= target:
            hi = mid
        else:
            lo = mid + 1
    return hi, run(hi)
