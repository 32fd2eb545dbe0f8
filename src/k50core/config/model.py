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
    events:  {webhooks: [{url, secret, name, statuses}],  # outgoing events on each attributed call
              ga4: {measurement_id, api_secret, event_name, endpoint, statuses},
              retry: {max_attempts, base_seconds, max_seconds}}
    attribution: {max_candidates, clock_skew_seconds}  # how calls are joined to visits (see Attribution)
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Set, Tuple
from urllib.parse import urlsplit

from ..errors import Problem
from . import phones, reporting

POOL_TYPES = ("dynamic", "static", "offline")
EXHAUSTION = ("share", "default")
_TOP_KEYS = {"site", "lists", "pools", "rules", "sources", "geoip", "bots", "events", "attribution", "store",
             "reports", "crm"}
_STORE_KEYS = {"checkpoint_seconds"}
CHECKPOINT_SECONDS = 30.0  # how often each live lease's latest activity reaches the store, at most
_SITE_KEYS = {"default_number", "region", "display"}
_POOL_KEYS = {"type", "numbers", "hold_seconds", "cooldown_seconds", "on_exhausted", "default_number", "display",
              "late_seconds", "campaign"}
_RULE_KEYS = {"name", "when", "pool", "exclude", "note"}
_EVENTS_KEYS = {"webhooks", "ga4", "retry"}
_WEBHOOK_KEYS = {"name", "url", "secret", "statuses"}
_GA4_KEYS = {"measurement_id", "api_secret", "event_name", "endpoint", "statuses"}
_RETRY_KEYS = {"max_attempts", "base_seconds", "max_seconds"}
_ATTRIBUTION_KEYS = {"max_candidates", "clock_skew_seconds"}
MAX_CANDIDATES = 1000          # the most an ambiguous call may be configured to keep
MAX_CLOCK_SKEW = 300.0         # seconds: more is no skew but a clock set wrong
# the call statuses of k50core.attribution.STATUSES (not imported: attribution imports this module)
CALL_STATUSES = ("matched", "late", "ambiguous", "static", "offline", "unmatched")
GA4_ENDPOINT = "https://www.google-analytics.com/mp/collect"
_TARGET_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_MEASUREMENT_ID = re.compile(r"^G-[A-Z0-9]{4,20}$")
_GA4_EVENT = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,39}$")   # GA4: letters, digits, _; at most 40
_GA4_RESERVED_PREFIXES = ("ga_", "google_", "firebase_")
_GA4_RESERVED_NAMES = {"ad_activeview", "ad_click", "ad_exposure", "ad_query", "ad_reward", "adunit_exposure",
                       "app_background", "app_clear_data", "app_exception", "app_remove", "app_store_refund",
                       "app_store_subscription_cancel", "app_store_subscription_convert",
                       "app_store_subscription_renew", "app_update", "app_upgrade", "dynamic_link_app_open",
                       "dynamic_link_app_update", "dynamic_link_first_open", "error", "first_open",
                       "first_visit", "in_app_purchase", "notification_dismiss", "notification_foreground",
                       "notification_open", "notification_receive", "os_update", "session_start",
                       "session_start_with_rollout", "user_engagement"}


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


@dataclass(frozen=True)
class Webhook:
    """A URL that gets each attributed call, signed with ``secret`` (k50core's X-K50-Signature)."""
    name: str                       # the outbox target: part of the idempotency key, so keep it stable
    url: str
    secret: str = field(repr=False)
    statuses: Tuple[str, ...] = CALL_STATUSES


@dataclass(frozen=True)
class GA4:
    """A GA4 Measurement Protocol event for each attributed call whose visit had a GA client id."""
    measurement_id: str
    api_secret: str = field(repr=False)
    event_name: str = "phone_call"
    endpoint: str = GA4_ENDPOINT
    statuses: Tuple[str, ...] = CALL_STATUSES


@dataclass(frozen=True)
class Retry:
    """Failed deliveries wait base x 2^(attempt-1) seconds (jittered), at most max; dead after max_attempts."""
    max_attempts: int = 8
    base_seconds: float = 2.0
    max_seconds: float = 3600.0


@dataclass(frozen=True)
class Events:
    """Outgoing events (``events:``); the default sends nothing."""
    webhooks: Tuple[Webhook, ...] = ()
    ga4: Optional[GA4] = None
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
    max_candidates: int = 20
    clock_skew_seconds: float = 5.0


