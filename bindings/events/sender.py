"""Sending one event over HTTP, and what its answer means for the outbox.

The standard library's urllib, so the service needs no HTTP client dependency: each send opens
its own connection (thread-safe, and a worker pool of senders needs nothing shared). Redirects
are not followed: a POST must not silently turn into a GET somewhere else.
"""
from __future__ import annotations

import email.utils
import hashlib
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from k50core import __version__

USER_AGENT = f"k50core/{__version__}"
TIMEOUT = 10.0                       # seconds for connecting, and for each read
_READ_LIMIT = 64 * 1024              # bytes of an answer read (and dropped) before closing


class Reply(NamedTuple):
    """A receiver's answer: the HTTP status and its Retry-After header, if any."""
    status: int
    retry_after: str | None = None


Send = Callable[[str, bytes, Mapping[str, str], float], Reply]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # urllib then raises HTTPError with the 3xx status: a failed attempt


def http_send(url: str, body: bytes, headers: Mapping[str, str], timeout: float = TIMEOUT) -> Reply:
    """POST ``body`` to ``url``; any HTTP answer is a Reply, a network failure raises (OSError)."""
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=timeout) as response:
            response.read(_READ_LIMIT)
            return Reply(response.status, response.headers.get("Retry-After"))
    except urllib.error.HTTPError as exc:
        with exc:
            return Reply(exc.code, exc.headers.get("Retry-After") if exc.headers else None)


# -- what an answer means ---------------------------------------------------------------------
DELIVERED, RETRY, DEAD = "delivered", "retry", "dead"
# The receiver refused this very body (400, 413, 422) or says the endpoint is gone for good (410):
# sending it again cannot succeed. Everything else is retried with backoff until max_attempts:
# 401/403/404 are usually a deploy or a secret being rotated that an operator can fix in time;
# 408, 429 and 5xx are transient by definition; 3xx (not followed) may be fixed in the config.
PERMANENT = frozenset({400, 410, 413, 422})


def verdict(status: int) -> str:
    if 200 <= status < 300:
        return DELIVERED
    return DEAD if status in PERMANENT else RETRY


def error_text(exc: BaseException) -> str:
    """A short, secret-free description of a failed send: error classes only, never the URL."""
    name = type(exc).__name__
    reason = getattr(exc, "reason", None)
    if isinstance(reason, BaseException):
        name += ": " + type(reason).__name__
    return name[:200]


def retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), if it parses."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(min(int(text), 10 ** 9))
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)


def backoff(key: str, attempts: int, base: float, most: float) -> float:
    """Seconds before the next try after ``attempts`` failures: base x 2^(attempts-1), at most
    ``most``, spread ±20% by a hash of the key so retries of many events do not arrive in step
    (deterministic: a test, or a second worker, computes the same schedule)."""
    raw = min(most, base * 2.0 ** min(max(attempts - 1, 0), 64))
    digest = hashlib.sha256(f"{key}#{attempts}".encode()).digest()
    spread = 0.8 + 0.4 * int.from_bytes(digest[:8], "big") / 2 ** 64
    return min(most, raw * spread)
