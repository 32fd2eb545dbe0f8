"""Device type from a User-Agent: the plain-Python reference (and oracle).

Straight from ``user_agents.parse``; the compiled twin (``_device.pyx``)
must give the very same answers. Shared rules:

* non-``str`` input (None, bytes, int, ...) answers as for ``""``;
* a ``str`` subclass answers as the plain string with the same content;
* a UA longer than ``DEVICE_UA_MAX_LEN`` code points is cut to that length
  (bounds regex time and cache memory on hostile headers);
* if user_agents itself raises on a pathological string (it does, e.g., on a
  version made of non-ASCII digits such as ``"²"``), the answer is that of
  ``""``.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

DEVICE_UA_MAX_LEN = 4096
DEVICE_CACHE_MAX = 100_000

Info = tuple[str, str, str]


def _parse(ua: str) -> Info:
    import user_agents  # lazy: importing it compiles ~1,300 regexes

    try:
        u = user_agents.parse(ua)
        if u.is_bot:
            kind = "bot"
        elif u.is_tablet:
            kind = "tablet"
        elif u.is_mobile:
            kind = "mobile"
        elif u.is_pc:
            kind = "desktop"
        else:
            kind = "other"
        return (kind, u.os.family, u.browser.family)
    except Exception:
        return _parse("") if ua else ("other", "Other", "Other")


_cached: Callable[[str], Info] = lru_cache(maxsize=DEVICE_CACHE_MAX)(_parse)


def _key(user_agent: object) -> str:
    if not isinstance(user_agent, str):
        return ""
    # str.__str__ gives an exact str even for a subclass (whatever it overrides)
    return str.__str__(user_agent)[:DEVICE_UA_MAX_LEN]


def device_info(user_agent: object) -> Info:
    """(device type, OS family, browser family), as user_agents gives them."""
    return _cached(_key(user_agent))


def device_type(user_agent: object) -> str:
    """"bot", "tablet", "mobile", "desktop" or "other": the first of
    is_bot / is_tablet / is_mobile / is_pc that user_agents says is true."""
    return _cached(_key(user_agent))[0]


def device_types(user_agents: list[Any]) -> list[str]:
    """device_type of each item."""
    return [_cached(_key(ua))[0] for ua in user_agents]


def _device_cache_info() -> dict[str, int]:
    """Cache size and bound (for tests and monitoring)."""
    info = _cached.cache_info()  # type: ignore[attr-defined]
    return {"size": info.currsize, "maxsize": info.maxsize}


def _device_cache_configure(maxsize: int = DEVICE_CACHE_MAX, memos: bool = True) -> None:
    """Empty the cache and set its bound (tests use a small one); memos is
    for parity with the compiled build, which also memoises regex parses."""
    global _cached
    if maxsize < 1:
        raise ValueError("maxsize must be >= 1")
    _cached = lru_cache(maxsize=maxsize)(_parse)
