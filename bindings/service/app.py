"""The service's routes, security (API keys, CORS, body limits) and metrics over one Engine.

Public (the tracking snippet calls them from visitors' browsers, CORS allow-listed):
``POST /v1/visit``, ``POST /v1/heartbeat``. Private (``Authorization: Bearer KEY`` or
``X-API-Key: KEY``): ``POST /v1/calls``, ``GET /v1/calls``, ``GET /v1/pools``, ``GET /metrics``
(also opened by a scrape-only ``metrics_keys`` key). Open: ``GET /healthz`` (no process details),
``GET /openapi.json``.

Every bad request gets a 4xx JSON ``{"error": ..., "problems": [{"field", "message"}]}``;
a bug gets ``{"error": "internal"}`` with 500 and its traceback goes to the log only.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import csv
import gc
import hmac
import io
import json
import logging
import math
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from k50core.attribution import STATUSES, CallError, parse_call
from k50core.engine import Engine
from k50core.pools import Assignment

from ..events import Dispatcher, attribution_json
from ..telephony import (
    FORMATS,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    TWILIO_HEADER,
    NotFinal,
    PayloadError,
    SignatureError,
    Verifier,
    decode_body,
    decode_form,
    detect,
    rename,
    to_call,
    verify_twilio,
    zone,
)
from ..telephony.payloads import is_form
from ..telephony.signing import DEFAULT_WINDOW
from ..visitors import client_ip, networks
from .apidocs import render_html
from .cors import PublicCORS
from .dashboard import dashboard_routes
from .errors import ApiError, query_error, read_body
from .limits import Guard, Protection, RateLimiter, deployment_secret
from .metrics import Metrics
from .openapi import openapi_document
from .pages import page_routes
from .public import PublicEndpoints
from .redact import install as redact_logs
from .reports import report_routes
from .writer import StoreThread

log = logging.getLogger("k50core.service")

MAX_PAGE = 1000                # rows a GET /v1/calls page may ask for
DEFAULT_PAGE = 100
CSV_COLUMNS = ("call_id", "number", "caller", "started_at", "duration_seconds", "answered", "received_at", "status",
               "visitor_id", "session_id", "pool", "rule", "likelihood", "repeat_of", "source", "traffic_type",
               "utm_source", "utm_medium", "utm_campaign", "landing", "region", "device", "ga_client_id")

Clock = Callable[[], float]


# -- request parsing -----------------------------------------------------------------------
async def read_request_body(request: Request) -> bytes:
    """The raw body of a routed request (see errors.read_body)."""
    body = await read_body(request.receive, request.headers.get("content-length"))
    if body is None:
        raise ApiError(400, "the client left before its body arrived")
    return body


class Service:
    """The state behind the routes: the engine, its lock, keys, origins, clock and counters."""

    def __init__(self, engine: Engine, *, api_keys: Sequence[str], cors_origins: Sequence[str], now: Clock,
                 trusted_proxies: Sequence[str], secure_cookie: bool | None) -> None:
        self.engine = engine
        self.store = StoreThread(engine)  # the store on its thread; the engine's memory here, on the loop
        self.keys = [k.encode("utf-8") for k in api_keys if k]
        self.metrics_keys: list[bytes] = []  # keys that open GET /metrics only (a scraper's), see create_app
        self.origins = {o.rstrip("/") for o in cors_origins}
        self.now = now
        self.trusted = networks(trusted_proxies)
        self.secure_cookie = secure_cookie
        self.metrics = Metrics()
        self.limits: tuple[RateLimiter, RateLimiter] | None = None  # (per IP, per visitor), see create_app
        self.guard: Guard | None = None  # who may start a lease (limits.py), see create_app
        self._peers: dict[str | None, tuple[str | None]] = {}  # peer address -> client IP
        # pools in Redis: a new visitor's claim waits off the loop, with the others' (public.assign)
        self.assign_async: Callable[..., Awaitable[Assignment]] | None = None
        self.returning_async: Callable[..., Awaitable[Assignment | None]] | None = None
        if hasattr(engine.pools, "claim_soon"):
            from k50core.pool_redis.visits import assign_async, off_the_loop, returning_async
            self.assign_async, self.returning_async = assign_async, returning_async
            off_the_loop(engine)

    # -- security -------------------------------------------------------------------------
    async def commit(self) -> None:
        try:
            await self.store.commit()
        except Exception:  # logged by the writer; what was taken stays queued for the next write
            raise ApiError(503, "storage unavailable, try again", headers={"Retry-After": "1"}) from None

    def authorise(self, request: Request, extra: Sequence[bytes] = ()) -> None:
        auth = request.headers.get("authorization", "")
        key = auth[7:].strip() if auth[:7].lower() == "bearer " else request.headers.get("x-api-key", "")
        given = key.encode("utf-8", "surrogateescape")
        ok = False
        for k in list(self.keys) + list(extra):  # every key compared, in constant time each
            ok |= hmac.compare_digest(given, k)
        if not key or not ok:
            raise ApiError(401, "a valid API key is required (Authorization: Bearer KEY or X-API-Key)",
                           headers={"WWW-Authenticate": 'Bearer realm="k50core"'})

    def allowed(self, origin: str | None) -> bool:
        return origin is not None and origin != "" and ("*" in self.origins or origin.rstrip("/") in self.origins)

    def client_ip(self, peer: str | None, forwarded: Sequence[str]) -> str | None:
        if not self.trusted:  # no proxies to look behind: the peer, checked once per address
            known = self._peers.get(peer)
            if known is None:
                if len(self._peers) > 10_000:
                    self._peers.clear()
                known = self._peers[peer] = (client_ip(peer, (), self.trusted),)
            return known[0]
        return client_ip(peer, forwarded, self.trusted)

    def over_limit(self, visit: dict[str, Any], now: float) -> str | None:
        """Which rate limit (ip, visitor) this visit is over, if any."""
        if self.limits is None:
            return None
        by_ip, by_visitor = self.limits
        if not by_ip.allow(f"{visit.get('ip')}", now):
            return "ip"
        if not by_visitor.allow(f"{visit['visitor_id']}", now):
            return "visitor"
        return None

    def outcome(self, got: Assignment) -> str:
        """How a visit was answered, for /metrics: none, shared, dynamic, static or default."""
        if got.number is None:
            return "none"
        if got.shared:
            return "shared"
        if got.token is not None:
            return "dynamic"
        return "static" if self._pool_type(got.pool) == "static" else "default"

    def _pool_type(self, pool: str | None) -> str | None:
        p = self.engine.config.pools.get(pool) if pool else None
        return p.type if p is not None else None

    dispatcher: Dispatcher | None = None  # outgoing call events (config events:), see create_app

    # -- POST /v1/calls: a telephony webhook ----------------------------------------------------
    webhook: Verifier | None = None       # X-K50-Signature check (create_app's webhook_secrets)
    twilio_token: str | None = None       # X-Twilio-Signature check (create_app's twilio_auth_token)
    public_url: str | None = None         # the URL Twilio calls, when a proxy rewrites it
    cdr_timezone: Any = "UTC"                # the zone of Asterisk CDR times

    def _twilio_url(self, request: Request) -> str:
        if not self.public_url:
            return str(request.url)
        query = request.url.query
        return self.public_url.rstrip("/") + request.url.path + ("?" + query if query else "")

    def authorise_call(self, request: Request, body: bytes) -> None:
        """An API key, or (when configured) a valid X-K50-Signature or X-Twilio-Signature."""
        h = request.headers
        has_key = bool(h.get("x-api-key")) or h.get("authorization", "")[:7].lower() == "bearer "
        signed = (self.webhook is not None and bool(h.get(SIGNATURE_HEADER) or h.get(TIMESTAMP_HEADER))) or \
            (self.twilio_token is not None and bool(h.get(TWILIO_HEADER)))
        if has_key or not signed and self.webhook is None and self.twilio_token is None:
            try:
                self.authorise(request)
                return
            except ApiError:
                if not signed:  # a wrong key and no signature to fall back on
                    raise
        try:
            if self.webhook is not None and (h.get(SIGNATURE_HEADER) or h.get(TIMESTAMP_HEADER)):
                self.webhook.verify(h.get(TIMESTAMP_HEADER), h.get(SIGNATURE_HEADER), body)
            elif self.twilio_token is not None and h.get(TWILIO_HEADER):
                if not is_form(h.get("content-type")):  # it signs the URL and form fields: any other body
                    raise SignatureError(                # would pass with one signature of the bare URL
                        "not a form", f"{TWILIO_HEADER} covers form bodies (application/x-www-form-urlencoded) "
                        f"only: sign a JSON body with {SIGNATURE_HEADER} and {TIMESTAMP_HEADER}")
                verify_twilio(self.twilio_token, self._twilio_url(request), decode_form(body), h.get(TWILIO_HEADER))
            else:
                ways = ["an API key"] + ([f"{SIGNATURE_HEADER} with {TIMESTAMP_HEADER}"] if self.webhook else []) \
                    + ([TWILIO_HEADER] if self.twilio_token else [])
                raise SignatureError("missing", "missing credentials: expected " + " or ".join(ways))
        except PayloadError:
            raise SignatureError("bad signature", f"{TWILIO_HEADER} does not match the request") from None
        except SignatureError as exc:
            raise ApiError(401, exc.message, [("signature", exc.reason)],
                           headers={"WWW-Authenticate": 'Bearer realm="k50core"'}) from None

    async def post_call(self, request: Request) -> Response:
        if self.webhook is None and self.twilio_token is None:
            self.authorise(request)  # keys only: refused before the body is read
        body = await read_request_body(request)
        self.authorise_call(request, body)
        fmt = request.query_params.get("format")
        if fmt is not None and fmt not in FORMATS:
            raise query_error([("format", f"expected one of {', '.join(FORMATS)}")])
        try:
            data = decode_body(body, request.headers.get("content-type"))
        except PayloadError as exc:
            raise ApiError(400, exc.error, exc.problems, exc.locs) from None
        fmt = fmt or detect(data)
        try:  # the format's pydantic model (telephony/models.py), then what depends on several fields
            call = to_call(data, fmt, cdr_timezone=self.cdr_timezone)
        except NotFinal as exc:  # Twilio's ringing / in-progress events: only the final one is recorded
            return JSONResponse({"status": "ignored", "reason": f"call not finished ({exc.status})"},
                                status_code=202)
        except PayloadError as exc:
            if fmt == "json":  # the engine's faults too, for the fields the model passed: all at once
                exc = PayloadError(exc.problems + self._call_problems(data, exc.problems), exc.error,
                                   exc.locs)
            raise ApiError(422, exc.error, exc.problems, exc.locs) from None
        try:  # what needs the config and the clock: phone numbers, the time's range
            parsed, live = self.engine.prepare_call(call, float(self.now()))
        except CallError as exc:
            named = PayloadError(rename(exc.problems, fmt, data))
            raise ApiError(422, "invalid call", named.problems, named.locs) from None
        await self.commit()  # the leases it may belong to are in the store
        got = await self.store.run(self._attribute, parsed, live, float(self.now()))
        self.metrics.called(got.status)
        return JSONResponse(attribution_json(got))

    def _call_problems(self, data: Any, found: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
        """What the engine finds wrong with a call, in fields not among ``found``."""
        try:
            parse_call(data, self.engine.config.region, float(self.now()))
        except CallError as exc:
            named = {f for f, _ in found}
            return [(f, m) for f, m in exc.problems if f not in named and f != "call"]
        return []

    def _attribute(self, parsed: dict[str, Any], live: list[Any], now: float) -> Any:
        """On the store's thread: the attribution, and its outgoing events queued beside it."""
        got = self.engine.attribute_prepared(parsed, live)
        if self.dispatcher is not None:
            self.dispatcher.enqueue(got, now, held=True)
        return got

    async def get_calls(self, request: Request) -> Response:
        q = request.query_params
        problems: list[tuple[str, str]] = []
        since = _query_number(q.get("since"), "since", 0.0, problems)
        until = _query_number(q.get("until"), "until", float("inf"), problems)
        status = q.get("status")
        if status is not None and status not in STATUSES:
            problems.append(("status", f"expected one of {', '.join(STATUSES)}"))
        limit = DEFAULT_PAGE
        if q.get("limit") is not None:
            try:
                limit = int(q["limit"])
                if not 1 <= limit <= MAX_PAGE:
                    raise ValueError
            except ValueError:
                problems.append(("limit", f"expected a whole number from 1 to {MAX_PAGE}"))
        after = None
        if q.get("cursor"):
            after = decode_cursor(q["cursor"])
            if after is None:
                problems.append(("cursor", "not a cursor this service gave"))
        fmt = q.get("format")
        if fmt is None:
            fmt = "csv" if "text/csv" in request.headers.get("accept", "") else "json"
        if fmt not in ("json", "csv"):
            problems.append(("format", "expected json or csv"))
        if problems:
            raise query_error(problems)
        rows = await self.store.run(self.engine.store.calls_page, since, until, status, after, limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        cursor = encode_cursor(rows[-1]) if more and rows else None
        if fmt == "csv":
            headers = {"X-Next-Cursor": cursor} if cursor else {}
            return Response(calls_csv(rows), media_type="text/csv; charset=utf-8", headers=headers)
        return JSONResponse({"calls": rows, "next_cursor": cursor})

    async def stats(self) -> dict[str, Any]:
        """The engine's stats; with the pools in Redis read on the store's thread (a round trip),
        with this host's claim counts."""
        if self.assign_async is None:
            return self.engine.stats(float(self.now()))
        stats = await self.store.run(self.engine.stats, float(self.now()))
        pools: Any = self.engine.pools  # RedisPools
        stats["redis"].update(pools.claim_counts())
        return stats

    async def pools(self, request: Request) -> Response:
        stats = await self.stats()
        pools = {}
        for name, s in stats["pools"].items():
            row = dict(s)
            row["type"] = self._pool_type(name)
            row["utilisation"] = round(s["leased"] / s["numbers"], 4) if s["numbers"] else 0.0
            pools[name] = row
        for name, p in self.engine.config.pools.items():  # static and offline pools hold no leases
            if name not in pools:
                pools[name] = {"type": p.type, "numbers": len(p.numbers)}
        return JSONResponse({"pools": pools, "excluded": stats.get("excluded", 0),
                             "unmatched": stats.get("unmatched", 0), "static": stats.get("static", 0)})

    async def healthz(self, request: Request) -> Response:
        # open to anyone: liveness only, nothing about the process (its id went to the private /metrics)
        # pools in Redis: "degraded" while it does not answer (visitors then get default numbers)
        health = getattr(self.engine.pools, "health", None)
        status = "ok" if health is None else await self.store.run(health)
        return JSONResponse({"status": status, "implementation": self.engine.implementation})

    async def metrics_text(self, request: Request) -> Response:
        self.authorise(request, self.metrics_keys)
        stats = await self.stats()
        if self.dispatcher is not None:
            stats["events"] = await self.store.run(self.dispatcher.stats)
        body, content_type = self.metrics.render(stats, request.headers.get("accept"))
        return Response(body, headers={"Content-Type": content_type})

    async def openapi(self, request: Request) -> Response:
        return JSONResponse(openapi_document())

    async def api_docs(self, request: Request) -> Response:
        return HTMLResponse(render_html(openapi_document()))


def _query_number(text: str | None, name: str, default: float, problems: list[tuple[str, str]]) -> float:
    if text is None or text == "":
        return default
    try:
        value = float(text)
        if not math.isfinite(value) or value < 0:
            raise ValueError
        return value
    except ValueError:
        problems.append((name, "expected unix time in seconds"))
        return default


def encode_cursor(row: dict[str, Any]) -> str:
    raw = json.dumps([row["started_at"], row["call_id"]], separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(text: str) -> tuple[float, str] | None:
    if len(text) > 512:
        return None
    try:
        value = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (ValueError, binascii.Error):
        return None
    if (isinstance(value, list) and len(value) == 2 and isinstance(value[0], (int, float))
            and not isinstance(value[0], bool) and math.isfinite(value[0]) and isinstance(value[1], str)):
        return float(value[0]), value[1]
    return None


def calls_csv(rows: Sequence[dict[str, Any]]) -> str:
    """The export as CSV (RFC 4180, CRLF), one row a call; cells escaped against formulas (_csv_cell)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(CSV_COLUMNS)
    for r in rows:
        attrs = r.get("attributes") or {}
        utm = attrs.get("utm") or {}
        flat = dict(r, **{k: attrs.get(k) for k in ("source", "traffic_type", "landing", "region", "device",
                                                     "ga_client_id")},
                    utm_source=utm.get("utm_source"), utm_medium=utm.get("utm_medium"),
                    utm_campaign=utm.get("utm_campaign"))
        w.writerow(["" if flat.get(c) is None else _csv_cell(flat[c]) for c in CSV_COLUMNS])
    return buf.getvalue()


# A spreadsheet takes a cell that starts with one of these as a formula (OWASP, CSV injection): utm
# values, the _ga cookie and visitor ids come from anyone's browser through POST /v1/visit.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value: Any) -> str:
    """A value as an export cell; one that starts with = + - @ tab or CR gets a leading single quote,
    as OWASP advises, whatever column it is in: an E.164 number reads '+74951234567."""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    return "'" + text if text[:1] in FORMULA_START else text


# -- the app ---------------------------------------------------------------------------------
Handler = Callable[[Request], Awaitable[Response]]


class ServiceApp(Starlette):
    """Starlette, with the public endpoints answered before its middleware and routing (they
    take every page view; see public.py)."""

    public: PublicEndpoints
    public_cors: PublicCORS  # the public endpoints behind Starlette's CORS middleware

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self.public.route(scope) is not None:
            await self.public_cors(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


def from_environment() -> Starlette:
    """The app of one ``k50core serve --workers N`` worker: its settings come from K50CORE_SERVE
    (JSON, written by the CLI). Every worker opens the same store and, beside a SQLite file, the
    same pool segment, so they share one set of leases."""
    settings = json.loads(os.environ["K50CORE_SERVE"])
    return create_app(config=settings.pop("config"), store=settings.pop("store"), **settings)


def create_app(engine: Engine | None = None, *, config: Any = None, store: Any = None,
               api_keys: Sequence[str] = (), cors_origins: Sequence[str] = (), now: Clock | None = None,
               trusted_proxies: Sequence[str] = (), secure_cookie: bool | None = None,
               metrics_keys: Sequence[str] = (),
               webhook_secrets: Sequence[str] = (), webhook_window: float = DEFAULT_WINDOW,
               twilio_auth_token: str | None = None, public_url: str | None = None,
               cdr_timezone: str = "UTC", demo: bool = False,
               rate_limits: tuple[float, float] | None = (120.0, 30.0),
               protection: Protection | None = Protection(),
               state_path: str | None = None, freeze_gc: bool = False,
               state_url: str | None = None) -> Starlette:
    """The service over ``engine``, or over an engine built from ``config`` (a dict or a file) and
    ``store`` (a SQLite path, ``postgresql://…`` or a Store), closed when the app shuts down.

    ``api_keys`` open the private endpoints (none given: they always answer 401), ``GET /metrics``
    among them; ``metrics_keys`` open ``GET /metrics`` only (give a Prometheus scraper one of these);
    ``cors_origins`` may call the public ones from browsers ("*": any origin);
    ``now`` is the clock (seconds) for tests; X-Forwarded-For counts only from
    ``trusted_proxies`` (addresses or CIDR networks); ``secure_cookie`` forces the
    visitor cookie's Secure flag (default: when the request came over https);
    ``GET /snippet.js`` serves the tracking snippet, and ``demo`` adds the demo page at ``/``.

    ``POST /v1/calls`` takes a generic JSON call, a Twilio status callback or an Asterisk/FreePBX
    CDR (``?format=json|twilio|asterisk``, else detected). Besides an API key it accepts, when
    ``webhook_secrets`` are given, a request signed with one of them (X-K50-Timestamp within
    ``webhook_window`` seconds, X-K50-Signature: sha256=HMAC(secret, timestamp + "." + body)), and
    when ``twilio_auth_token`` is given, one with a valid X-Twilio-Signature (computed over
    ``public_url`` + path + query when a proxy changes the URL). CDR times are in ``cdr_timezone``.
    ``protection`` (limits.Protection) guards new leases: browsers only, a claim ticket before the
    number, limits per address and network and a network's share of a pool; ``None`` turns it off.
    ``freeze_gc`` (what ``k50core serve`` does) moves what start-up left alive out of the cyclic
    collector's reach (``gc.freeze``), so full collections do not rescan it mid-request.
    """
    tz = zone(cdr_timezone)  # an unknown zone fails here, not on the first call
    redact_logs()  # the amoCRM webhook's secret is in its URL: never in a log line
    owned = engine is None
    if engine is None:
        if config is None:
            raise ValueError("create_app needs an engine or a config")
        engine = Engine.from_config(config, store=store, state_path=state_path, state_url=state_url)
    svc = Service(engine, api_keys=api_keys, cors_origins=cors_origins, now=now or time.time,
                  trusted_proxies=trusted_proxies, secure_cookie=secure_cookie)
    svc.metrics_keys = [k.encode("utf-8") for k in metrics_keys if k]
    if rate_limits is not None:  # visits a minute per IP, per visitor id; bursts of half that
        per_ip, per_visitor = rate_limits
        svc.limits = (RateLimiter(per_ip, max(1.0, per_ip / 2)), RateLimiter(per_visitor, max(1.0, per_visitor / 2)))
    if protection is not None:
        svc.guard = Guard(protection, deployment_secret(engine, protection.secret))
    secrets_given = [w for w in webhook_secrets if w]
    svc.webhook = Verifier(secrets_given, window=webhook_window, now=svc.now) if secrets_given else None
    svc.twilio_token = twilio_auth_token or None
    svc.public_url = public_url
    svc.cdr_timezone = tz
    events = engine.config.events
    svc.dispatcher = Dispatcher(engine.store, events, now=svc.now, lock=svc.store.lock) \
        if events.configured else None

    def route(path: str, fn: Handler, methods: list[str], private: bool = False) -> Route:
        async def endpoint(request: Request) -> Response:
            try:
                if private:
                    svc.authorise(request)
                response = await fn(request)
            except ApiError as exc:
                response = JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)
            except Exception:  # a bug: logged with its traceback, nothing of it in the answer
                log.exception("%s %s failed", request.method, path)
                response = JSONResponse({"error": "internal"}, status_code=500)
            svc.metrics.request(path, request.method, response.status_code)
            return response
        return Route(path, endpoint, methods=methods)

    routes = [
        route("/v1/calls", svc.post_call, ["POST"]),  # authorised in post_call: key or signature
        route("/v1/calls", svc.get_calls, ["GET"], private=True),
        route("/v1/pools", svc.pools, ["GET"], private=True),
        route("/healthz", svc.healthz, ["GET"]),
        route("/metrics", svc.metrics_text, ["GET"]),  # authorised in metrics_text: an API or metrics key
        route("/openapi.json", svc.openapi, ["GET"]),
        route("/docs", svc.api_docs, ["GET"]),
    ] + page_routes(engine, demo=demo)
    secret = deployment_secret(engine, protection.secret if protection else None)
    board, session_ok = dashboard_routes(svc, route, secret)
    routes += report_routes(svc, route, session_ok) + board  # reports, deals, CRM webhooks, the dashboard

    async def http_error(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 500)
        text = {404: "not found", 405: "method not allowed"}.get(status, "bad request")
        return JSONResponse({"error": text}, status_code=status, headers=getattr(exc, "headers", None))

    async def internal(request: Request, exc: Exception) -> Response:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return JSONResponse({"error": "internal"}, status_code=500)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> Any:
        engine.warm_up()
        if freeze_gc:  # what start-up left alive stays: full collections need not rescan it
            gc.collect()
            gc.freeze()
        log_writer = asyncio.ensure_future(svc.store.write_log_every(1.0))
        stop = asyncio.Event()
        sender = asyncio.ensure_future(svc.dispatcher.run(stop)) if svc.dispatcher is not None else None
        try:
            yield
        finally:
            stop.set()
            if sender is not None:
                await sender
            log_writer.cancel()
            await svc.store.close(close_engine=owned)

    app = ServiceApp(routes=routes, exception_handlers={HTTPException: http_error, Exception: internal},
                     lifespan=lifespan)
    app.public = PublicEndpoints(svc)
    app.public_cors = PublicCORS(app.public, svc.origins, svc.metrics.request)
    app.state.service = svc
    app.state.engine = engine
    return app
