"""Cost calculator: what a month of call tracking costs under each plan.

Prices are configuration (``examples/plans.yaml`` by default, see its comments for
which values come from the FAQ and which are example defaults). Money is
``decimal.Decimal`` rounded to kopecks, so no float rounding reaches an invoice.
"""
from __future__ import annotations

import math
import numbers as _numbers
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timezone, tzinfo
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from fractions import Fraction
from importlib import resources
from typing import Any

import yaml

from .config.files import read_config
from .errors import ConfigError, Problem

KOPECK = Decimal("0.01")
PLANS = ("provider", "own", "code")


# --- the config -----------------------------------------------------------------------

@dataclass(frozen=True)
class PrepaidPackage:
    """A larger phone-forwarding package bought up front; replaces the included minutes."""
    name: str
    minutes: int
    price_rub: Decimal


@dataclass(frozen=True)
class ProviderPlan:
    title: str
    minimum_rub: Decimal
    number_price_rub: Mapping[str, Decimal]  # by code; "other" for any other code
    minutes_included: int
    overage_rub_per_minute: Decimal
    sip_minutes_included: int
    sip_overage_rub_per_minute: Decimal
    prepaid_packages: Mapping[str, PrepaidPackage]

    def number_price(self, code: str) -> Decimal:
        return self.number_price_rub.get(code, self.number_price_rub["other"])


@dataclass(frozen=True)
class OwnNumbersPlan:
    title: str
    per_number_rub: Decimal
    minimum_rub: Decimal


@dataclass(frozen=True)
class DiscountTier:
    from_turnover_rub: Decimal
    percent: Decimal


@dataclass(frozen=True)
class PricingConfig:
    currency: str
    provider: ProviderPlan
    own: OwnNumbersPlan
    code_title: str
    agency_discounts: tuple[DiscountTier, ...]

    def discount_percent(self, turnover_rub: int | Decimal | None) -> Decimal:
        """The tier for a monthly agency turnover; 0 when there is none."""
        percent = Decimal(0)
        if turnover_rub is None:
            return percent
        for tier in self.agency_discounts:  # validated ascending
            if Decimal(turnover_rub) >= tier.from_turnover_rub:
                percent = tier.percent
        return percent


