"""The public endpoints, straight on ASGI: ``POST /v1/visit``, ``POST /v1/heartbeat`` and ``POST /v1/intent``.

Every page view of every visitor comes here, so these two skip the framework: the headers
are read once from the ASGI scope, the body from ``receive``, and the answer is written as
bytes. (Starlette's Request, routing and JSONResponse cost several times what the engine's
assign does for a returning visitor.) Their bodies are pydantic types (bodies.py), validated
from the bytes. Everything else goes on to the Starlette app.
"""
from __future__ import annotations

import logging
import math
import re
import secrets
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from k50core.config.phones import display as format_number
from k50core.pools import Assignment

from ..visitors import COOKIE_MAX_AGE, VISITOR_COOKIE, VISITOR_ID
from .bodies import HEARTBEAT, VISIT, decode, present
from .errors import ApiError, json_bytes, read_body
from .intents import intent
from .limits import networks_of

if TYPE_CHECKING:
    from .app import Service

log = logging.getLogger("k50core.service")

Headers = list[tuple[bytes, bytes]]
Answer = tuple[int, Any, Headers]  # status, JSON body (None: no body), extra headers

_GA_CLIENT = re.compile(r"\d{1,20}\.\d{1,20}")
_GA_SESSION = re.compile(r"\d{1,20}")


class Incoming:
    """What the public endpoints read of a request, taken from the ASGI scope in one pass."""

    __slots__ = ("method", "origin", "length", "cookie", "user_agent", "forwarded", "peer", "scheme", "asked",
                 "host", "content_type")

    def __init__(self, scope: dict[str, Any]) -> None:
        self.method: str = scope["method"]
        self.origin = self.length = self.cookie = self.user_agent = self.asked = None
        self.host = self.content_type = None
        self.forwarded: list[str] = []
        for name, value in scope["headers"]:
            if name == b"host":
                self.host = value.decode("latin-1")
            elif name == b"content-type":
                self.content_type = value.decode("latin-1")
            elif name == b"origin":
                self.origin = value.decode("latin-1")
            elif name == b"content-length":
                self.length = value.decode("latin-1")
            elif name == b"cookie":
                self.cookie = value.decode("latin-1") if self.cookie is None else \
                    f"{self.cookie}; {value.decode('latin-1')}"
            elif name == b"user-agent":
                self.user_agent = value.decode("latin-1")
            elif name == b"x-forwarded-for":
                self.forwarded.append(value.decode("latin-1"))
            elif name == b"access-control-request-method":
                self.asked = value.decode("latin-1")
        client = scope.get("client")
        self.peer: str | None = client[0] if client else None
        self.scheme: str = scope.get("scheme", "http")

    def same_site(self) -> bool:
        """The Origin is this service's own host (a page the service serves, e.g. the demo)."""
        origin = self.origin or ""
        return bool(self.host) and origin.partition("://")[2].rstrip("/").lower() == (self.host or "").lower()

    def visitor_cookie(self) -> str | None:
        if not self.cookie or VISITOR_COOKIE not in self.cookie:
            return None
        for part in self.cookie.split(";"):
            name, _, value = part.partition("=")
            if name.strip() == VISITOR_COOKIE:
                return value.strip().strip('"')
        return None


def ga_cookie(visit: dict[str, Any]) -> None:
    """A ga_client_id ("<random>.<timestamp>") given in the body stands for the _ga cookie, and a
    ga_session_id for a GA4 stream's _ga_<container> cookie (see attribution.visit_summary)."""
    ga, session = visit.pop("ga_client_id", None), visit.pop("ga_session_id", None)
    if ga and _GA_CLIENT.fullmatch(ga):
        _add_cookie(visit, "_ga", f"GA1.1.{ga}")
    if ga and session and _GA_SESSION.fullmatch(session):
        _add_cookie(visit, "_ga_K50", f"GS1.1.{session}.1")


def _add_cookie(visit: dict[str, Any], name: str, value: str) -> None:
    cookies = visit.get("cookies")
    if cookies is None:
        visit["cookies"] = {name: value}
    elif isinstance(cookies, dict):
        cookies.setdefault(name, value)
    elif f"{name}=" not in cookies:
        visit["cookies"] = f"{cookies}; {name}={value}" if cookies.strip() else f"{name}={value}"


def returning(engine: Any, visitor: str | None, token: str | None, now: float) -> Assignment | None:
    """The live lease of a returning visitor (by token or visitor id), renewed; None for anyone else.
    The engine's own first step of ``assign`` (see Pools.returning), asked alone: it takes nothing."""
    return engine.pools.returning(visitor or None, token or None, int(now * 1000))


