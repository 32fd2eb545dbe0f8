"""``Engine.report`` and ``Engine.pool_usage``: what the calls were worth, by source.

A call belongs to the attributes of the visit it is attributed to (the summary its attribution
keeps), to its rule, pool, number and status, and to the day and hour it started (UTC); an
``unmatched`` call belongs to no visit: its group has every key None (but ``day`` / ``hour``)
and ``unmatched`` True. A deal belongs to its call's group (selected by the call's time); an
unattributed deal to the unmatched group (selected by its own time). Visits come from the
counters the engine keeps (see visits.py), selected by their hour.

Cost comes from the pricing plan (``k50core.pricing``, settings ``reports.plan`` /
``reports.package`` / ``reports.plans_file``): the month's fixed charges for the configured
numbers (at least the plan's minimum, plus a prepaid package), times the report's length in
months, shared between the groups by their visits (the traffic the numbers are there for; by
calls when no visits were counted), plus the overage on forwarded minutes beyond the package,
shared by billed minutes. So a group's cost per call is high where its visits seldom call.
"""
from __future__ import annotations

import functools
import math
import os
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from decimal import Decimal
from fractions import Fraction
from typing import Any

import orjson
import phonenumbers

from .. import pricing
from ..sizing import recommend
from . import storage
from .dimensions import ALL, TIMES, ReportError, parse_by, visit_key_names

MONTH_SECONDS = 30.4375 * 86400
COLUMNS = ("visits", "calls", "answered", "first_time_callers", "minutes", "deals", "won", "revenue", "cost")
MAX_STEPS = 10_000


def _time_key(name: str, t: float) -> str:
    d = datetime.fromtimestamp(t, timezone.utc)
    return d.strftime("%Y-%m-%d") if name == "day" else d.strftime("%Y-%m-%dT%H:00Z")


def billed_minutes(duration: float, answered: bool) -> int:
    """Forwarded minutes as billed: each answered call rounded up to a whole minute."""
    return math.ceil(Fraction(duration) / 60) if answered and duration > 0 else 0


def _check_period(since: float | None, until: float | None) -> None:
    for name, value in (("since", since), ("until", until)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not math.isfinite(value)):
            raise ReportError(f"{name}: expected unix seconds")
    if since is not None and until is not None and until <= since:
        raise ReportError("until: expected a time after since")


