"""The dimensions a report groups by, read the same way from a visit's attributes (when it is
counted) and from the summary a call's attribution keeps of its visit (``visit_summary``).

Visits are counted per dimension (no row per page view): each ``GROUPS`` counter keeps its
dimensions together (any combination within one group is reported with visits), each of ``SINGLE``
is counted alone, and the ``ALL`` counter keeps every dimension together, bounded (storage.py:
at most so many combinations an hour and a day; past that a session's rarer dimensions read
``OTHER``), for the combinations across counters.
``rule``, ``pool``, ``number`` are the engine's answer; ``status`` belongs to calls only; ``day`` /
``hour`` are times (UTC).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..errors import Error

# enriched attribute path -> how the stored summary spells it
_SUMMARY: dict[str, tuple[str, ...]] = {
    "source": ("source",), "traffic_type": ("traffic_type",),
    "geo.region": ("region",), "geo.city": ("city",), "geo.country": ("country",),
    "device.type": ("device",), "referrer.host": ("referrer",),
}
UTM = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")
GROUPS = {
    "traffic": ("source", "traffic_type", "query.utm_source", "query.utm_medium", "query.utm_campaign", "rule",
                "pool"),
    "audience": ("geo.region", "device.type"),
}
JOINT = GROUPS["traffic"] + GROUPS["audience"]
SINGLE = ("landing.path", "landing.host", "referrer.host", "geo.city", "geo.country", "number", "query.utm_content",
          "query.utm_term")
TIMES = ("day", "hour")
ENGINE = ("rule", "pool", "number")
CALL_ONLY = ("status",)
ALL = "all"          # the counter of every dimension together
OTHER = "(other)"    # a value the ALL counter had no room left for
KNOWN = JOINT + SINGLE + TIMES + CALL_ONLY


class ReportError(Error, ValueError):
    """A report asked for something it cannot give; the message names the part at fault."""


def parse_by(by: str | Sequence[str]) -> tuple[str, ...]:
    """``"source,query.utm_campaign"`` or a list of names: the dimensions, checked."""
    names = [p.strip() for p in by.split(",")] if isinstance(by, str) else [str(p).strip() for p in by]
    names = [n for n in names if n]
    if not names:
        raise ReportError("by: expected one or more dimensions, e.g. source,query.utm_campaign")
    if len(names) > 6:
        raise ReportError("by: at most 6 dimensions")
    for n in names:
        if n not in KNOWN:
            raise ReportError(f"by: unknown dimension {n[:64]!r} (known: {', '.join(KNOWN)})")
    if len(set(names)) != len(names):
        raise ReportError("by: a dimension is named twice")
    return tuple(names)


def _clean(value: Any) -> str | None:
    if value is None or value == "" or value == {}:
        return None
    return value if isinstance(value, str) else str(value)


def _landing_parts(text: Any) -> tuple[str | None, str | None]:
    """The summary keeps the landing page as host + path: split at the first slash."""
    if not isinstance(text, str) or not text:
        return None, None
    i = text.find("/")
    if i < 0:
        return text, None
    return text[:i] or None, text[i:] or None


def from_summary(summary: Mapping[str, Any], path: str) -> str | None:
    """A dimension's value from a stored visit summary (a call's attribution attributes)."""
    if path.startswith("query."):
        utm = summary.get("utm")
        return _clean(utm.get(path[6:])) if isinstance(utm, Mapping) else None
    if path == "landing.path":
        return _landing_parts(summary.get("landing"))[1]
    if path == "landing.host":
        return _landing_parts(summary.get("landing"))[0]
    key = _SUMMARY.get(path)
    return _clean(summary.get(key[0])) if key else None


# the order of ``visit_combo``'s tuple: the groups' dimensions, then the single ones, ``number`` last
VISIT_ORDER = tuple(dict.fromkeys(JOINT + tuple(d for d in SINGLE if d != "number")))
COMBO_ORDER = VISIT_ORDER + ("number",)
_NONE: dict[str, Any] = {}


def _landing(landing: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(host, path) of the enriched landing page as ``_landing_parts`` reads them back from the
    summary (host + path, split at the first slash)."""
    host, path = landing.get("host"), landing.get("path")
    if type(host) is str and type(path) is str and "/" not in host:  # the usual page: no join
        j = path.find("/")
        if j < 0:
            return host + path or None, None
        return (host if j == 0 else host + path[:j]) or None, path[j:]
    return _landing_parts((host or "") + (path or ""))


def visit_combo(attrs: Mapping[str, Any], rule: str | None, pool: str | None,
                number: str | None) -> tuple[str | None, ...]:
    """The dimensions of a visit (COMBO_ORDER) from its enriched attributes, as ``from_summary``
    reads them once the visit is stored (``visit_summary`` keeps host + path of the landing page).
    Once per visit session: plain lookups, no calls but for the landing page."""
    query = attrs.get("query")
    if type(query) is not dict:  # enrichment makes plain dicts: no ABC checks here
        query = _NONE
    geo = attrs.get("geo")
    if type(geo) is not dict:
        geo = _NONE
    landing = attrs.get("landing")
    host, path = _landing(landing) if type(landing) is dict else (None, None)
    device = attrs.get("device")
    referrer = attrs.get("referrer")
    source, traffic = attrs.get("source"), attrs.get("traffic_type")
    u_source, u_medium, u_campaign = query.get("utm_source"), query.get("utm_medium"), query.get("utm_campaign")
    u_content, u_term = query.get("utm_content"), query.get("utm_term")
    region, city, country = geo.get("region"), geo.get("city"), geo.get("country")
    device = device.get("type") if type(device) is dict else None
    referrer = referrer.get("host") if type(referrer) is dict else None
    return (source if type(source) is str and source else _clean(source),
            traffic if type(traffic) is str and traffic else _clean(traffic),
            u_source if type(u_source) is str and u_source else None,
            u_medium if type(u_medium) is str and u_medium else None,
            u_campaign if type(u_campaign) is str and u_campaign else None,
            rule, pool,
            region if type(region) is str and region else _clean(region),
            device if type(device) is str and device else _clean(device),
            path, host,
            referrer if type(referrer) is str and referrer else _clean(referrer),
            city if type(city) is str and city else _clean(city),
            country if type(country) is str and country else _clean(country),
            u_content if type(u_content) is str and u_content else None,
            u_term if type(u_term) is str and u_term else None,
            number)


def summary_getter(path: str) -> Callable[[Mapping[str, Any]], str | None]:
    return lambda summary: from_summary(summary, path)


def visit_key_names(by: Sequence[str]) -> list[str] | None:
    """Which counter answers visits for ``by``: a group's, a SINGLE dimension's own, else the ALL
    counter; None when ``by`` has ``status`` (a call's, not a visit's: the report's visits are None)."""
    attrs = [d for d in by if d not in TIMES]
    if any(d in CALL_ONLY for d in attrs):
        return None
    if not attrs:
        return ["traffic"]  # every visit is counted once in each group: any one gives the totals
    for name, members in GROUPS.items():
        if all(d in members for d in attrs):
            return [name]
    if len(attrs) == 1 and attrs[0] in SINGLE:
        return [attrs[0]]
    return [ALL]