async def visit(svc: Service, req: Incoming, body: bytes) -> Answer:
    """POST /v1/visit: the number this page view shows, and the visitor cookie.

    A returning visitor with a live lease gets it before anything else. A new visitor headed for
    a dynamic pool gets, while the guard is on, a provisional answer: no number and a ``claim``
    ticket, which the snippet sends back with the same visit to take the number (see limits.py)."""
    given = decode(VISIT, body, "invalid visit")
    fields = present(given)
    claim = fields.pop("claim", None)
    if "visitor_id" not in fields:
        cookie = req.visitor_cookie()
        fields["visitor_id"] = cookie if cookie and VISITOR_ID.match(cookie) else secrets.token_urlsafe(16)
    body_agent = fields.get("user_agent")
    if body_agent is None and req.user_agent:
        fields["user_agent"] = req.user_agent[:4096]
    fields["ip"] = ip = svc.client_ip(req.peer, req.forwarded)
    ga_cookie(fields)
    now = float(svc.now())
    guard = svc.guard
    ticket = None
    # a returning visitor with a live lease keeps its number before any limit: behind a busy carrier
    # NAT a visitor's address may be over every limit, its own lease takes nothing new
    if svc.returning_async is not None:  # pools in Redis: a look there made off the loop
        got = await svc.returning_async(svc.engine, fields["visitor_id"] or None, fields.get("token") or None,
                                        int(now * 1000))
    else:
        got = returning(svc.engine, fields["visitor_id"], fields.get("token"), now)
    if got is not None:
        if guard is not None:
            guard.renewed(got.token, got.expires_at)
    else:
        refused = svc.over_limit(fields, now)
        if refused:  # a flood gets the site's number and takes nothing from any pool
            svc.metrics.rate_limited(refused)
            got = site_number(svc)
        elif guard is None:
            got = await assign(svc, fields, now)
        elif guard.refuses_agent(req.user_agent, body_agent):  # not a browser: nothing taken, page as it is
            svc.metrics.refused("agent")
            got = NOTHING
        else:
            got, ticket = await guarded(svc, guard, fields, ip, claim, now)
    svc.metrics.assigned(got.pool, "ticket" if ticket else svc.outcome(got))
    ttl = None if got.expires_at is None else max(0, int(math.ceil(got.expires_at - now)))
    vid = fields["visitor_id"]
    headers: Headers = []
    if VISITOR_ID.match(vid):  # a body's id that is no valid cookie value is answered, not stored
        secure = req.scheme == "https" if svc.secure_cookie is None else svc.secure_cookie
        cookie = f"{VISITOR_COOKIE}={vid}; Max-Age={COOKIE_MAX_AGE}; Path=/; SameSite=lax"
        headers.append((b"set-cookie", (cookie + "; Secure" if secure else cookie).encode("latin-1")))
    answer = {"number": got.number, "display": got.display, "token": got.token, "ttl": ttl,
              "shared": bool(got.shared), "visitor_id": vid}
    if ticket is not None:
        answer["claim"] = ticket
    return 200, answer, headers


NOTHING = Assignment(None, None, None, None, None, None, False)


def site_number(svc: Service) -> Assignment:
    """The site's own number, nothing leased: what a visit over a limit is shown."""
    number = svc.engine.config.default_number
    return Assignment(number, format_number(number, svc.engine.config.display) if number else None,
                      None, None, None, None, False)


async def assign(svc: Service, fields: dict[str, Any], now: float) -> Assignment:
    """The engine's assign: memory work, right here; with the pools in Redis a new visitor's claim
    goes to Redis with the others' while the loop serves other requests (k50core.pool_redis.visits).
    A new lease is safe before its number is shown: in the engine's journal (a SQLite file), or
    committed (PostgreSQL)."""
    try:
        if svc.assign_async is not None:
            got = await svc.assign_async(svc.engine, fields, now, fields.get("token"))
        else:
            got = svc.engine.assign(fields, now, fields.get("token"))
    except Exception:  # the journal's disk and the store both failed (logged): the start stays queued
        log.exception("a new visitor's lease start could not be kept")
        raise ApiError(503, "storage unavailable, try again", headers={"Retry-After": "1"}) from None
    if svc.store.leases.commit_before_showing():
        await svc.commit()
    return got


async def guarded(svc: Service, guard: Any, fields: dict[str, Any], ip: str | None, claim: str | None,
                  now: float) -> tuple[Assignment, str | None]:
    """A new visitor from a browser, the guard on: (what it is shown, a claim ticket or None)."""
    decision = svc.engine.decide(fields, now)
    pool = svc.engine.config.pools.get(decision.pool) if decision.kind == "pool" and decision.pool else None
    if pool is None or pool.type != "dynamic":  # an exclusion, no rule, a static number: nothing to drain
        return await assign(svc, fields, now), None
    visitor = fields["visitor_id"]
    network = networks_of(ip)[1]
    claimed = claim is not None and guard.valid_ticket(claim, visitor, pool.name, network, now)
    if guard.settings.claims and not claimed:  # the first answer: the decision, no number yet
        refused = guard.lease_refusal(ip, pool.name, len(pool.numbers), now, take=False)
        if refused:
            svc.metrics.rate_limited(refused)
            return site_number(svc), None
        return Assignment(None, None, pool.name, decision.rule, None, None, False), \
            guard.ticket(visitor, pool.name, network, now)
    refused = guard.lease_refusal(ip, pool.name, len(pool.numbers), now, take=True)
    if refused:
        svc.metrics.rate_limited(refused)
        return site_number(svc), None
    got = await assign(svc, fields, now)
    if got.token is not None and not got.shared and got.expires_at is not None:
        guard.leased(got.token, got.pool or pool.name, ip, got.expires_at)
    return got, None


