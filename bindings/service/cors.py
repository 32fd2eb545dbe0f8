"""CORS for the public endpoints, with Starlette's CORSMiddleware: which origins may call them from
browsers (``cors_origins``; "*" any), with credentials (the visitor cookie), POST with a JSON body.

The middleware writes the CORS headers and answers preflights; a refused preflight is answered as the
service refuses a request (403 JSON ``origin not allowed``, 405 for a method other than POST), an
accepted one with 204. The refusal of a cross-site POST itself (403 for an Origin not allowed, 415 for
a body a page may send anywhere) is the handler's (public.cross_site): that is flood protection, not CORS.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response

from .errors import json_bytes

if TYPE_CHECKING:
    from .public import PublicEndpoints

ORIGINS_KEPT = 1024  # distinct Origin values whose CORS headers are kept
Count = Callable[[str, str, int], None]  # route, method, status: the request metric


class PublicCORS(CORSMiddleware):
    """Starlette's CORS over the public endpoints, its preflight answers in the service's terms."""

    def __init__(self, app: PublicEndpoints, origins: Iterable[str], count: Count) -> None:
        super().__init__(app, allow_origins=[o.rstrip("/") for o in origins], allow_methods=["POST", "OPTIONS"],
                         allow_headers=["Content-Type"], allow_credentials=True, max_age=600)
        self.count = count
        self.public = app
        self._added: dict[bytes | None, list[tuple[bytes, bytes]]] = {}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        # CORSMiddleware.__call__, on the visitor path: the request's headers are looked at once, raw; the
        # headers an answer gets are what CORSMiddleware.send adds for the request's Origin (see added)
        origin, preflight = None, False
        for name, value in scope["headers"]:
            if name == b"origin":
                origin = value
            elif name == b"access-control-request-method":
                preflight = True
        if origin is not None and preflight and scope["method"] == "OPTIONS":
            response = self.preflight_response(request_headers=Headers(scope=scope))
            await response(scope, receive, send)
            found = self.public.route(scope)
            self.count(found[0] if found else scope["path"], "OPTIONS", response.status_code)
            return
        extra = self._added.get(origin)
        if extra is None:
            extra = await self.added(origin)

        async def send_with_cors(message: Any) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        await self.app(scope, receive, send_with_cors)

    async def added(self, origin: bytes | None) -> list[tuple[bytes, bytes]]:
        """The headers CORSMiddleware.send adds to an answer for a request from ``origin`` (they depend on
        nothing else: the public endpoints set no Vary of their own), kept for the next request from it."""
        sent: list[Any] = []

        async def keep(message: Any) -> None:
            sent.append(message)

        request = Headers(raw=[] if origin is None else [(b"origin", origin)])
        await self.send({"type": "http.response.start", "status": 200, "headers": []}, keep, request)
        if len(self._added) >= ORIGINS_KEPT:  # origins are the client's to choose: a bounded memory
            self._added.clear()
        extra = self._added[origin] = list(sent[0]["headers"])
        return extra

    def preflight_response(self, request_headers: Headers) -> Response:
        answer = super().preflight_response(request_headers)
        headers = {k: v for k, v in answer.headers.items() if k not in ("content-length", "content-type")}
        if answer.status_code < 400:
            return Response(status_code=204, headers=headers)
        refused = bytes(answer.body).decode("latin-1").removeprefix("Disallowed CORS ").split(", ")
        if "origin" in refused:
            status, error = 403, "origin not allowed"
        elif "method" in refused:
            status, error = 405, f"method {request_headers['access-control-request-method'][:16]} not allowed"
        else:  # request headers or private network access this service does not take
            status, error = 403, f"{' and '.join(refused)} not allowed"
        return Response(json_bytes({"error": error}), status_code=status, headers=headers,
                        media_type="application/json")
