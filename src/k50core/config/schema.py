"""The config document's shape, with pydantic: types, ranges, choices and defaults in one place.

``validate(raw)`` gives the validated document or every fault as ``(place, message)``, the place a
config path (``pools.msk.numbers[2]``), the message in k50core's words. What spans sections (a number
in two pools, a rule naming an unknown pool) is checked in model.py. ``json_schema()`` is the JSON
Schema that editors and the configuration reference read (``k50core schema``; schema.json beside this
file is it, checked in, and a test keeps the two equal).
"""
from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, WrapValidator, model_validator
from pydantic_core import PydanticCustomError

from ..errors import Problem
from . import phones

# the call statuses of k50core.attribution.STATUSES (not imported: attribution imports the config)
CALL_STATUSES = ("matched", "late", "ambiguous", "static", "offline", "unmatched")
CallStatus = Literal["matched", "late", "ambiguous", "static", "offline", "unmatched"]
PoolType = Literal["dynamic", "static", "offline"]
Exhaustion = Literal["share", "default"]
Display = Literal["international", "national", "e164", "ru"]
GA4_ENDPOINT = "https://www.google-analytics.com/mp/collect"
CHECKPOINT_SECONDS = 30.0      # how often each live lease's latest activity reaches the store, at most
MAX_CANDIDATES = 1000          # the most an ambiguous call may be configured to keep
MAX_CLOCK_SKEW = 300.0         # seconds: more is no skew but a clock set wrong
MONTH = 30 * 86400             # the longest any retry or checkpoint interval may be
TARGET_NAME = r"^[A-Za-z0-9_.-]{1,64}$"
MEASUREMENT_ID = r"^G-[A-Z0-9]{4,20}$"
GA4_EVENT = r"^[A-Za-z][A-Za-z0-9_]{0,39}$"   # GA4: letters, digits, _; at most 40
GA4_RESERVED_PREFIXES = ("ga_", "google_", "firebase_")
GA4_RESERVED_NAMES = frozenset({
    "ad_activeview", "ad_click", "ad_exposure", "ad_query", "ad_reward", "adunit_exposure", "app_background",
    "app_clear_data", "app_exception", "app_remove", "app_store_refund", "app_store_subscription_cancel",
    "app_store_subscription_convert", "app_store_subscription_renew", "app_update", "app_upgrade",
    "dynamic_link_app_open", "dynamic_link_app_update", "dynamic_link_first_open", "error", "first_open",
    "first_visit", "in_app_purchase", "notification_dismiss", "notification_foreground", "notification_open",
    "notification_receive", "os_update", "session_start", "session_start_with_rollout", "user_engagement"})


def kind(value: Any) -> str:
    """A value's type as a message names it."""
    return "null" if value is None else type(value).__name__


def _fault(message: str) -> PydanticCustomError:
    return PydanticCustomError("config", "{message}", {"message": message})


def explained(message: str) -> Any:
    """Any fault of the value it annotates reads ``message`` (``{got}``: the value given)."""
    def wrap(value: Any, handler: Any) -> Any:
        try:
            return handler(value)
        except ValidationError:
            raise _fault(message.format(got=repr(value))) from None
    return WrapValidator(wrap)


def shaped(check: Any, message: str) -> Any:
    """A value that fails ``check`` reads ``message`` (``{got}``: its kind); inner faults keep their places."""
    def wrap(value: Any, handler: Any) -> Any:
        if not check(value):
            raise _fault(message.format(got=kind(value)))
        return handler(value)
    return WrapValidator(wrap)


def _phone(value: Any, handler: Any, info: ValidationInfo) -> str:
    region = (info.context or {}).get("region", "RU")
    e164 = phones.normalise(value, region)
    if e164 is None:
        raise _fault(f"{value!r} is not a valid phone number")
    return str(handler(e164))


def _http_url(value: Any, handler: Any) -> str:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(value) if isinstance(value, str) and len(value) <= 2048 else None
        ok = parts is not None and parts.scheme in ("http", "https") and bool(parts.hostname) \
            and not any(ch.isspace() for ch in value) and value.isprintable()
    except ValueError:  # a malformed port or IPv6 literal
        ok = False
    if not ok:
        raise _fault("expected an http(s) URL")
    return str(handler(value))