@dataclass
class Config:
    default_number: Optional[str] = None
    region: str = "RU"
    display: str = "ru"
    lists: Dict[str, List[Any]] = field(default_factory=dict)
    pools: Dict[str, Pool] = field(default_factory=dict)
    rules: List[Rule] = field(default_factory=list)
    sources: Optional[Mapping[str, Any]] = None
    geoip_path: Optional[str] = None
    exclude_bots: bool = True
    events: Events = field(default_factory=Events)
    attribution: AttributionSettings = field(default_factory=AttributionSettings)
    checkpoint_seconds: float = CHECKPOINT_SECONDS  # store.checkpoint_seconds
    reports: Dict[str, Any] = field(default_factory=dict)  # see reporting.py
    crm: Dict[str, Any] = field(default_factory=lambda: {"match_days": 30.0})


class _Checker:
    def __init__(self) -> None:
        self.problems: List[Problem] = []

    def fault(self, place: str, message: str) -> None:
        self.problems.append((place, message))

    def mapping(self, value: Any, place: str, keys: Optional[Set[str]] = None) -> Dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.fault(place, f"expected a mapping, got {_kind(value)}")
            return {}
        if keys is not None:
            for k in value:
                if k not in keys:
                    self.fault(f"{place}.{k}" if place else str(k),
                               f"unknown key (expected one of {', '.join(sorted(keys))})")
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
        return str(value)


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
    cfg.events = _events(c, top.get("events"))
    cfg.attribution = _attribution(c, top.get("attribution"))
    cfg.reports, found = reporting.parse_reports(top.get("reports"))
    c.problems.extend(found)
    cfg.crm, found = reporting.parse_crm(top.get("crm"))
    c.problems.extend(found)
    store = c.mapping(top.get("store"), "store", _STORE_KEYS)
    if store.get("checkpoint_seconds") is not None:
        cfg.checkpoint_seconds = _positive(c, store["checkpoint_seconds"], "store.checkpoint_seconds",
                                           CHECKPOINT_SECONDS)
    return cfg, c.problems


def _attribution(c: _Checker, raw: Any) -> AttributionSettings:
    """The ``attribution:`` section: candidates kept for an ambiguous call, clock skew allowed."""
    spec = c.mapping(raw, "attribution", _ATTRIBUTION_KEYS)
    default = AttributionSettings()
    most = spec.get("max_candidates", default.max_candidates)
    if isinstance(most, bool) or not isinstance(most, int) or not 1 <= most <= MAX_CANDIDATES:
        c.fault("attribution.max_candidates", f"expected a whole number from 1 to {MAX_CANDIDATES}, got {most!r}")
        most = default.max_candidates
    skew = spec.get("clock_skew_seconds", default.clock_skew_seconds)
    if isinstance(skew, bool) or not isinstance(skew, (int, float)) or not 0 <= skew <= MAX_CLOCK_SKEW:
        c.fault("attribution.clock_skew_seconds",
                f"expected a number of seconds from 0 to {MAX_CLOCK_SKEW:g}, got {skew!r}")
        skew = default.clock_skew_seconds
    return AttributionSettings(most, float(skew))


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
        rules.append(Rule(name=name, when=dict(when), pool=pool if not exclude else None, exclude=exclude,
                          place=f"{place}.when"))
    return rules


def _events(c: _Checker, raw: Any) -> Events:
    """The ``events:`` section: where each attributed call is sent, and how failures are retried."""
    spec = c.mapping(raw, "events", _EVENTS_KEYS)
    webhooks: List[Webhook] = []
    hooks = spec.get("webhooks")
    if hooks is not None and not isinstance(hooks, list):
        c.fault("events.webhooks", f"expected a list of webhooks, got {_kind(hooks)}")
        hooks = []
    names: Dict[str, int] = {}
    for i, hook in enumerate(hooks or ()):
        place = f"events.webhooks[{i}]"
        if not isinstance(hook, Mapping):
            c.fault(place, f"expected a mapping, got {_kind(hook)}")
            continue
        h = c.mapping(hook, place, _WEBHOOK_KEYS)
        url = _url(c, h.get("url"), f"{place}.url", required=True)
        secret = _text(c, h.get("secret"), f"{place}.secret", "the HMAC-SHA256 key")
        name = h.get("name")
        if name is None:
            name = f"webhook{i}" if url is None else "webhook-" + _short_hash(url)
        elif not isinstance(name, str) or not _TARGET_NAME.match(name) or name == "ga4":
            c.fault(f"{place}.name", "expected 1-64 letters, digits, '_', '.' or '-' (and not 'ga4')")
            name = f"webhook{i}"
        if name in names:
            c.fault(f"{place}.name" if "name" in h else f"{place}.url",
                    f"webhook {name!r} is already events.webhooks[{names[name]}]: give each a distinct name")
        names[name] = i
        statuses = _statuses(c, h.get("statuses"), f"{place}.statuses")
        if url is not None and secret is not None:
            webhooks.append(Webhook(name, url, secret, statuses))
    return Events(tuple(webhooks), _ga4(c, spec.get("ga4")), _retry(c, spec.get("retry")))


