"""Validating a raw config into typed parts, with every fault located.

The document's shape, defaults and JSON Schema are in schema.py (pydantic); here what spans sections
(a number in two pools, a rule naming an unknown pool) and the records the engine reads.

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
    events:  {webhooks: [{url, secret, name, statuses}],  # outgoing events on each attributed call
              ga4: {measurement_id, api_secret, event_name, endpoint, statuses},
              retry: {max_attempts, base_seconds, max_seconds}}
    attribution: {max_candidates, clock_skew_seconds}  # how calls are joined to visits (see Attribution)
"""
from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import Problem
from ..rules.bulk import gc_paused
from . import phones, reporting, schema
from .schema import CALL_STATUSES, CHECKPOINT_SECONDS, GA4_ENDPOINT, MAX_CANDIDATES, MAX_CLOCK_SKEW, default  # noqa: F401 (exported)

POOL_TYPES = ("dynamic", "static", "offline")
EXHAUSTION = ("share", "default")
_P, _W, _G, _R, _A = schema.Pool, schema.Webhook, schema.GA4, schema.Retry, schema.Attribution


@dataclass(frozen=True)
class Pool:
    name: str
    type: str
    numbers: tuple[str, ...]
    hold_seconds: int = default(_P, "hold_seconds")
    cooldown_seconds: int = default(_P, "cooldown_seconds")
    on_exhausted: str = default(_P, "on_exhausted")
    default_number: str | None = None
    display: str = default(schema.Site, "display")
    late_seconds: int = default(_P, "late_seconds")  # a call this long after a lease ended is still "late"
    campaign: str | None = None  # offline pools: what their calls are attributed to


@dataclass(frozen=True)
class Rule:
    name: str
    when: dict[str, Any]
    pool: str | None
    exclude: bool
    place: str


@dataclass(frozen=True)
class Webhook:
    """A URL that gets each attributed call, signed with ``secret`` (k50core's X-K50-Signature)."""
    name: str                       # the outbox target: part of the idempotency key, so keep it stable
    url: str
    secret: str = field(repr=False)
    statuses: tuple[str, ...] = CALL_STATUSES


@dataclass(frozen=True)
class GA4:
    """A GA4 Measurement Protocol event for each attributed call whose visit had a GA client id."""
    measurement_id: str
    api_secret: str = field(repr=False)
    event_name: str = default(_G, "event_name")
    endpoint: str = default(_G, "endpoint")
    statuses: tuple[str, ...] = CALL_STATUSES


@dataclass(frozen=True)
class Retry:
    """Failed deliveries wait base x 2^(attempt-1) seconds (jittered), at most max; dead after max_attempts."""
    max_attempts: int = default(_R, "max_attempts")
    base_seconds: float = default(_R, "base_seconds")
    max_seconds: float = default(_R, "max_seconds")


@dataclass(frozen=True)
class Events:
    """Outgoing events (``events:``); the default sends nothing."""
    webhooks: tuple[Webhook, ...] = ()
    ga4: GA4 | None = None
    retry: Retry = Retry()

    @property
    def configured(self) -> bool:
        return bool(self.webhooks) or self.ga4 is not None


@dataclass(frozen=True)
class AttributionSettings:
    """How calls are joined to visits (``attribution:``).

    ``max_candidates``: an ambiguous call keeps this many candidates, the likeliest first, and counts
    the rest (a number shared by thousands of visitors would otherwise store and answer them all);
    ``clock_skew_seconds``: a call stamped up to this long before a lease began still belongs to
    that lease (telephony and web clocks differ; ``date +%s`` drops the fraction of a second)."""
    max_candidates: int = default(_A, "max_candidates")
    clock_skew_seconds: float = default(_A, "clock_skew_seconds")