class _Reader:
    """Reads typed values out of the raw mapping, collecting every fault with its place."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def fail(self, place: str, message: str) -> None:
        self.problems.append((place, message))

    def mapping(self, raw: Any, place: str) -> Mapping[str, Any]:
        if isinstance(raw, Mapping):
            return raw
        self.fail(place, "expected a mapping")
        return {}

    def money(self, raw: Mapping[str, Any], key: str, place: str) -> Decimal:
        value = raw.get(key)
        where = f"{place}.{key}"
        if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
            self.fail(where, "expected a non-negative number" if key in raw else "missing")
            return Decimal(0)
        try:
            amount = Decimal(str(value))  # str(): 0.1 stays 0.1, not its binary neighbour
        except InvalidOperation:
            self.fail(where, "expected a non-negative number")
            return Decimal(0)
        if not amount.is_finite() or amount < 0:
            self.fail(where, "expected a non-negative number")
            return Decimal(0)
        return amount

    def minutes(self, raw: Mapping[str, Any], key: str, place: str) -> int:
        value = raw.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            self.fail(f"{place}.{key}", "expected a non-negative whole number of minutes" if key in raw else "missing")
            return 0
        return value

    def text(self, raw: Mapping[str, Any], key: str, default: str) -> str:
        return str(raw.get(key, default))


def load_plans(path: str | os.PathLike[str] | Mapping[str, Any] | None = None) -> PricingConfig:
    """The pricing config from a YAML/JSON/TOML file or a mapping; the bundled defaults by default.

    Raises ConfigError listing every fault as ``(place, message)``, e.g.
    ``("plans.provider.minutes_included", "expected a non-negative whole number of minutes")``.
    """
    if path is None:
        raw = yaml.safe_load((resources.files("k50core") / "examples" / "plans.yaml").read_text(encoding="utf-8"))
    else:
        raw = read_config(path)
    return parse_plans(raw)


def parse_plans(raw: Any) -> PricingConfig:
    """Validate a raw config mapping (see ``load_plans``)."""
    r = _Reader()
    top = r.mapping(raw, "")
    plans = r.mapping(top.get("plans"), "plans")
    for name in plans:
        if name not in PLANS:
            r.fail(f"plans.{name}", f"unknown plan (expected one of {', '.join(PLANS)})")

    p, where = r.mapping(plans.get("provider"), "plans.provider"), "plans.provider"
    prices_raw = r.mapping(p.get("number_price_rub"), f"{where}.number_price_rub")
    prices = {str(code): r.money(prices_raw, code, f"{where}.number_price_rub") for code in prices_raw}
    if prices_raw and "other" not in prices:
        r.fail(f"{where}.number_price_rub.other", "missing (the price for any other code)")
    sip = r.mapping(p.get("sip"), f"{where}.sip")
    packages: dict[str, PrepaidPackage] = {}
    packages_raw = r.mapping(p.get("prepaid_packages", {}), f"{where}.prepaid_packages")
    for name, pkg in packages_raw.items():
        pw = f"{where}.prepaid_packages.{name}"
        pkg = r.mapping(pkg, pw)
        packages[str(name)] = PrepaidPackage(str(name), r.minutes(pkg, "minutes", pw), r.money(pkg, "price_rub", pw))
    provider = ProviderPlan(
        title=r.text(p, "title", "provider numbers"),
        minimum_rub=r.money(p, "minimum_rub", where),
        number_price_rub=prices,
        minutes_included=r.minutes(p, "minutes_included", where),
        overage_rub_per_minute=r.money(p, "overage_rub_per_minute", where),
        sip_minutes_included=r.minutes(sip, "minutes_included", f"{where}.sip"),
        sip_overage_rub_per_minute=r.money(sip, "overage_rub_per_minute", f"{where}.sip"),
        prepaid_packages=packages,
    )

    o, where = r.mapping(plans.get("own"), "plans.own"), "plans.own"
    own = OwnNumbersPlan(r.text(o, "title", "own numbers"), r.money(o, "per_number_rub", where),
                         r.money(o, "minimum_rub", where))
    code = r.mapping(plans.get("code", {}), "plans.code")

    tiers: list[DiscountTier] = []
    tiers_raw = top.get("agency_discounts", [])
    if not isinstance(tiers_raw, list):
        r.fail("agency_discounts", "expected a list of {from_turnover_rub, percent}")
        tiers_raw = []
    for i, tier in enumerate(tiers_raw):
        tw = f"agency_discounts[{i}]"
        tier = r.mapping(tier, tw)
        t = DiscountTier(r.money(tier, "from_turnover_rub", tw), r.money(tier, "percent", tw))
        if t.percent > 100:
            r.fail(f"{tw}.percent", "expected a percentage from 0 to 100")
        if tiers and t.from_turnover_rub <= tiers[-1].from_turnover_rub:
            r.fail(f"{tw}.from_turnover_rub", "tiers must be in ascending order of turnover")
        tiers.append(t)

    if r.problems:
        raise ConfigError(r.problems)
    return PricingConfig(str(top.get("currency", "RUB")), provider, own,
                         r.text(code, "title", "code tracker"), tuple(tiers))


# --- usage from calls -----------------------------------------------------------------

@dataclass(frozen=True)
class Usage:
    """A month of forwarding: minutes are billed per started minute of each answered call."""
    phone_minutes: int = 0
    sip_minutes: int = 0
    calls: int = 0
    answered_calls: int = 0


def _month_bounds(month: str | date, tz: tzinfo) -> tuple[float, float]:
    if isinstance(month, str):
        try:
            first = datetime.strptime(month, "%Y-%m")
        except ValueError:
            raise ValueError(f"month: expected 'YYYY-MM', got {month!r}") from None
    elif isinstance(month, date):
        first = datetime(month.year, month.month, 1)
    else:
        raise ValueError(f"month: expected 'YYYY-MM' or a date, got {month!r}")
    start = first.replace(tzinfo=tz)
    end = start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)
    return start.timestamp(), end.timestamp()


def _seconds(call: Mapping[str, Any], key: str, place: str) -> float:
    value = call.get(key)
    if isinstance(value, bool) or not isinstance(value, _numbers.Real) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{place}.{key}: expected a non-negative number of seconds, got {value!r}")
    return float(value)


def monthly_usage(calls: Iterable[Mapping[str, Any]], month: str | date | None = None,
                  tz: tzinfo = timezone.utc) -> Usage:
    """Billable usage of the calls that started in ``month`` ('YYYY-MM' in ``tz``; all calls if None).

    A call is a mapping with ``started_at`` (unix seconds), ``duration_seconds``,
    ``answered`` (bool), optional ``forwarded_seconds`` (default: the duration when
    answered) and optional ``sip`` (forwarded to a SIP address). Unanswered calls are
    counted but not billed. ValueError names the call and field at fault.
    """
    bounds = _month_bounds(month, tz) if month is not None else None
    phone = sip_minutes = count = answered_count = 0
    for i, call in enumerate(calls):
        place = f"calls[{i}]"
        if not isinstance(call, Mapping):
            raise ValueError(f"{place}: expected a mapping")
        started = call.get("started_at")
        if isinstance(started, bool) or not isinstance(started, _numbers.Real) or not math.isfinite(started):
            raise ValueError(f"{place}.started_at: expected unix seconds, got {started!r}")
        duration = _seconds(call, "duration_seconds", place)
        answered = call.get("answered")
        if not isinstance(answered, bool):
            raise ValueError(f"{place}.answered: expected true or false, got {answered!r}")
        to_sip = call.get("sip", False)
        if not isinstance(to_sip, bool):
            raise ValueError(f"{place}.sip: expected true or false, got {to_sip!r}")
        forwarded = _seconds(call, "forwarded_seconds", place) if "forwarded_seconds" in call else duration
        if bounds is not None and not bounds[0] <= float(started) < bounds[1]:
            continue
        count += 1
        if not answered:
            continue
        answered_count += 1
        minutes = math.ceil(Fraction(forwarded) / 60)  # Fraction: exact, 120.0 s is 2 minutes
        if to_sip:
            sip_minutes += minutes
        else:
            phone += minutes
    return Usage(phone, sip_minutes, count, answered_count)


# --- invoices -------------------------------------------------------------------------

@dataclass(frozen=True)
class LineItem:
    description: str
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal
    billed_at_month_end: bool = False  # overage: invoiced after the month, not prepaid


@dataclass(frozen=True)
class Invoice:
    """A month's bill under one plan, in ``currency`` (RUB)."""
    plan: str
    title: str
    lines: tuple[LineItem, ...]
    total: Decimal
    package: str | None = None
    discount_percent: Decimal = Decimal(0)
    notes: tuple[str, ...] = field(default=())
    currency: str = "RUB"

    @property
    def label(self) -> str:
        return f"{self.plan} + {self.package} package" if self.package else self.plan

    @property
    def prepaid(self) -> Decimal:
        return sum((line.amount for line in self.lines if not line.billed_at_month_end), Decimal(0))

    @property
    def billed_at_month_end(self) -> Decimal:
        return sum((line.amount for line in self.lines if line.billed_at_month_end), Decimal(0))


