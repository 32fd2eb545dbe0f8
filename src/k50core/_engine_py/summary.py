"""What a new visitor's attributes become, the reference of the compiled
``k50core._enrich`` (``_summary.pxi``): the summary a stored visit keeps (``visit_summary``) and the
dimensions its report counters count (``visit_combo``). Both run once per new visitor, so both are
compiled; these are the oracle the tests compare the compiled ones against."""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_GA_SESSION_COOKIE = re.compile(r"GS1\.\d{1,3}\.(\d{1,20})\.|GS2\.\d{1,3}\.s(\d{1,20})(?:\$|$)")


def _part(attrs: Mapping[str, Any], name: str) -> dict[str, Any]:
    value = attrs.get(name)
    return value if type(value) is dict else _NOTHING  # enrichment makes plain dicts; no ABC checks here


_NOTHING: dict[str, Any] = {}


def visit_summary(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """What a stored visit keeps of its attributes: what reports and attribution show. Empty
    values (None, "", {}) are left out. Runs once per new visitor: plain lookups, no helpers."""
    out: dict[str, Any] = {}
    for name in ("source", "traffic_type"):
        value = attrs.get(name)
        if value is not None and value != "" and value != {}:
            out[name] = value
    query = _part(attrs, "query")
    if query:
        utm = {k: v for k, v in query.items() if isinstance(k, str) and k.startswith("utm_")}
        if utm:
            out["utm"] = utm
    landing = _part(attrs, "landing")
    if landing:
        text = (landing.get("host") or "") + (landing.get("path") or "")
        if text:
            out["landing"] = text
    referrer = _part(attrs, "referrer").get("host")
    if referrer is not None and referrer != "" and referrer != {}:
        out["referrer"] = referrer
    geo = _part(attrs, "geo")
    if geo:
        for name in ("region", "city", "country"):
            value = geo.get(name)
            if value is not None and value != "" and value != {}:
                out[name] = value
    device = _part(attrs, "device").get("type")
    if device is not None and device != "" and device != {}:
        out["device"] = device
    ip = attrs.get("ip")
    if ip is not None and ip != "" and ip != {}:
        out["ip"] = ip
    cookies = _part(attrs, "cookie")
    if cookies:
        ga_fields(cookies, out)
    return out


def ga_fields(cookies: dict[str, Any], out: dict[str, Any]) -> None:
    """The Google Analytics ids a visit's cookies carry, into ``out`` (both builds call this: it runs
    only for visits with cookies, and its regular expression is the work)."""
    # GA4 client id: the last two fields of the _ga cookie (GA1.1.<random>.<timestamp>)
    ga = cookies.get("_ga")
    if isinstance(ga, str) and ga.count(".") >= 3:
        client = ".".join(ga.split(".")[-2:])
        if client:
            out["ga_client_id"] = client
    # GA4 session id: from each stream's _ga_<CONTAINER> cookie, "GS1.1.<session_id>.<n>.<...>" or
    # "GS2.1.s<session_id>$o<n>$...". One stream: ga_session_id; several: ga_session_ids by container.
    sessions: dict[str, str] = {}
    for name, value in cookies.items():
        if isinstance(name, str) and name.startswith("_ga_") and 0 < len(name) - 4 <= 32 and isinstance(value, str):
            m = _GA_SESSION_COOKIE.match(value)
            if m:
                sessions[name[4:]] = m.group(1) or m.group(2)
                if len(sessions) >= 8:
                    break
    if len(sessions) == 1:
        out["ga_session_id"] = next(iter(sessions.values()))
    elif sessions:
        out["ga_session_ids"] = sessions


def clean_value(value: Any) -> str | None:
    if value is None or value == "" or value == {}:
        return None
    return value if isinstance(value, str) else str(value)


def landing_parts(text: Any) -> tuple[str | None, str | None]:
    """The summary keeps the landing page as host + path: split at the first slash."""
    if not isinstance(text, str) or not text:
        return None, None
    i = text.find("/")
    if i < 0:
        return text, None
    return text[:i] or None, text[i:] or None


_NONE: dict[str, Any] = {}


def _landing(landing: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(host, path) of the enriched landing page as ``landing_parts`` reads them back from the
    summary (host + path, split at the first slash)."""
    host, path = landing.get("host"), landing.get("path")
    if type(host) is str and type(path) is str and "/" not in host:  # the usual page: no join
        j = path.find("/")
        if j < 0:
            return host + path or None, None
        return (host if j == 0 else host + path[:j]) or None, path[j:]
    return landing_parts((host or "") + (path or ""))


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
    return (source if type(source) is str and source else clean_value(source),
            traffic if type(traffic) is str and traffic else clean_value(traffic),
            u_source if type(u_source) is str and u_source else None,
            u_medium if type(u_medium) is str and u_medium else None,
            u_campaign if type(u_campaign) is str and u_campaign else None,
            rule, pool,
            region if type(region) is str and region else clean_value(region),
            device if type(device) is str and device else clean_value(device),
            path, host,
            referrer if type(referrer) is str and referrer else clean_value(referrer),
            city if type(city) is str and city else clean_value(city),
            country if type(country) is str and country else clean_value(country),
            u_content if type(u_content) is str and u_content else None,
            u_term if type(u_term) is str and u_term else None,
            number)