async def heartbeat(svc: Service, req: Incoming, body: bytes) -> Answer:
    """POST /v1/heartbeat: the page is still open; is its lease alive? A token this process did not
    give the caller's network counts against the address's heartbeat allowance (429 over it)."""
    token = decode(HEARTBEAT, body, "invalid heartbeat")["token"]
    now = float(svc.now())
    guard = svc.guard
    if guard is None:
        return 200, {"alive": bool(svc.engine.heartbeat(token, now))}, []
    ip = svc.client_ip(req.peer, req.forwarded)
    pool = guard.pool_of(token, ip)
    if pool is None and not guard.heartbeat_allowed(ip, now):
        svc.metrics.rate_limited("heartbeat")
        raise ApiError(429, "too many heartbeats", headers={"Retry-After": "30"})
    alive = bool(svc.engine.heartbeat(token, now))
    if alive and pool is not None:
        known = svc.engine.config.pools.get(pool)
        guard.renewed(token, now + known.hold_seconds if known is not None else None)
    return 200, {"alive": alive}, []


# what a page on another site may post here without a CORS preflight
_SIMPLE_TYPES = ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data")


def cross_site(svc: Service, req: Incoming, beacon: bool = False) -> None:
    """Refuses a browser's request from a site that is not allowed: an Origin that is neither
    allow-listed (``cors_origins``) nor this service's own host is 403, and a body type that a page
    may send anywhere without a preflight (text/plain, forms) is 415, except on a route a beacon posts
    to (``beacon``: /v1/intent, whose answer nobody reads). No Origin: a server's call."""
    if req.origin is not None and not svc.allowed(req.origin) and not req.same_site():
        raise ApiError(403, "origin not allowed")
    if beacon:
        return
    media = (req.content_type or "").partition(";")[0].strip().lower()
    if media in _SIMPLE_TYPES:
        raise ApiError(415, "expected Content-Type: application/json")


Handler = Callable[["Service", Incoming, bytes], Awaitable[Answer]]
ROUTES: dict[str, Handler] = {"/v1/visit": visit, "/v1/heartbeat": heartbeat, "/v1/intent": intent}
BEACONS = ("/v1/intent",)  # posted with navigator.sendBeacon: a text/plain body
_JSON = (b"content-type", b"application/json")


class PublicEndpoints:
    """The public routes (with JSON errors and metrics) for the app in front of them (CORS: cors.py)."""

    def __init__(self, svc: Service) -> None:
        self.svc = svc

    def route(self, scope: dict[str, Any]) -> tuple[str, Handler] | None:
        """(path, handler) when the request is for a public route, else None."""
        if scope["type"] != "http":
            return None
        path = scope["path"]
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root):]
        handler = ROUTES.get(path)
        return None if handler is None else (path, handler)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        found = self.route(scope)
        if found is not None:
            await self.handle(found[0], found[1], scope, receive, send)

    async def handle(self, path: str, handler: Handler, scope: dict[str, Any], receive: Any, send: Any) -> None:
        svc = self.svc
        req = Incoming(scope)
        try:
            if req.method == "POST":
                if svc.guard is not None and svc.guard.settings.origins:
                    cross_site(svc, req, path in BEACONS)
                body = await read_body(receive, req.length)
                if body is None:  # the client left: nobody to answer
                    return
                status, payload, headers = await handler(svc, req, body)
            elif req.method == "OPTIONS":  # not a CORS preflight (cors.py answers those)
                status, payload, headers = 204, None, [(b"allow", b"POST, OPTIONS")]
            else:
                status, payload, headers = 405, {"error": "method not allowed"}, [(b"allow", b"POST, OPTIONS")]
        except ApiError as exc:
            status, payload, headers = exc.status, exc.body(), exc.header_list()
        except Exception:  # a bug: logged with its traceback, nothing of it in the answer
            log.exception("%s %s failed", req.method, path)
            status, payload, headers = 500, {"error": "internal"}, []
        content = b"" if payload is None else json_bytes(payload)
        if payload is not None:
            headers += [_JSON, (b"content-length", str(len(content)).encode("ascii"))]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})
        svc.metrics.request(path, req.method, status)