def _ga4(c: _Checker, raw: Any) -> Optional[GA4]:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        c.fault("events.ga4", f"expected a mapping, got {_kind(raw)}")
        return None
    g = c.mapping(raw, "events.ga4", _GA4_KEYS)
    mid = g.get("measurement_id")
    if not isinstance(mid, str) or not _MEASUREMENT_ID.match(mid):
        c.fault("events.ga4.measurement_id", "expected a GA4 measurement id such as G-ABC123XYZ")
        mid = None
    secret = _text(c, g.get("api_secret"), "events.ga4.api_secret", "the Measurement Protocol API secret")
    name = g.get("event_name", "phone_call")
    if not isinstance(name, str) or not _GA4_EVENT.match(name):
        c.fault("events.ga4.event_name", "expected a letter then letters, digits or '_', at most 40 characters")
        name = "phone_call"
    elif name.lower().startswith(_GA4_RESERVED_PREFIXES) or name.lower() in _GA4_RESERVED_NAMES:
        c.fault("events.ga4.event_name", f"{name!r} is reserved by Google Analytics")
        name = "phone_call"
    endpoint = _url(c, g.get("endpoint"), "events.ga4.endpoint", required=False) or GA4_ENDPOINT
    statuses = _statuses(c, g.get("statuses"), "events.ga4.statuses")
    if mid is None or secret is None:
        return None
    return GA4(mid, secret, name, endpoint, statuses)


def _retry(c: _Checker, raw: Any) -> Retry:
    r = c.mapping(raw, "events.retry", _RETRY_KEYS)
    attempts = r.get("max_attempts", 8)
    if isinstance(attempts, bool) or not isinstance(attempts, int) or not 1 <= attempts <= 100:
        c.fault("events.retry.max_attempts", f"expected a whole number from 1 to 100, got {attempts!r}")
        attempts = 8
    base = _positive(c, r.get("base_seconds", 2.0), "events.retry.base_seconds", 2.0)
    most = _positive(c, r.get("max_seconds", 3600.0), "events.retry.max_seconds", 3600.0)
    if most < base:
        c.fault("events.retry.max_seconds", f"expected at least base_seconds ({base:g})")
        most = base
    return Retry(attempts, base, most)


def _positive(c: _Checker, value: Any, place: str, default: float) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value <= 30 * 86400
    if not ok:
        c.fault(place, f"expected a number of seconds above 0 and at most 30 days, got {value!r}")
        return default
    return float(value)


def _url(c: _Checker, value: Any, place: str, required: bool) -> Optional[str]:
    if value is None and not required:
        return None
    try:
        parts = urlsplit(value) if isinstance(value, str) and len(value) <= 2048 else None
        ok = parts is not None and parts.scheme in ("http", "https") and bool(parts.hostname) \
            and not any(ch.isspace() for ch in value) and value.isprintable()
    except ValueError:  # a malformed port or IPv6 literal
        ok = False
    if not ok:
        c.fault(place, "expected an http(s) URL")
        return None
    return str(value)


def _text(c: _Checker, value: Any, place: str, what: str) -> Optional[str]:
    if not isinstance(value, str) or not value.strip():
        c.fault(place, f"expected a non-empty string ({what})")
        return None
    return value


def _statuses(c: _Checker, value: Any, place: str) -> Tuple[str, ...]:
    if value is None:
        return CALL_STATUSES
    if not isinstance(value, list) or not value:
        c.fault(place, f"expected a non-empty list of call statuses ({', '.join(CALL_STATUSES)})")
        return CALL_STATUSES
    chosen = []
    for j, s in enumerate(value):
        if s not in CALL_STATUSES:
            c.fault(f"{place}[{j}]", f"expected one of {', '.join(CALL_STATUSES)}, got {s!r}")
        elif s not in chosen:
            chosen.append(s)
    return tuple(s for s in CALL_STATUSES if s in chosen) or CALL_STATUSES


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]


def _kind(v: Any) -> str:
    return "null" if v is None else type(v).__name__
