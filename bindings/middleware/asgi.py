"""ASGI middleware: ``app = K50ASGIMiddleware(app, engine)`` (Starlette, FastAPI, Django ASGI, …).

Each page request gets an assignment before the app runs: ``scope["state"]["k50core_assignment"]``
(Starlette's ``request.state.k50core_assignment``) and ``scope["k50core.assignment"]``, None when
the visit was not tracked or the engine failed. A ``text/html`` response with a Content-Length
and no Content-Encoding is buffered and its site numbers swapped, Content-Length fixed; any other
response (other types, compressed, streamed without a length) passes through untouched. The
engine runs in a worker thread, so the event loop is never blocked by it; with the pools in Redis
its memory work runs on the loop and only a new visitor's claim leaves it, going to Redis with the
claims of the other requests (``k50core.pool_redis.visits``).
"""
from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from . import ENVIRON_KEY, STATE_KEY, Tracker, log, parse_cookies

__all__ = ["K50ASGIMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    for k, v in headers:
        if k.lower() == name:
            return v.decode("latin-1")
    return None


class K50ASGIMiddleware:
    """Wraps an ASGI app; keyword options are ``Tracker``'s."""

    def __init__(self, app: Callable[..., Awaitable[None]], engine: Any = None, *,
                 tracker: Tracker | None = None, **options: Any) -> None:
        if tracker is None and engine is None:
            raise ValueError("K50ASGIMiddleware needs an engine (or a tracker)")
        self.app = app
        self.tracker = tracker or Tracker(engine, **options)
        if self.tracker.redis_claims:  # returning visitors' renewals written off the loop too
            from k50core.pool_redis.visits import off_the_loop
            off_the_loop(self.tracker.engine)

    async def begin(self, scope: Scope) -> bytes | None:
        """Assign a number into the scope; the Set-Cookie header value to add, if any."""
        t = self.tracker
        scope[ENVIRON_KEY] = None
        state = scope.setdefault("state", {})
        state[STATE_KEY] = None
        try:
            headers = list(scope.get("headers") or [])
            if not t.should_track(scope.get("method", "GET"), scope.get("path", ""),
                                  _header(headers, b"accept") or ""):
                return None
            cookies = parse_cookies("; ".join(v.decode("latin-1") for k, v in headers if k.lower() == b"cookie"))
            vid, new = t.visitor(cookies)
            client = scope.get("client")
            forwarded = [v.decode("latin-1") for k, v in headers if k.lower() == b"x-forwarded-for"]
            visit = t.visit(url=_url(scope, headers), referrer=_header(headers, b"referer"),
                            user_agent=_header(headers, b"user-agent"),
                            ip=t.client_ip(client[0] if client else None, forwarded), cookies=cookies, visitor_id=vid)
        except Exception:
            log.exception("k50core: could not read the request")
            return None
        if t.redis_claims:  # memory work on the loop, the claim off it: no thread per request
            assignment = await t.assign_on_loop(visit)
        else:
            loop = asyncio.get_running_loop()
            assignment = await loop.run_in_executor(None, functools.partial(t.assign, visit))
        scope[ENVIRON_KEY] = assignment
        scope["k50core.visitor_id"] = vid
        state[STATE_KEY] = assignment
        if not new:
            return None
        return t.set_cookie_header(vid, scope.get("scheme") in ("https", "wss")).encode("latin-1")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        cookie = await self.begin(scope)
        assignment = scope.get(ENVIRON_KEY)
        t = self.tracker
        start: dict[str, Any] = {}
        body: list[bytes] = []
        mode: list[str] = []  # "pass" or "buffer", decided at http.response.start

        async def wrapped(message: Message) -> None:
            kind = message.get("type")
            if kind == "http.response.start":
                headers = list(message.get("headers") or [])
                if cookie is not None:
                    headers.append((b"set-cookie", cookie))
                message = dict(message, headers=headers)
                length = _header(headers, b"content-length")
                if length is not None and length.strip().isdigit() and int(length) <= t.max_body and t.wants_body(
                        _header(headers, b"content-type"), _header(headers, b"content-encoding"), assignment):
                    start.update(message)
                    mode.append("buffer")
                    return
                mode.append("pass")
                await send(message)
                return
            if kind == "http.response.body" and mode and mode[0] == "buffer":
                body.append(message.get("body", b""))
                if message.get("more_body", False):
                    return
                await self._flush(start, b"".join(body), assignment, send)
                return
            await send(message)

        await self.app(scope, receive, wrapped)

    async def _flush(self, start: dict[str, Any], body: bytes, assignment: Any, send: Send) -> None:
        headers = start["headers"]
        new = self.tracker.substitute_body(body, _header(headers, b"content-type"), assignment)
        if new is not body:
            headers = [(k, v) for k, v in headers if k.lower() != b"content-length"]
            headers.append((b"content-length", str(len(new)).encode("ascii")))
        await send(dict(start, headers=headers))
        await send({"type": "http.response.body", "body": new, "more_body": False})


def _url(scope: Scope, headers: list[tuple[bytes, bytes]]) -> str:
    scheme = scope.get("scheme", "http")
    host = _header(headers, b"host")
    if not host:
        server = scope.get("server")
        if server:
            host, port = server[0], server[1]
            if port and not ((scheme == "http" and port == 80) or (scheme == "https" and port == 443)):
                host = f"{host}:{port}"
        else:
            host = "localhost"
    path = (scope.get("root_path", "") or "") + (scope.get("path", "/") or "/")
    if scope.get("raw_path"):
        path = scope["raw_path"].decode("latin-1")
    query = scope.get("query_string", b"")
    return f"{scheme}://{host}{path}" + (f"?{query.decode('latin-1')}" if query else "")
