"""Visit → attributes: URL and query, source and traffic type, GeoIP, device.

Runs on the visitor path, so a bad field (wrong type, oversized, invalid
UTF-8, malformed IP or URL) never raises: it is simply absent from the
attributes.

The enricher itself is the core's: compiled in ``k50core._enrich``, with its
plain-Python reference (and oracle) in ``k50core._engine_py.enrich``.
"""
from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

from .fields import MAX_COOKIE_VALUE, MAX_COOKIES, MAX_ID, MAX_UA, clean_text, parse_cookies, valid_ip
from .source import SourceCatalogue
from .url import host_of, split_url

__all__ = ["MAX_COOKIES", "MAX_COOKIE_VALUE", "MAX_ID", "MAX_UA", "Enricher", "SourceCatalogue", "clean_text",
           "host_of", "parse_cookies", "split_url", "valid_ip"]

EnrichFn = Callable[..., dict[str, Any]]


def Enricher(geoip: Any, catalogue: SourceCatalogue, core: ModuleType, cache_size: int = 65536) -> EnrichFn:  # noqa: N802 (the class it makes)
    """The build's enricher: ``enrich(visit, now=None)`` gives the nested attribute dict rules look at.

    *core* is the build (``k50core._impl.core`` or one of ``_impl.available()``); *cache_size* bounds
    the landing URLs and referrers kept parsed.
    """
    enricher: EnrichFn = core.Enricher(geoip, catalogue, cache_size)
    return enricher
