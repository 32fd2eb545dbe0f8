"""The service's error answers and body decoding, shared by the public (raw ASGI) and private routes.

Every bad request gets a 4xx JSON ``{"error": ..., "problems": [{"field", "message"}]}``.
"""
from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

MAX_BODY = 16 * 1024           # bytes of a request body; more is 413


class ApiError(Exception):
    """A 4xx answer: ``error`` is a short message, ``problems`` (field, message) pairs; ``locs``,
    when given, each problem's place in the request as pydantic gives it (``["body", "cookies"]``)."""

    def __init__(self, status: int, error: str, problems: Sequence[tuple[str, str]] = (),
                 locs: Sequence[Sequence[str | int]] = (), headers: dict[str, str] | None = None) -> None:
        super().__init__(error)
        self.status, self.error, self.problems, self.headers = status, error, list(problems), headers
        self.locs = [list(loc) for loc in locs]

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": self.error}
        if self.problems:
            out["problems"] = [{"field": f, "message": m} for f, m in self.problems]
            for problem, loc in zip(out["problems"], self.locs):
                problem["loc"] = loc
        return out

    def header_list(self) -> list[tuple[bytes, bytes]]:
        return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (self.headers or {}).items()]


def query_error(problems: Sequence[tuple[str, str]]) -> ApiError:
    """A 400 for bad query parameters: each problem's ``loc`` is ``["query", name]``."""
    return ApiError(400, "invalid query", problems, locs=[("query", field) for field, _ in problems])


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# Made once: json.dumps / json.loads with options build a new encoder / decoder on every call.
_ENCODE = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode
_DECODE = json.JSONDecoder(parse_constant=_no_constant).decode


def json_bytes(value: Any) -> bytes:
    """JSON as Starlette's JSONResponse writes it (compact, UTF-8)."""
    return _ENCODE(value).encode("utf-8")


def body_json(body: bytes) -> Any:
    """A request body as JSON (UTF-8); 400 when it is empty or not JSON (NaN and Infinity included)."""
    if not body:
        raise ApiError(400, "empty body: expected a JSON object")
    try:
        return _DECODE(body.decode("utf-8"))
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise ApiError(400, "body is not valid JSON") from None


async def read_body(receive: Callable[[], Awaitable[MutableMapping[str, Any]]],
                    declared: str | None) -> bytes | None:
    """The raw body, at most MAX_BODY bytes (413 beyond, declared or streamed); None if the client left."""
    if declared is not None:
        try:
            too_big = int(declared) > MAX_BODY
        except ValueError:
            raise ApiError(400, "bad Content-Length") from None
        if too_big:
            raise ApiError(413, f"body larger than {MAX_BODY} bytes")
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        body += message.get("body", b"")
        if len(body) > MAX_BODY:
            raise ApiError(413, f"body larger than {MAX_BODY} bytes")
        if not message.get("more_body", False):
            return body
