"""Visit → attributes: URL and query, source and traffic type, GeoIP, device.

Runs on the visitor path, so a bad field (wrong type, oversized, invalid
UTF-8, malformed IP or URL) never raises: it is simply absent from the
attributes.
"""
from __future__ import annotations

import socket
import time
from collections import abc
from functools import lru_cache
from types import ModuleType
from typing import Any

from .source import SourceCatalogue
from .url import MAX_FIELD, host_of, split_url

MAX_ID = 256
MAX_UA = 4096
MAX_COOKIES = 100
MAX_COOKIE_VALUE = 4096

__all__ = ["Enricher", "SourceCatalogue", "split_url", "host_of", "clean_text"]


def clean_text(value: Any, limit: int = MAX_FIELD) -> str | None:
    """A usable str, or None: bytes must be valid UTF-8, no lone surrogates, within limit."""
    if type(value) is str and len(value) <= limit and value.isascii():  # the usual case, first
        return value
    if isinstance(value, bytes):
        if len(value) > limit * 4:
            return None
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            return None
    if not isinstance(value, str) or len(value) > limit:
        return None
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates from a lossy decode
            return None
    return value


def valid_ip(text: str | None) -> str | None:
    if not text or len(text) > 45 or "%" in text:
        return None
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, text)
            return text
        except (OSError, ValueError):
            continue
    return None


def parse_cookies(raw: Any) -> dict[str, str]:
    """A dict of cookies from a mapping or a ``Cookie:`` header string."""
    pairs: Any
    if isinstance(raw, (dict, abc.Mapping)):
        pairs = raw.items()
    else:
        header = clean_text(raw)
        if not header:
            return {}
        pairs = (part.split("=", 1) for part in header.split(";") if "=" in part)
    out: dict[str, str] = {}
    for key, value in pairs:
        key, value = clean_text(key, 256), clean_text(value, MAX_COOKIE_VALUE)
        if key is None or value is None:
            continue
        key = key.strip()
        if key and key not in out:
            out[key] = value.strip().strip('"')
            if len(out) >= MAX_COOKIES:
                break
    return out


class Enricher:
    """Turns a raw visit dict into the nested attribute dict rules look at."""

    def __init__(self, geoip: Any, catalogue: SourceCatalogue, core: ModuleType, cache_size: int = 65536) -> None:
        self.geoip = geoip
        self.catalogue = catalogue
        self.device_info = core.device_info
        # Landing URLs and referrers repeat across visits (same pages, same ad links):
        # parse each once. Cached results are shared, so the query dict is copied out.
        self._split_url = lru_cache(maxsize=cache_size)(split_url)
        self._host_of = lru_cache(maxsize=cache_size)(host_of)

    def __call__(self, visit: Any, now: float | None = None) -> dict[str, Any]:
        if not isinstance(visit, (dict, abc.Mapping)):  # dict first: the ABC check is slow
            return {}
        out: dict[str, Any] = {}
        visitor = clean_text(visit.get("visitor_id"), MAX_ID)
        if visitor:
            out["visitor_id"] = visitor
        ts = visit.get("ts")
        if isinstance(ts, (int, float)) and not isinstance(ts, bool) and ts == ts and abs(ts) < 1e11:
            out["ts"] = float(ts)
        elif now is not None:
            out["ts"] = float(now)
        else:
            out["ts"] = time.time()

        host, path, query = self._split_url(clean_text(visit.get("url")))
        landing = {}
        if host is not None:
            landing["host"] = host
        if path is not None:
            landing["path"] = path
        if landing:
            out["landing"] = landing
        if query:
            query = out["query"] = dict(query)
        referrer_host = self._host_of(clean_text(visit.get("referrer")))
        if referrer_host:
            out["referrer"] = {"host": referrer_host}
        source, traffic_type = self.catalogue.classify(host, query, referrer_host)
        if source:
            out["source"] = source
        out["traffic_type"] = traffic_type

        ip = valid_ip(clean_text(visit.get("ip"), 64))
        if ip:
            out["ip"] = ip
            country, region, city = self.geoip.lookup(ip)
            geo = {k: v for k, v in (("country", country), ("region", region), ("city", city)) if v}
            if geo:
                out["geo"] = geo
        ua = clean_text(visit.get("user_agent"), MAX_UA)
        kind, os_family, browser = self.device_info(ua if ua is not None else "")
        out["device"] = {"type": kind, "os": os_family, "browser": browser}
        cookies = parse_cookies(visit.get("cookies"))
        if cookies:
            out["cookie"] = cookies
        return out