def _event_name(value: Any, handler: Any) -> str:
    if not isinstance(value, str) or not re.match(GA4_EVENT, value):
        raise _fault("expected a letter then letters, digits or '_', at most 40 characters")
    if value.lower().startswith(GA4_RESERVED_PREFIXES) or value.lower() in GA4_RESERVED_NAMES:
        raise _fault(f"{value!r} is reserved by Google Analytics")
    return str(handler(value))


def _target_name(value: Any, handler: Any) -> str:
    if not isinstance(value, str) or not re.match(TARGET_NAME, value) or value == "ga4":
        raise _fault("expected 1-64 letters, digits, '_', '.' or '-' (and not 'ga4')")
    return str(handler(value))


def _is_mapping(value: Any) -> bool:
    return isinstance(value, dict)


PhoneNumber = Annotated[str, WrapValidator(_phone),
                        Field(description="a phone number, normalised to E.164 (+74951234567) in the region of "
                                          "site.region")]
HttpUrl = Annotated[str, WrapValidator(_http_url), Field(max_length=2048, json_schema_extra={"format": "uri"})]


def _whole_seconds(low: int) -> Any:
    return explained(f"expected a whole number of seconds >= {low}, got {{got}}")


Seconds = Annotated[int, Field(ge=1, strict=True), _whole_seconds(1)]
SecondsFromZero = Annotated[int, Field(ge=0, strict=True), _whole_seconds(0)]
Interval = Annotated[float, Field(gt=0, le=MONTH, strict=True),
                     explained("expected a number of seconds above 0 and at most 30 days, got {got}")]
Statuses = Annotated[Annotated[list[CallStatus], Field(min_length=1)] | None,
                     shaped(lambda v: v is None or (isinstance(v, list) and len(v) > 0),
                            f"expected a non-empty list of call statuses ({', '.join(CALL_STATUSES)})")]
Text = Annotated[str, Field(min_length=1, pattern=r"\S", strict=True), explained("expected a non-empty string")]
WebhookSecret = Annotated[str, Field(min_length=1, pattern=r"\S", strict=True),
                          explained("expected a non-empty string (the HMAC-SHA256 key)")]
ApiSecret = Annotated[str, Field(min_length=1, pattern=r"\S", strict=True),
                      explained("expected a non-empty string (the Measurement Protocol API secret)")]
STATUSES_ABOUT = "calls of these statuses are sent (default: all)"


class Section(BaseModel):
    """A mapping of known keys; ``null`` or a key set to ``null`` means the defaults."""
    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _nulls_are_defaults(cls, value: Any) -> Any:
        if value is None:
            return {}
        if isinstance(value, dict):
            return {k: v for k, v in value.items() if v is not None}
        return value


class Site(Section):
    """The site's own number and how numbers are read and shown."""
    default_number: PhoneNumber | None = Field(None, description="the page's own number (shown when "
                                                                     "no rule gives one)")
    region: Annotated[str, Field(pattern=r"^[A-Za-z]{2}$", strict=True),
                      explained("expected a two-letter country code, got {got}")] = Field(
        "RU", description="ISO country of numbers written without +country code")
    display: Display = Field("ru", description="how numbers are formatted on the page")


class Pool(Section):
    """A pool of tracking numbers."""
    type: PoolType = Field("dynamic", description="dynamic: leased per visitor; static: one number for a "
                                                  "source; offline: print, radio (never shown on the site)")
    numbers: Annotated[list[PhoneNumber], Field(min_length=1), shaped(lambda v: isinstance(v, list) and len(v) > 0,
                                                 "expected a non-empty list of phone numbers")]
    hold_seconds: Seconds = Field(900, description="a number stays with its visitor this long after their "
                                                   "last activity")
    cooldown_seconds: SecondsFromZero = Field(300, description="a released number rests this long before "
                                                             "another visitor gets it")
    on_exhausted: Exhaustion = Field("share", description="no free number: share a leased one, or show the "
                                                          "default number")
    default_number: PhoneNumber | None = None
    display: Display | None = Field(None, description="default: site.display")
    late_seconds: SecondsFromZero = Field(1800, description="a call this long after a lease ended is still "
                                                          "late, not unmatched")
    campaign: Text | None = Field(None, description="offline pools: what their calls are "
                                                          "attributed to")