@dataclass
class Config:
    default_number: str | None = None
    region: str = default(schema.Site, "region")
    display: str = default(schema.Site, "display")
    lists: dict[str, list[Any]] = field(default_factory=dict)
    pools: dict[str, Pool] = field(default_factory=dict)
    rules: list[Rule] = field(default_factory=list)
    sources: Mapping[str, Any] | None = None
    geoip_path: str | None = None
    exclude_bots: bool = default(schema.Bots, "exclude")
    events: Events = field(default_factory=Events)
    attribution: AttributionSettings = field(default_factory=AttributionSettings)
    checkpoint_seconds: float = default(schema.Store, "checkpoint_seconds")  # store.checkpoint_seconds
    reports: dict[str, Any] = field(default_factory=dict)  # see reporting.py
    crm: dict[str, Any] = field(default_factory=lambda: {"match_days": 30.0})


def parse(raw: Mapping[str, Any]) -> tuple[Config, list[Problem]]:
    """A Config and the problems found (the caller raises ConfigError if any). With problems, the Config
    holds what could be read of the lists and rules, so their conditions can be checked too."""
    with gc_paused():  # a large rule set's records all live on (see rules/bulk.py)
        return _parse(raw)


def _parse(raw: Mapping[str, Any]) -> tuple[Config, list[Problem]]:
    region = _region(raw)
    doc, problems = schema.validate(raw, region)
    problems += _across_sections(raw, region)
    reports, found = reporting.parse_reports(_get(raw, "reports"))
    crm, more = reporting.parse_crm(_get(raw, "crm"))
    problems += [p for p in found + more if p not in problems]
    cfg = _partial(raw) if doc is None else _build(doc)
    cfg.reports, cfg.crm = reports, crm
    return cfg, problems


def _region(raw: Any) -> str:
    site = _get(raw, "site")
    region = _get(site, "region")
    return region.upper() if isinstance(region, str) and len(region) == 2 else "RU"


def _get(value: Any, key: str) -> Any:
    return value.get(key) if isinstance(value, Mapping) else None


def _build(doc: schema.Document) -> Config:
    site = doc.site
    cfg = Config(default_number=site.default_number, region=site.region.upper(), display=site.display,
                 lists=dict(doc.lists), sources=doc.sources, geoip_path=doc.geoip.path,
                 exclude_bots=doc.bots.exclude, checkpoint_seconds=doc.store.checkpoint_seconds,
                 attribution=AttributionSettings(doc.attribution.max_candidates,
                                                 float(doc.attribution.clock_skew_seconds)))
    cfg.pools = {name: Pool(name=name, type=p.type, numbers=tuple(p.numbers), hold_seconds=p.hold_seconds,
                            cooldown_seconds=p.cooldown_seconds, on_exhausted=p.on_exhausted,
                            default_number=p.default_number, display=p.display or site.display,
                            late_seconds=p.late_seconds, campaign=p.campaign.strip() if p.campaign else None)
                 for name, p in doc.pools.items()}
    cfg.rules = [Rule(name=r.name or f"rule-{i}", when=dict(r.when), pool=None if r.exclude else r.pool,
                      exclude=r.exclude, place=f"rules[{i}].when") for i, r in enumerate(doc.rules)]
    ev = doc.events
    webhooks = tuple(Webhook(_webhook_name(h.name, h.url, i), h.url, h.secret, _statuses(h.statuses))
                     for i, h in enumerate(ev.webhooks))
    ga4 = None if ev.ga4 is None else GA4(ev.ga4.measurement_id, ev.ga4.api_secret, ev.ga4.event_name,
                                          ev.ga4.endpoint, _statuses(ev.ga4.statuses))
    retry = Retry(ev.retry.max_attempts, float(ev.retry.base_seconds), float(ev.retry.max_seconds))
    cfg.events = Events(webhooks, ga4, retry)
    return cfg


def _partial(raw: Any) -> Config:
    """The lists and rules of a config with faults, read leniently: their conditions get checked too."""
    lists = _get(raw, "lists")
    rules = []
    for i, spec in enumerate(_get(raw, "rules") if isinstance(_get(raw, "rules"), list) else ()):
        when = _get(spec, "when")
        if isinstance(when, Mapping):
            name = _get(spec, "name")
            rules.append(Rule(name if isinstance(name, str) and name else f"rule-{i}", dict(when), None, True,
                              f"rules[{i}].when"))
    return Config(lists=dict(lists) if isinstance(lists, Mapping) else {}, rules=rules)


