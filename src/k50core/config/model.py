"""Validating a raw config into typed parts, with every fault located.

Keys the engine knows (extend freely, but unknown keys are reported so a
typo such as ``pol: msk`` does not silently do nothing)::

    site:    {default_number, region, display}
    lists:   {name: [values or CIDRs]}              # for $inGroup / $notInGroup
    pools:   {name: {type, numbers, hold_seconds, cooldown_seconds,
                     on_exhausted, default_number, display, late_seconds, campaign}}
    rules:   [{name, when, pool | exclude, note}]    # priority order
    sources: traffic-source catalogue overrides (see enrich/source.py)
    geoip:   {path}                                  # a newer MaxMind City DB
    bots:    {exclude}                               # bots take no number (default true)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple

from ..errors import Problem
from . import phones

POOL_TYPES = ("dynamic", "static", "offline")
EXHAUSTION = ("share", "default")
_TOP_KEYS = {"site", "lists", "pools", "rules", "sources", "geoip", "bots"}
_SITE_KEYS = {"default_number", "region", "display"}
_POOL_KEYS = {"type", "numbers", "hold_seconds", "cooldown_seconds", "on_exhausted", "default_number", "display",
              "late_seconds", "campaign"}
_RULE_KEYS = {"name", "when", "pool", "exclude", "note"}


@dataclass(frozen=True)
class Pool:
    name: str
    type: str
    numbers: Tuple[str, ...]
    hold_seconds: int = 900
    cooldown_seconds: int = 300
    on_exhausted: str = "share"
    default_number: Optional[str] = None
    display: str = "ru"
    late_seconds: int = 1800     # a call this long after a lease ended is still "late", not unmatched
    campaign: Optional[str] = None  # offline pools: what their calls are attributed to


@dataclass(frozen=True)
class Rule:
    name: str
    when: Dict[str, Any]
    pool: Optional[str]
    exclude: bool
    place: str


@dataclass
class Config:
    default_number: Optional[str] = None
    region: str = "RU"
    display: str = "ru"
    lists: Dict[str, list] = field(default_factory=dict)
    pools: Dict[str, Pool] = field(default_factory=dict)
    rules: List[Rule] = field(default_factory=list)
    sources: Optional[Mapping[str, Any]] = None
    geoip_path: Optional[str] = None
    exclude_bots: bool = True


class _Checker:
    def __init__(self) -> None:
        self.problems: List[Problem] = []

    def fault(self, place: str, message: str) -> None:
        self.problems.append((place, message))

    def mapping(self, value: Any, place: str, keys: Optional[set] = None) -> Dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.fault(place, f"expected a mapping, got {_kind(value)}")
            return {}
        if keys is not None:
            for k in value:
                if k not in keys:
                    self.fault(f"{place}.{k}" if place else str(k), f"unknown key (expected one of {', '.join(sorted(keys))})")
        return dict(value)

    def number(self, value: Any, place: str, region: str) -> Optional[str]:
        e164 = phones.normalise(value, region)
        if e164 is None:
            self.fault(place, f"{value!r} is not a valid phone number")
        return e164

    def seconds(self, value: Any, place: str, default: int, minimum: int) -> int:
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            self.fault(place, f"expected a whole number of seconds >= {minimum}, got {value!r}")
            return default
        return value

    def choice(self, value: Any, place: str, options: Tuple[str, ...], default: str) -> str:
        if value is None:
            return default
        if value not in options:
            self.fault(place, f"expected one of {', '.join(options)}, got {value!r}")
            return default
        return value


def parse(raw: Mapping[str, Any]) -> Tuple[Config, List[Problem]]:
    """A Config and the problems found (the caller raises ConfigError if any)."""
    c = _Checker()
    top = c.mapping(raw, "", _TOP_KEYS)
    cfg = Config()
    site = c.mapping(top.get("site"), "site", _SITE_KEYS)
    region = site.get("region", "RU")
    if not isinstance(region, str) or len(region) != 2:
        c.fault("site.region", f"expected a two-letter country code, got {region!r}")
        region = "RU"
    cfg.region = region.upper()
    cfg.display = c.choice(site.get("display"), "site.display", phones.DISPLAY_FORMATS, "ru")
    if site.get("default_number") is not None:
        cfg.default_number = c.number(site["default_number"], "site.default_number", cfg.region)
    cfg.lists = c.mapping(top.get("lists"), "lists")
    cfg.pools = _pools(c, top.get("pools"), cfg)
    cfg.rules = _rules(c, top.get("rules"), cfg)
    cfg.sources = top.get("sources")
    geoip = c.mapping(top.get("geoip"), "geoip", {"path"})
    if geoip.get("path") is not None and not isinstance(geoip["path"], str):
        c.fault("geoip.path", "expected a file path")
    cfg.geoip_path = geoip.get("path") if isinstance(geoip.get("path"), str) else None
    bots = c.mapping(top.get("bots"), "bots", {"exclude"})
    if not isinstance(bots.get("exclude", True), bool):
        c.fault("bots.exclude", "expected true or false")
    cfg.exclude_bots = bots.get("exclude", True) is not False
    return cfg, c.problems


def _pools(c: _Checker, raw: Any, cfg: Config) -> Dict[str, Pool]:
    pools: Dict[str, Pool] = {}
    owner: Dict[str, str] = {}
    for name, spec in c.mapping(raw, "pools").items():
        place = f"pools.{name}"
        spec = c.mapping(spec, place, _POOL_KEYS)
        kind = c.choice(spec.get("type"), f"{place}.type", POOL_TYPES, "dynamic")
        raw_numbers = spec.get("numbers")
        numbers: List[str] = []
        if not isinstance(raw_numbers, list) or not raw_numbers:
            c.fault(f"{place}.numbers", "expected a non-empty list of phone numbers")
            raw_numbers = []
        for i, text in enumerate(raw_numbers):
            e164 = c.number(text, f"{place}.numbers[{i}]", cfg.region)
            if e164 is None:
                continue
            if e164 in owner:
                c.fault(f"{place}.numbers[{i}]", f"{e164} is already in pool {owner[e164]!r}")
                continue
            owner[e164] = str(name)
            numbers.append(e164)
        if kind == "static" and len(numbers) > 1:
            c.fault(f"{place}.numbers", "a static pool has exactly one number")
        default = spec.get("default_number")
        pools[str(name)] = Pool(
            name=str(name), type=kind, numbers=tuple(numbers),
            hold_seconds=c.seconds(spec.get("hold_seconds"), f"{place}.hold_seconds", 900, 1),
            cooldown_seconds=c.seconds(spec.get("cooldown_seconds"), f"{place}.cooldown_seconds", 300, 0),
            on_exhausted=c.choice(spec.get("on_exhausted"), f"{place}.on_exhausted", EXHAUSTION, "share"),
            default_number=c.number(default, f"{place}.default_number", cfg.region) if default is not None else None,
            display=c.choice(spec.get("display"), f"{place}.display", phones.DISPLAY_FORMATS, cfg.display),
            late_seconds=c.seconds(spec.get("late_seconds"), f"{place}.late_seconds", 1800, 0),
            campaign=_campaign(c, spec.get("campaign"), f"{place}.campaign"),
        )
    return pools


def _campaign(c: "_Checker", value: Any, place: str) -> Optional[str]:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        c.fault(place, "expected a non-empty string")
        return None
    return value.strip()


def _rules(c: _Checker, raw: Any, cfg: Config) -> List[Rule]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        c.fault("rules", f"expected a list of rules in priority order, got {_kind(raw)}")
        return []
    rules: List[Rule] = []
    seen: Dict[str, int] = {}
    for i, spec in enumerate(raw):
        place = f"rules[{i}]"
        spec = c.mapping(spec, place, _RULE_KEYS)
        name = spec.get("name", f"rule-{i}")
        if not isinstance(name, str) or not name:
            c.fault(f"{place}.name", "expected a non-empty string")
            name = f"rule-{i}"
        if name in seen:
            c.fault(f"{place}.name", f"duplicate rule name {name!r} (also rules[{seen[name]}])")
        seen[name] = i
        exclude = spec.get("exclude", False)
        if not isinstance(exclude, bool):
            c.fault(f"{place}.exclude", "expected true or false")
            exclude = False
        pool = spec.get("pool")
        if exclude and pool is not None:
            c.fault(place, "a rule either excludes or names a pool, not both")
        elif not exclude and pool is None:
            c.fault(place, "a rule needs a pool (or exclude: true)")
        elif pool is not None:
            target = cfg.pools.get(pool) if isinstance(pool, str) else None
            if target is None:
                c.fault(f"{place}.pool", f"unknown pool {pool!r}")
            elif target.type == "offline":
                c.fault(f"{place}.pool", f"pool {pool!r} is offline: its numbers are never shown on the site")
        when = spec.get("when", {})
        if not isinstance(when, Mapping):
            c.fault(f"{place}.when", f"expected a condition mapping, got {_kind(when)}")
            when = {"$or": []}
        rules.append(Rule(name=name, when=dict(when), pool=pool if not exclude else None, exclude=exclude, place=f"{place}.when"))
    return rules


def _kind(v: Any) -> str:
    return "null" if v is None else type(v).__name__
