"""Host adapters for server-side number substitution (no flicker).

The page leaves the server already showing the visitor's tracking number:

* ``wsgi.K50Middleware(app, engine)`` — any WSGI app (Flask, Django, …); the assignment is in
  ``environ["k50core.assignment"]``.
* ``asgi.K50ASGIMiddleware(app, engine)`` — any ASGI app (Starlette, FastAPI, Django ASGI); the
  assignment is in ``scope["state"]["k50core_assignment"]`` (``request.state.k50core_assignment``)
  and ``scope["k50core.assignment"]``.
* ``flask.K50Flask(app, engine)`` — a Flask extension: ``k50core_number`` / ``k50core_tel`` /
  ``k50core_assignment`` in templates, substitution in HTML responses.
* ``django`` — ``K50Middleware`` (settings ``K50CORE = {"ENGINE": …}``), the context processor
  ``k50core_number`` and a template tag library (``{% k50core_number %}``, ``{% k50core_tel %}``).

Every adapter builds a visit from the request the way the HTTP service does (visitor id from
the ``k50_vid`` cookie, set — random, one year, SameSite=Lax — when absent), asks
``engine.assign`` and swaps the site's own numbers (``site.default_number`` and the pools'
``default_number``) in ``text/html`` responses, keeping the page's written format (see
``substitute``). Non-HTML, streamed and compressed responses pass through untouched. A failing
engine is logged and the page is served as it is; an excluded visit keeps the page's number.
"""
from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ..visitors import COOKIE_MAX_AGE, VISITOR_COOKIE, VISITOR_ID, client_ip, networks
from .substitute import Substituter, site_numbers

__all__ = ["Tracker", "Substituter", "site_numbers", "VISITOR_COOKIE", "COOKIE_MAX_AGE", "ENVIRON_KEY",
           "STATE_KEY", "parse_cookies", "content_type_is_html"]

log = logging.getLogger("k50core.middleware")

ENVIRON_KEY = "k50core.assignment"    # WSGI environ / ASGI scope key
STATE_KEY = "k50core_assignment"      # ASGI scope["state"] key (request.state.k50core_assignment)
MAX_BODY = 4 * 1024 * 1024            # a larger HTML body passes through unswapped
_LIMITS = {"url": 16384, "referrer": 16384, "user_agent": 4096}


def parse_cookies(header: str | None) -> dict[str, str]:
    """A Cookie header as a dict; tolerant of junk (a bad pair is skipped, never an error)."""
    out: dict[str, str] = {}
    if not header:
        return out
    for part in header.split(";"):
        name, eq, value = part.partition("=")
        name, value = name.strip(), value.strip()
        if not eq or not name or len(out) >= 100 or len(name) > 256 or len(value) > 4096:
            continue
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        out.setdefault(name, value)
    return out


def content_type_is_html(content_type: str | None) -> bool:
    return (content_type or "").split(";", 1)[0].strip().lower() in ("text/html", "application/xhtml+xml")


def charset_of(content_type: str | None) -> str:
    for param in (content_type or "").split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and value.strip():
            return value.strip().strip('"')
    return "utf-8"


