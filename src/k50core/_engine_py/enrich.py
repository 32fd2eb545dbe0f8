"""Visit enrichment: the plain-Python reference (and oracle) of k50core._enrich, same API.

``Enricher(geoip, catalogue, cache_size)`` turns a raw visit into the attribute dict rules look at;
``Classifier(catalogue)`` gives a visit's ``(source, traffic_type)`` (the rules are in the docstring
of k50core.enrich.source). The compiled twin must give the very same dicts and pairs for every input.
"""
from __future__ import annotations

import time
from collections import abc
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from ..enrich.fields import MAX_ID, MAX_UA, clean_text, parse_cookies, valid_ip
from ..enrich.source import (
    _MEDIUM_SEPARATORS,
    _ORGANIC,
    _ORGANIC_KEEPS,
    _UTM_MEDIUM,
    _UTM_SOURCE,
    SourceCatalogue,
    _host_arg,
    _norm_value,
    _site,
    _strip_www,
)
from ..enrich.url import host_of, normalize_host, split_url
from .device import device_info

__all__ = ["Classifier", "Enricher"]


class Classifier:
    """Classifies visits by one catalogue's tables. Immutable; safe to share between threads."""

    def __init__(self, catalogue: SourceCatalogue, cache_size: int = 16384) -> None:
        self.catalogue = catalogue  # cache_size: the compiled build's host cache; here _site's own suffices
        self._lookup = catalogue._lookup
        self._names = catalogue._names
        self._aliases = catalogue._aliases
        self._mediums = catalogue._mediums
        self._paid_ids = catalogue._paid_ids
        self._marker_ids = catalogue._marker_ids
        self._paid_id_set = catalogue._paid_id_set
        self._marker_id_set = catalogue._marker_id_set

    def classify(self, landing_host: str | None, query: Mapping[str, str],
                 referrer_host: str | None) -> tuple[str | None, str]:
        """Return ``(source, traffic_type)`` of a visit. Never raises.

        *landing_host* and *referrer_host* are hosts as returned by
        :func:`~k50core.enrich.url.split_url` (a raw host or URL is
        normalised too); *query* is the landing page's query parameters.
        Anything of the wrong type counts as absent.
        """
        if type(query) is not dict and not isinstance(query, Mapping):
            query = {}
        ref = _host_arg(referrer_host)
        medium = _norm_value(query.get(_UTM_MEDIUM)) if query else ""
        src_tag = _norm_value(query.get(_UTM_SOURCE)) if query else ""

        # (a) paid: by medium or by click id
        kind = self._medium_type(medium) if medium else None
        click_source = None
        if query and not self._paid_id_set.isdisjoint(query.keys()):
            for key, paid_source in self._paid_ids:
                if _norm_value(query.get(key)):
                    click_source = paid_source
                    break
        if kind == "ads" or click_source is not None:
            if src_tag:
                return self._tag_source(src_tag)[0], "ads"
            if click_source is not None:
                return click_source, "ads"
            return self._fallback_source(landing_host, query, ref), "ads"

        # (b) other utm tags
        if kind is not None or src_tag:
            name, tag_kind = self._tag_source(src_tag) if src_tag else (None, None)
            if kind == _ORGANIC:
                kind = tag_kind if tag_kind in _ORGANIC_KEEPS else "search"
            elif kind is None:
                kind = tag_kind if tag_kind is not None else "referral"
            if name is None:
                name = self._fallback_source(landing_host, query, ref)
            return name, kind

        # (c) referrer
        if ref is not None:
            return self._referrer(_host_arg(landing_host), ref)

        # (d) no referrer: an organic click id stands in for it
        if query and not self._marker_id_set.isdisjoint(query.keys()):
            for key, hit in self._marker_ids:
                if _norm_value(query.get(key)):
                    return hit
        return None, "direct"

    def clear_cache(self) -> None:
        """Nothing to forget: the reference keeps no hosts of its own."""

    def _medium_type(self, medium: str) -> str | None:
        kind = self._mediums.get(medium)
        if kind is None:
            cut = len(medium)
            for sep in _MEDIUM_SEPARATORS:
                k = medium.find(sep, 0, cut)
                if k > 0:
                    cut = k
            if cut < len(medium):
                kind = self._mediums.get(medium[:cut])
        return kind

    def _tag_source(self, tag: str) -> tuple[str, str | None]:
        """Normalised utm_source value -> (source name, its type if known)."""
        name = self._aliases.get(tag, tag)
        kind = self._names.get(name)
        if kind is not None:
            return name, kind
        if "." in tag:
            h = normalize_host(tag)
            if h is not None:
                hit = self._lookup(h)
                if hit is not None:
                    return hit
                return _strip_www(h), None
        return name, None

    def _fallback_source(self, landing: str | None, query: Mapping, ref: str | None) -> str | None:
        """Source for tagged traffic without utm_source: referrer, else marker."""
        if ref is not None:
            return self._referrer(_host_arg(landing), ref)[0]
        if not self._marker_id_set.isdisjoint(query.keys()):
            for key, hit in self._marker_ids:
                if _norm_value(query.get(key)):
                    return hit[0]
        return None

    def _referrer(self, landing: str | None, ref: str) -> tuple[str | None, str]:
        if landing is not None and (landing == ref or _site(landing) == _site(ref)):
            return None, "internal"
        hit = self._lookup(ref)
        if hit is not None:
            return hit
        return _strip_www(ref), "referral"


class Enricher:
    """Turns a raw visit dict into the nested attribute dict rules look at."""

    def __init__(self, geoip: Any, catalogue: SourceCatalogue, cache_size: int = 65536) -> None:
        self.geoip = geoip
        self.catalogue = catalogue
        self.classify = Classifier(catalogue).classify
        self.device_info = device_info
        # Landing URLs and referrers repeat across visits (same pages, same ad links):
        # parse each once. Cached results are shared, so the query dict is copied out.
        self._split_url = lru_cache(maxsize=cache_size)(split_url)
        self._host_of = lru_cache(maxsize=cache_size)(host_of)

    def clear_caches(self) -> None:
        """Forget the URLs and referrers seen (a cold start, for benchmarks)."""
        self._split_url.cache_clear()
        self._host_of.cache_clear()

    def cache_sizes(self) -> dict[str, int]:
        """{"urls", "referrers", "hosts"}: how many of each are kept parsed."""
        return {"urls": self._split_url.cache_info().currsize, "referrers": self._host_of.cache_info().currsize,
                "hosts": 0}

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
        source, traffic_type = self.classify(host, query, referrer_host)
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