def report(store: Any, config: Any, by: str | Sequence[str], since: float | None = None,
           until: float | None = None, plans: pricing.PricingConfig | None = None,
           settings: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """One dict per group, the most calls first (see the module doc)."""
    dims = parse_by(by)
    _check_period(since, until)
    settings = settings or {}
    width = len(dims)
    groups: dict[tuple[Any, ...], dict[str, Any]] = {}

    def group(key: tuple[Any, ...]) -> dict[str, Any]:
        g = groups.get(key)
        if g is None:
            g = groups[key] = dict(zip(dims, key[1:]))
            g.update(unmatched=key[0], visits=0, calls=0, answered=0, first_time_callers=0, minutes=0, deals=0,
                     won=0, revenue=0.0)
        return g

    # calls with their deals' figures, grouped in the database; an unmatched call's group has no
    # keys but its times
    timed = any(d in TIMES for d in dims)
    no_keys = (None,) * width

    def key_of(unmatched: Any, values: Sequence[Any]) -> tuple[Any, ...]:
        if not timed:  # (the columns are text: their values are str or None already)
            return (True,) + no_keys if unmatched else (False,) + tuple(values)
        out = tuple(_time_key(d, v) if d in TIMES else None if v is None or unmatched else str(v)
                    for d, v in zip(dims, values))
        return (bool(unmatched),) + out

    for found in storage.call_groups(store, dims, since, until):
        g = group(key_of(found[0], found[1:width + 1]))
        calls, answered, first, minutes, deals, won, revenue = found[width + 1:]
        g["calls"] += int(calls)
        g["answered"] += int(answered or 0)
        g["first_time_callers"] += int(first or 0)
        g["minutes"] += int(minutes or 0)
        g["deals"] += int(deals or 0)
        g["won"] += int(won or 0)
        g["revenue"] += float(revenue or 0)
    for created, status, amount in storage.lone_deals(store, since, until):  # unattributed: their own time
        g = group(key_of(True, [created] * width))
        g["deals"] += 1
        if status == "won":
            g["won"] += 1
            g["revenue"] += float(amount)

    # visits, from the counters
    kinds = visit_key_names(dims)
    if kinds is None:
        for g in groups.values():
            g["visits"] = None
    else:
        by_time = "hour" if "hour" in dims else "day" if "day" in dims else None
        for values, at, n in _visit_groups(store, kinds[0], dims, since, until, by_time):
            key: tuple[Any, ...] = (False,) + tuple(
                _time_key(d, at) if d in TIMES and at is not None else values.get(d) for d in dims) if timed \
                else (False,) + tuple(values.get(d) for d in dims)
            group(key)["visits"] += n

    rows = list(groups.values())
    _add_cost(rows, store, config, since, until, plans, settings)
    for r in rows:
        r["revenue"] = round(r["revenue"], 2)
    # keys are str or None (times as text): no conversion in the sort key. Each group's dict was
    # made with its keys in the output's order (dims, unmatched, COLUMNS): returned as it is.
    rows.sort(key=lambda r: (-r["calls"], -(r["visits"] or 0), r["unmatched"], [r[d] or "" for d in dims]))
    return rows


def _visit_groups(store: Any, kind: str, dims: Sequence[str], since: float | None, until: float | None,
                  by_time: str | None) -> list[tuple[dict[str, Any], float | None, int]]:
    """(dimension values, hour or day start or None, visits) from the counter ``kind``; the ALL
    counter's grouped by the dimensions asked for, in the database (its columns, no JSON read)."""
    if kind != ALL:
        return [(orjson.loads(text), at, n) for text, at, n in storage.visit_counts(store, kind, since, until, by_time)]
    named = [d for d in dims if d not in TIMES]
    return [(dict(zip(named, found)), found[-2], int(found[-1]))
            for found in storage.combo_counts(store, named, since, until, by_time)]


def _code(number: str) -> str:
    """A number's dialling code (its national destination code: 495, 812, 800)."""
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return "other"
    national = phonenumbers.national_significant_number(parsed)
    n = phonenumbers.length_of_national_destination_code(parsed)
    return national[:n] if n > 0 else "other"


def monthly_charges(config: Any, plans: pricing.PricingConfig, plan: str, package: str | None,
                    minutes_a_month: float) -> tuple[Decimal, Decimal]:
    """(fixed, overage) of a month under ``plan`` for the config's numbers and these minutes."""
    numbers = [n for p in config.pools.values() for n in p.numbers]
    if plan == "own":
        return max(plans.own.per_number_rub * len(numbers), plans.own.minimum_rub), Decimal(0)
    if plan == "code":
        return Decimal(0), Decimal(0)
    p = plans.provider
    fixed = max(sum((p.number_price(_code(n)) for n in numbers), Decimal(0)), p.minimum_rub)
    included = p.minutes_included
    if package is not None and package in p.prepaid_packages:
        fixed += p.prepaid_packages[package].price_rub
        included = p.prepaid_packages[package].minutes
    over = max(0.0, minutes_a_month - included)
    return fixed, p.overage_rub_per_minute * Decimal(str(round(over, 6)))


def _plans(path: str | None) -> pricing.PricingConfig:
    """The plans file, read again only when it changed (a dashboard asks for reports often)."""
    try:
        stamp = os.stat(path).st_mtime_ns if path else 0
    except OSError:
        stamp = -1  # load_plans names the problem
    return _load_plans(path, stamp)


@functools.lru_cache(maxsize=8)
def _load_plans(path: str | None, stamp: int) -> pricing.PricingConfig:
    return pricing.load_plans(path)


def _span(store: Any, since: float | None, until: float | None) -> float:
    if since is None or until is None:
        lows, highs = zip(storage.call_span(store), storage.visit_span(store))
        found_low = [x for x in lows if x is not None]
        found_high = [x for x in highs if x is not None]
        since = since if since is not None else (min(found_low) if found_low else None)
        until = until if until is not None else (max(found_high) if found_high else None)
    if since is None or until is None:
        return 0.0
    return max(until - since, 86400.0)  # a day at least: the plan is paid for whole days


def _add_cost(rows: list[dict[str, Any]], store: Any, config: Any, since: float | None,
              until: float | None, plans: pricing.PricingConfig | None, settings: Mapping[str, Any]) -> None:
    plans = plans or _plans(settings.get("plans_file"))
    months = _span(store, since, until) / MONTH_SECONDS
    minutes = sum(r["minutes"] for r in rows)
    fixed, overage = monthly_charges(config, plans, settings.get("plan", "provider"), settings.get("package"),
                                     minutes / months if months else 0.0)
    fixed_total, over_total = float(fixed) * months, float(overage) * months
    visits = sum(r["visits"] or 0 for r in rows)
    share_by = "visits" if visits else "calls"
    base = visits or sum(r["calls"] for r in rows)
    for r in rows:
        cost = fixed_total * (r[share_by] or 0) / base if base else 0.0
        cost += over_total * r["minutes"] / minutes if minutes else 0.0
        r["cost"] = round(cost, 2)


def pool_usage(store: Any, config: Any, pool: str, since: float, until: float, step: float,
               visits_per_day: float | None = None) -> dict[str, Any]:
    """Per ``step`` seconds of [since, until): the peak of leased numbers sampled, the pool's
    size, and its exhaustion events (shared / default, exact: the core's counters); with the
    size ``k50core.sizing.recommend`` gives for the visits and lease lengths of the period."""
    if pool not in config.pools:
        raise ReportError(f"pool: unknown pool {pool[:64]!r} (known: {', '.join(config.pools) or 'none'})")
    _check_period(since, until)
    if since is None or until is None:
        raise ReportError("since, until: both are needed")
    if isinstance(step, bool) or not isinstance(step, (int, float)) or not math.isfinite(step) or step < 60:
        raise ReportError("step: expected at least 60 seconds")
    count = math.ceil((until - since) / step)
    if count > MAX_STEPS:
        raise ReportError(f"step: {count} steps asked for, at most {MAX_STEPS}")
    steps: list[dict[str, Any]] = [{"at": since + i * step, "peak_leased": None, "numbers": None, "exhausted_shared": 0,
              "exhausted_default": 0} for i in range(count)]
    for at, numbers, leased, shared, default in storage.pool_samples(store, pool, since, until):
        s = steps[min(int((at - since) // step), count - 1)]
        s["numbers"] = numbers
        if leased is not None:
            s["peak_leased"] = leased if s["peak_leased"] is None else max(s["peak_leased"], leased)
        s["exhausted_shared"] += int(shared)
        s["exhausted_default"] += int(default)
    for s in steps:
        if s["exhausted_shared"] or s["exhausted_default"]:  # it ran out: every number was leased then
            s["peak_leased"] = max(s["peak_leased"] or 0, s["numbers"] or 0)
    p = config.pools[pool]
    out: dict[str, Any] = {"pool": pool, "type": p.type, "numbers": len(p.numbers), "step": step, "steps": steps,
                           "recommended_numbers": None}
    if p.type == "dynamic":
        days = (until - since) / 86400.0
        if visits_per_day is None:
            visits = _pool_visits(store, pool, since, until)
            visits_per_day = visits / days if days > 0 else 0.0
        lease = storage.mean_lease_seconds(store, pool, since, until)
        if visits_per_day > 0:
            try:
                out["recommended_numbers"] = recommend(visits_per_day, (lease or 0.0) / 60.0,
                                                       hold_seconds=p.hold_seconds,
                                                       cooldown_seconds=p.cooldown_seconds).numbers
            except ValueError:  # a target late calls alone make unreachable: no recommendation
                pass
        out["visits_per_day"] = round(visits_per_day, 2)
    return out


def _pool_visits(store: Any, pool: str, since: float, until: float) -> int:
    total = 0
    for text, _, n in storage.visit_counts(store, "traffic", since, until, None):
        if orjson.loads(text).get("pool") == pool:
            total += n
    return total