def _line(description: str, quantity: int | Decimal, unit: Decimal, month_end: bool = False) -> LineItem:
    amount = (Decimal(quantity) * unit).quantize(KOPECK, ROUND_HALF_UP)
    return LineItem(description, Decimal(quantity), unit, amount, month_end)


def _as_usage(usage: Usage | int) -> Usage:
    if isinstance(usage, Usage):
        return usage
    if isinstance(usage, bool) or not isinstance(usage, _numbers.Real) or not math.isfinite(usage) \
            or usage < 0 or int(usage) != usage:
        raise ValueError(f"usage: expected a Usage or a non-negative whole number of minutes, got {usage!r}")
    return Usage(phone_minutes=int(usage))


def _minimum_top_up(lines: list[LineItem], minimum: Decimal) -> None:
    charged = sum((line.amount for line in lines), Decimal(0))
    if charged < minimum:
        lines.append(_line(f"top-up to the monthly minimum of {minimum} RUB", 1, minimum - charged))


def _overage(lines: list[LineItem], used: int, included: int, rate: Decimal, what: str) -> None:
    if used > included:
        lines.append(_line(f"{what} over the {included}-minute package", used - included, rate, month_end=True))


def estimate(numbers: int, code: str = "495", usage: Usage | int = 0, plan: str = "provider",
             turnover_rub: int | Decimal | None = None, config: PricingConfig | None = None,
             package: str | None = None) -> Invoice:
    """The monthly invoice for ``numbers`` tracking numbers with code ``code``.

    ``usage`` is a ``Usage`` (see ``monthly_usage``) or phone-forwarded minutes.
    ``plan``: "provider" (our numbers, minutes packages), "own" (the client's numbers,
    150 RUB each, minimum 2,500 by default; forwarding is paid to the client's own
    provider) or "code" (visit tracking only, free). ``package`` picks a prepaid
    phone package of the provider plan; ``turnover_rub`` applies the agency discount.
    """
    cfg = config or load_plans()
    if isinstance(numbers, bool) or not isinstance(numbers, int) or numbers < 0:
        raise ValueError(f"numbers: expected a non-negative whole number, got {numbers!r}")
    code = str(code).strip()
    if not code.isdigit():
        raise ValueError(f"code: expected a dialling code such as 495, 812 or 800, got {code!r}")
    if plan not in PLANS:
        raise ValueError(f"plan: expected one of {', '.join(PLANS)}, got {plan!r}")
    if package is not None and (plan != "provider" or package not in cfg.provider.prepaid_packages):
        known = ", ".join(cfg.provider.prepaid_packages) or "none"
        raise ValueError(f"package: {package!r} is not a prepaid package of the provider plan (known: {known})")
    if turnover_rub is not None and (isinstance(turnover_rub, bool) or not isinstance(turnover_rub, (int, Decimal))
                                     or not Decimal(turnover_rub).is_finite() or turnover_rub < 0):
        raise ValueError(f"turnover_rub: expected a non-negative amount, got {turnover_rub!r}")
    used = _as_usage(usage)
    lines: list[LineItem] = []
    notes: list[str] = []

    if plan == "provider":
        p = cfg.provider
        lines.append(_line(f"tracking numbers, code {code}", numbers, p.number_price(code)))
        _minimum_top_up(lines, p.minimum_rub)
        included = p.minutes_included
        if package is not None:
            pkg = p.prepaid_packages[package]
            lines.append(_line(f"prepaid package of {pkg.minutes} phone minutes", 1, pkg.price_rub))
            included = pkg.minutes
        _overage(lines, used.phone_minutes, included, p.overage_rub_per_minute, "phone minutes")
        _overage(lines, used.sip_minutes, p.sip_minutes_included, p.sip_overage_rub_per_minute, "SIP minutes")
        title = p.title
    elif plan == "own":
        o = cfg.own
        lines.append(_line("service fee for own numbers", numbers, o.per_number_rub))
        _minimum_top_up(lines, o.minimum_rub)
        notes.append("forwarding minutes are paid to your own telephony provider")
        title = o.title
    else:
        lines.append(_line("code tracker (visits only)", 1, Decimal(0)))
        notes.append("no tracking numbers: calls are not attributed to visits")
        title = cfg.code_title

    percent = cfg.discount_percent(turnover_rub)
    for month_end in (False, True):  # discount each part, so prepaid and month-end both stay right
        part = sum((line.amount for line in lines if line.billed_at_month_end == month_end), Decimal(0))
        discount = (part * percent / 100).quantize(KOPECK, ROUND_HALF_UP)
        if discount:
            when = "on month-end charges" if month_end else "on prepaid charges"
            lines.append(LineItem(f"agency discount {percent}% {when}", Decimal(1), -discount, -discount, month_end))
    total = sum((line.amount for line in lines), Decimal(0))
    return Invoice(plan, title, tuple(lines), total, package, percent, tuple(notes), cfg.currency)


def compare_plans(numbers: int, code: str = "495", minutes: Usage | int = 0, *,
                  turnover_rub: int | Decimal | None = None, config: PricingConfig | None = None,
                  with_packages: bool = True) -> list[Invoice]:
    """One invoice per plan (and per prepaid package of the provider plan), in config order."""
    cfg = config or load_plans()
    packages: list[str | None] = [None] + (list(cfg.provider.prepaid_packages) if with_packages else [])
    invoices = [estimate(numbers, code, minutes, "provider", turnover_rub, cfg, pkg) for pkg in packages]
    invoices += [estimate(numbers, code, minutes, plan, turnover_rub, cfg) for plan in ("own", "code")]
    return invoices
