"""The request bodies the service takes, as pydantic types, and their faults as 4xx answers.

The public bodies (a page view, a heartbeat) are TypedDicts validated straight from the bytes
(``TypeAdapter.validate_json``: the JSON is parsed and checked in one pass, in Rust): that
measured faster than ``json`` plus checks by hand, and hands the engine a plain dict. Every
fault is a problem with its ``field`` and pydantic's ``loc`` (``["body", "cookies", ...]``).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, Field, StringConstraints, TypeAdapter, ValidationError
from typing_extensions import Required, TypedDict

from .errors import ApiError, body_json, kind

T = TypeVar("T")


def _printable(value: str) -> str:
    if not value.isprintable():
        raise ValueError("expected 1-256 printable characters")
    return value


Text32 = Annotated[str, StringConstraints(max_length=32)]
Text64 = Annotated[str, StringConstraints(max_length=64)]
Text256 = Annotated[str, StringConstraints(max_length=256)]
Text4K = Annotated[str, StringConstraints(max_length=4096)]
Text8K = Annotated[str, StringConstraints(max_length=8192)]
Text16K = Annotated[str, StringConstraints(max_length=16384)]
VisitorId = Annotated[str, StringConstraints(min_length=1, max_length=256), AfterValidator(_printable)]
Cookies = Text8K | Annotated[dict[Text256, Text4K], Field(max_length=100)]  # a Cookie header, or pairs


class VisitBody(TypedDict, total=False):
    """POST /v1/visit. A null is the same as a field left out."""
    url: Required[Text16K]
    visitor_id: VisitorId | None
    session_id: Text64 | None
    referrer: Text16K | None
    user_agent: Text4K | None
    token: Text64 | None
    ga_client_id: Text64 | None
    ga_session_id: Text32 | None
    cookies: Cookies | None
    claim: Text64 | None


class HeartbeatBody(TypedDict):
    """POST /v1/heartbeat."""
    token: Annotated[str, StringConstraints(min_length=1, max_length=64)]


class DealsBody(TypedDict):
    """POST /v1/deals as an object (a bare array of deals is taken too). Each deal is checked by
    the import, which answers row by row."""
    deals: list[dict[str, Any]]


VISIT = TypeAdapter(VisitBody)
HEARTBEAT = TypeAdapter(HeartbeatBody)
DEALS = TypeAdapter(DealsBody)

# a field whose pydantic faults (one per alternative of a union) read as one message
_ONE_MESSAGE = {"cookies": "expected an object of at most 100 name: string value pairs, or a Cookie header "
                           "string of at most 8192 characters",
                "token": "expected the token /v1/visit gave",
                "claim": "expected the claim ticket /v1/visit gave"}
_REQUIRED = {"url": "required: the page's URL", "token": "expected the token /v1/visit gave",
             "deals": "expected an array of deals"}


def decode(adapter: TypeAdapter[T], body: bytes, error: str) -> T:
    """``body`` validated by ``adapter``: 400 when it is empty or not JSON (NaN and Infinity
    included), 422 ``error`` with every fault's field, message and loc."""
    if not body:
        raise ApiError(400, "empty body: expected a JSON object")
    try:
        if b"NaN" in body or b"Infinity" in body:  # JSON has no such numbers; pydantic's parser takes them
            return check(adapter, body_json(body), error)
        return adapter.validate_json(body)
    except ValidationError as exc:
        faults = exc.errors(include_url=False)
        if any(f["type"] == "json_invalid" for f in faults):
            raise ApiError(400, "body is not valid JSON") from None
        raise ApiError(422, error, *_problems(faults)) from None


def check(adapter: TypeAdapter[T], value: Any, error: str) -> T:
    """A value already decoded, validated by ``adapter`` (422 ``error`` as ``decode``)."""
    try:
        return adapter.validate_python(value)
    except ValidationError as exc:
        raise ApiError(422, error, *_problems(exc.errors(include_url=False))) from None


def _problems(faults: list[Any]) -> tuple[list[tuple[str, str]], list[list[str | int]]]:
    problems: list[tuple[str, str]] = []
    locs: list[list[str | int]] = []
    seen = set()
    for f in faults:
        loc = f["loc"]
        field = str(loc[0]) if loc else "body"
        if field in _ONE_MESSAGE:
            if field in seen:
                continue
            seen.add(field)
            message = _ONE_MESSAGE[field] if f["type"] != "missing" else _REQUIRED.get(field, "required")
        else:
            message = _message(f, field)
        problems.append((field, message))
        locs.append(["body", *loc])
    return problems, locs


def _message(fault: Any, field: str) -> str:
    kind_, ctx = fault["type"], fault.get("ctx") or {}
    if kind_ == "missing":
        return _REQUIRED.get(field, "required")
    if kind_ in ("dict_type", "model_type", "typed_dict_type"):
        return f"expected a JSON object, got {kind(fault['input'])}"
    if kind_ == "string_type":
        return f"expected a string, got {kind(fault['input'])}"
    if kind_ == "string_too_long":
        return f"longer than {ctx['max_length']} characters"
    if kind_ == "value_error":
        return str(ctx["error"])
    return str(fault["msg"])


def present(fields: Mapping[str, object]) -> dict[str, Any]:
    """The fields given, a null left out."""
    return {k: v for k, v in fields.items() if v is not None}