class Rule(Section):
    """A rule: visits matching ``when`` get a number from ``pool`` (or keep the page's, ``exclude``)."""
    name: Text | None = Field(None, description="default: rule-N (its index)")
    when: Annotated[dict[str, Any], shaped(_is_mapping, "expected a condition mapping, got {got}")] = Field(
        default_factory=dict, description="a condition (GrowthBook's Mongo-style superset); empty: every visit")
    pool: str | None = None
    exclude: Annotated[bool, Field(strict=True), explained("expected true or false")] = False
    note: str | None = None


class Geoip(Section):
    path: Annotated[str | None, Field(strict=True), explained("expected a file path")] = Field(
        None, description="a newer MaxMind City database than the bundled one")


class Bots(Section):
    exclude: Annotated[bool, Field(strict=True), explained("expected true or false")] = Field(
        True, description="bots take no number")


class Webhook(Section):
    """A URL that gets each attributed call, signed with ``secret`` (k50core's X-K50-Signature)."""
    name: Annotated[str | None, WrapValidator(_target_name), Field(pattern=TARGET_NAME)] = Field(
        None, description="the outbox target: part of the idempotency key, so keep it stable "
                          "(default: from the URL)")
    url: HttpUrl
    secret: WebhookSecret
    statuses: Statuses = Field(None, description=STATUSES_ABOUT)


class GA4(Section):
    """A GA4 Measurement Protocol event for each attributed call whose visit had a GA client id."""
    measurement_id: Annotated[str, Field(pattern=MEASUREMENT_ID, strict=True),
                              explained("expected a GA4 measurement id such as G-ABC123XYZ")]
    api_secret: ApiSecret
    event_name: Annotated[str, WrapValidator(_event_name), Field(pattern=GA4_EVENT)] = "phone_call"
    endpoint: HttpUrl = GA4_ENDPOINT
    statuses: Statuses = Field(None, description=STATUSES_ABOUT)


class Retry(Section):
    """Failed deliveries wait base x 2^(attempt-1) seconds (jittered), at most max; dead after max_attempts."""
    max_attempts: Annotated[int, Field(ge=1, le=100, strict=True),
                            explained("expected a whole number from 1 to 100, got {got}")] = 8
    base_seconds: Interval = Field(2.0, description="the first retry's wait")
    max_seconds: Interval = Field(3600.0, description="the longest wait (at least base_seconds)")


class Events(Section):
    """Outgoing events on each attributed call; the default sends nothing."""
    webhooks: Annotated[list[Webhook], shaped(lambda v: isinstance(v, list),
                                              "expected a list of webhooks, got {got}")] = Field(default_factory=list)
    ga4: GA4 | None = None
    retry: Retry = Retry()


class Attribution(Section):
    """How calls are joined to visits."""
    max_candidates: Annotated[int, Field(ge=1, le=MAX_CANDIDATES, strict=True),
                              explained(f"expected a whole number from 1 to {MAX_CANDIDATES}, got {{got}}")] = Field(
        20, description="an ambiguous call keeps this many candidates, the likeliest first")
    clock_skew_seconds: Annotated[float, Field(ge=0, le=MAX_CLOCK_SKEW, strict=True),
                                  explained(f"expected a number of seconds from 0 to {MAX_CLOCK_SKEW:g}, "
                                            "got {got}")] = Field(
        5.0, description="a call stamped up to this long before a lease began still belongs to it")


class Store(Section):
    checkpoint_seconds: Interval = Field(CHECKPOINT_SECONDS, description="how often each live lease's latest "
                                                                     "activity reaches the store, at most")