class Tracker:
    """What every adapter shares: the engine, its lock, the site numbers and the visitor cookie.

    ``engine`` is a ``k50core.Engine``; ``now`` a clock (seconds) for tests; ``secure_cookie``
    forces the cookie's Secure flag (default: when the request came over https);
    ``trusted_proxies`` (addresses or CIDRs) are the peers whose X-Forwarded-For is believed;
    ``should_track(method, path, accept)`` says which requests get a number (default: GET and
    HEAD requests that accept HTML — not XHR/JSON calls or assets).
    """

    def __init__(self, engine: Any, *, now: Callable[[], float] | None = None,
                 secure_cookie: bool | None = None, trusted_proxies: Sequence[str] = (),
                 should_track: Callable[[str, str, str], bool] | None = None,
                 max_body: int = MAX_BODY) -> None:
        self.engine = engine
        self.now = now or time.time
        self.secure_cookie = secure_cookie
        self.trusted = networks(trusted_proxies)
        self.should_track = should_track or default_should_track
        self.max_body = max_body
        self.lock = threading.Lock()  # one engine call at a time, as in the service
        # pools in Redis: the lock is not held while a new visitor's claim is out, so the claims of
        # concurrent requests go to Redis together (k50core.pool_redis.visits)
        self.redis_claims = hasattr(getattr(engine, "pools", None), "claim_soon")
        config = engine.config
        self.substituter = Substituter(site_numbers(config), getattr(config, "region", "RU"),
                                       getattr(config, "display", "ru"))

    # -- the visit ------------------------------------------------------------------------------
    def visitor(self, cookies: Mapping[str, str]) -> tuple[str, bool]:
        """(visitor id, whether it is new and the cookie must be set)."""
        vid = cookies.get(VISITOR_COOKIE)
        if vid and VISITOR_ID.match(vid):
            return vid, False
        return secrets.token_urlsafe(16), True

    def client_ip(self, peer: str | None, forwarded: Iterable[str]) -> str | None:
        return client_ip(peer, forwarded, self.trusted)

    def visit(self, *, url: str, referrer: str | None, user_agent: str | None, ip: str | None,
              cookies: dict[str, str], visitor_id: str) -> dict[str, Any]:
        visit: dict[str, Any] = {"visitor_id": visitor_id, "url": url[:_LIMITS["url"]], "ip": ip, "cookies": cookies}
        if referrer:
            visit["referrer"] = referrer[:_LIMITS["referrer"]]
        if user_agent:
            visit["user_agent"] = user_agent[:_LIMITS["user_agent"]]
        return visit

    def assign(self, visit: dict[str, Any]) -> Any | None:
        """The engine's Assignment, or None when the engine failed (logged: the page is served as is)."""
        try:
            if self.redis_claims:
                from k50core.pool_redis.visits import assign_threaded
                return assign_threaded(self.engine, visit, float(self.now()), None, self.lock)
            with self.lock:
                return self.engine.assign(visit, float(self.now()))
        except Exception:
            log.exception("k50core: engine.assign failed; the page keeps its own number")
            return None

    async def assign_on_loop(self, visit: dict[str, Any]) -> Any | None:
        """assign() on an event loop, with the pools in Redis: the engine's memory work on the loop, a
        new visitor's claim off it (k50core.pool_redis.visits)."""
        from k50core.pool_redis.visits import assign_async
        try:
            return await assign_async(self.engine, visit, float(self.now()), None, self.lock)
        except Exception:
            log.exception("k50core: engine.assign failed; the page keeps its own number")
            return None

    # -- the response ---------------------------------------------------------------------------
    def number(self, assignment: Any | None) -> str | None:
        return getattr(assignment, "number", None) if assignment is not None else None

    def substitute_html(self, html: str, assignment: Any | None) -> str:
        number = self.number(assignment)
        if not number:
            return html
        try:
            return self.substituter.html(html, number)
        except Exception:  # a bug in the substitution never breaks the page
            log.exception("k50core: substitution failed; the page keeps its own number")
            return html

    def substitute_body(self, body: bytes, content_type: str | None, assignment: Any | None) -> bytes:
        """An HTML body in its charset with the numbers swapped; undecodable bodies come back unchanged."""
        if not self.number(assignment) or len(body) > self.max_body:
            return body
        charset = charset_of(content_type)
        try:
            text = body.decode(charset)
        except (UnicodeDecodeError, LookupError):
            return body
        swapped = self.substitute_html(text, assignment)
        if swapped == text:
            return body
        try:
            return swapped.encode(charset)
        except UnicodeEncodeError:
            return body

    def wants_body(self, content_type: str | None, content_encoding: str | None,
                   assignment: Any | None) -> bool:
        """Whether a response is one to substitute in: HTML, not compressed, and a number to show."""
        return (bool(self.number(assignment)) and content_type_is_html(content_type)
                and (content_encoding or "identity").strip().lower() in ("", "identity"))

    def set_cookie_header(self, visitor_id: str, https: bool) -> str:
        secure = https if self.secure_cookie is None else self.secure_cookie
        return (f"{VISITOR_COOKIE}={visitor_id}; Max-Age={COOKIE_MAX_AGE}; Path=/; SameSite=Lax"
                + ("; Secure" if secure else ""))


def default_should_track(method: str, path: str, accept: str) -> bool:
    """GET / HEAD requests for pages: Accept absent, or naming text/html, or */*."""
    if method.upper() not in ("GET", "HEAD"):
        return False
    accept = (accept or "").lower()
    return not accept or "text/html" in accept or "*/*" in accept or "application/xhtml" in accept


def headers_get(headers: Sequence[tuple[str, str]], name: str) -> str | None:
    name = name.lower()
    for k, v in headers:
        if k.lower() == name:
            return v
    return None


def headers_without(headers: Sequence[tuple[str, str]], name: str) -> list[tuple[str, str]]:
    name = name.lower()
    return [(k, v) for k, v in headers if k.lower() != name]