def _statuses(chosen: Sequence[str] | None) -> tuple[str, ...]:
    return CALL_STATUSES if not chosen else tuple(s for s in CALL_STATUSES if s in chosen)


def _webhook_name(name: str | None, url: str | None, i: int) -> str:
    if name is not None:
        return name
    return f"webhook{i}" if not isinstance(url, str) else "webhook-" + _short_hash(url)


def _across_sections(raw: Any, region: str) -> list[Problem]:
    """What no one section shows: a number in two pools, a static pool of several numbers, a rule's pool,
    rule and webhook names used twice, a retry's max below its base. Read leniently: a section of the
    wrong shape is schema.validate's to report."""
    problems: list[Problem] = []
    pools = _get(raw, "pools")
    kinds: dict[str, Any] = {}
    owner: dict[str, str] = {}
    for name, spec in (pools.items() if isinstance(pools, Mapping) else ()):
        kinds[str(name)] = _get(spec, "type") or "dynamic"
        numbers = _get(spec, "numbers")
        valid = 0
        for i, text in enumerate(numbers if isinstance(numbers, list) else ()):
            e164 = phones.normalise(text, region)
            if e164 is None:
                continue
            if e164 in owner:
                problems.append((schema.place(("pools", str(name), "numbers", i)),
                                 f"{e164} is already in pool {owner[e164]!r}"))
                continue
            owner[e164] = str(name)
            valid += 1
        if kinds[str(name)] == "static" and valid > 1:
            problems.append((schema.place(("pools", str(name), "numbers")), "a static pool has exactly one number"))
    rules = _get(raw, "rules")
    seen: dict[str, int] = {}
    for i, spec in enumerate(rules if isinstance(rules, list) else ()):
        if not isinstance(spec, Mapping):
            continue
        place = f"rules[{i}]"
        name = spec.get("name") if isinstance(spec.get("name"), str) and spec.get("name") else f"rule-{i}"
        if name in seen:
            problems.append((f"{place}.name", f"duplicate rule name {name!r} (also rules[{seen[name]}])"))
        seen[name] = i
        exclude, pool = spec.get("exclude") is True, spec.get("pool")
        if exclude and pool is not None:
            problems.append((place, "a rule either excludes or names a pool, not both"))
        elif not exclude and pool is None:
            if spec.get("exclude") in (None, False):
                problems.append((place, "a rule needs a pool (or exclude: true)"))
        elif pool is not None:
            if not isinstance(pool, str) or pool not in kinds:
                problems.append((f"{place}.pool", f"unknown pool {pool!r}"))
            elif kinds[pool] == "offline":
                problems.append((f"{place}.pool",
                                 f"pool {pool!r} is offline: its numbers are never shown on the site"))
    events = _get(raw, "events")
    hooks = _get(events, "webhooks")
    names: dict[str, int] = {}
    for i, hook in enumerate(hooks if isinstance(hooks, list) else ()):
        if not isinstance(hook, Mapping):
            continue
        name = hook.get("name")
        if name is not None and not isinstance(name, str):
            continue
        name = _webhook_name(name, hook.get("url"), i)
        if name in names:
            where = f"events.webhooks[{i}].name" if "name" in hook else f"events.webhooks[{i}].url"
            problems.append((where, f"webhook {name!r} is already events.webhooks[{names[name]}]: give each a "
                                    "distinct name"))
        names[name] = i
    retry = _get(events, "retry")
    base = _get(retry, "base_seconds")
    most = _get(retry, "max_seconds")
    base = default(_R, "base_seconds") if base is None else base
    most = default(_R, "max_seconds") if most is None else most
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v <= schema.MONTH
           for v in (base, most)) and most < base:
        problems.append(("events.retry.max_seconds", f"expected at least base_seconds ({base:g})"))
    return problems


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