class Document(Section):
    """A k50core config (YAML, JSON or TOML)."""
    model_config = ConfigDict(extra="forbid", frozen=True, title="k50core config")

    site: Site = Site()
    lists: Annotated[dict[str, Any], shaped(_is_mapping, "expected a mapping, got {got}")] = Field(
        default_factory=dict, description="named lists of values or CIDRs, for $inGroup / $notInGroup")
    pools: dict[str, Pool] = Field(default_factory=dict)
    rules: Annotated[list[Rule], shaped(lambda v: isinstance(v, list),
                                        "expected a list of rules in priority order, got {got}")] = Field(
        default_factory=list, description="in priority order: the first that matches a visit decides")
    sources: dict[str, Any] | None = Field(None, description="traffic-source catalogue overrides")
    geoip: Geoip = Geoip()
    bots: Bots = Bots()
    events: Events = Events()
    attribution: Attribution = Attribution()
    store: Store = Store()
    # checked key by key in reporting.py (their faults are named there, with their place)
    reports: dict[str, Any] | None = Field(None, description="where reports take the cost of calls from: "
                                                                "plan, package, plans_file")
    crm: dict[str, Any] | None = Field(None, description="CRM deals: match_days, amocrm_token, "
                                                            "amocrm_subdomain, bitrix24_application_token, "
                                                            "bitrix24_rest_url")


def default(model: type[BaseModel], name: str) -> Any:
    """A field's default, for the runtime records built from the document."""
    return model.model_fields[name].get_default(call_default_factory=True)


def validate(raw: Any, region: str) -> tuple[Document | None, list[Problem]]:
    """The validated document, or None and every fault with its place."""
    try:
        return Document.model_validate(raw, context={"region": region}), []
    except ValidationError as exc:
        return None, [(place(e["loc"]), _message(e)) for e in exc.errors(include_url=False)]


def place(loc: tuple[str | int, ...]) -> str:
    """A pydantic ``loc`` as a config path: ``pools.msk.numbers[2]``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not part or any(c in part for c in '.[]"') or not part.isprintable() or part != part.strip():
            out += f"[{json.dumps(part, ensure_ascii=False)}]"  # a key that would read as path syntax
        else:
            out += f".{part}" if out else part
    return out


def _message(error: Any) -> str:
    kind_, loc, ctx = error["type"], error["loc"], error.get("ctx") or {}
    if kind_ == "config":
        return str(ctx["message"])
    if kind_ == "extra_forbidden":
        known = sorted(_fields_at(loc[:-1]))
        return f"unknown key (expected one of {', '.join(known)})"
    if kind_ == "literal_error":
        options = _options_at(loc)
        return f"expected one of {', '.join(options)}, got {error['input']!r}" if options else error["msg"]
    if kind_ in ("model_type", "dict_type", "model_attributes_type"):
        return f"expected a mapping, got {kind(error['input'])}"
    if kind_ == "missing":
        return _REQUIRED.get(str(loc[-1]), "required")
    return str(error["msg"])


_REQUIRED = {"numbers": "expected a non-empty list of phone numbers", "url": "expected an http(s) URL",
             "secret": "expected a non-empty string (the HMAC-SHA256 key)",
             "measurement_id": "expected a GA4 measurement id such as G-ABC123XYZ",
             "api_secret": "expected a non-empty string (the Measurement Protocol API secret)"}


def _annotation_at(loc: tuple[str | int, ...]) -> Any:
    """The type the document declares at ``loc`` (None where it declares none)."""
    current: Any = Document
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return None
            current = field.annotation
        elif get_origin(current) in (dict, list):
            current = get_args(current)[-1]
        else:
            return None
    return _unwrap(current)


def _unwrap(tp: Any) -> Any:
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
        elif origin is Union:
            args = [a for a in get_args(tp) if a is not type(None)]
            if len(args) != 1:
                return tp
            tp = args[0]
        else:
            return tp


def _fields_at(loc: tuple[str | int, ...]) -> list[str]:
    model = _annotation_at(loc)
    return list(model.model_fields) if isinstance(model, type) and issubclass(model, BaseModel) else []


def _options_at(loc: tuple[str | int, ...]) -> tuple[str, ...]:
    tp = _annotation_at(loc)
    return tuple(get_args(tp)) if get_origin(tp) is Literal else ()


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a config document (draft 2020-12), as ``k50core schema`` prints it."""
    schema = Document.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
