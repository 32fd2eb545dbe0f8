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

from .._engine_py.summary import clean_value, landing_parts, visit_combo  # noqa: F401 (visit_combo: the reference)
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


def from_summary(summary: Mapping[str, Any], path: str) -> str | None:
    """A dimension's value from a stored visit summary (a call's attribution attributes)."""
    if path.startswith("query."):
        utm = summary.get("utm")
        return clean_value(utm.get(path[6:])) if isinstance(utm, Mapping) else None
    if path == "landing.path":
        return landing_parts(summary.get("landing"))[1]
    if path == "landing.host":
        return landing_parts(summary.get("landing"))[0]
    key = _SUMMARY.get(path)
    return clean_value(summary.get(key[0])) if key else None


# the order of ``visit_combo``'s tuple: the groups' dimensions, then the single ones, ``number`` last
VISIT_ORDER = tuple(dict.fromkeys(JOINT + tuple(d for d in SINGLE if d != "number")))
COMBO_ORDER = VISIT_ORDER + ("number",)
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
