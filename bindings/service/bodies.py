"""The request bodies the service takes, as pydantic types, and their faults as 4xx answers.

The public bodies (a page view, a heartbeat) are TypedDicts validated straight from the bytes
(``TypeAdapter.validate_json``: the JSON is parsed and checked in one pass, in Rust): that
measured faster than ``json`` plus checks by hand, and hands the engine a plain dict. Every
fault is a problem with its ``field`` and pydantic's ``loc`` (``["body", "cookies", ...]``).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, Field, StringConstraints, TypeAdapter, ValidationError, WithJsonSchema
from typing_extensions import Required, TypedDict

from k50core.intent.capture import TOKEN_MAX

from ..validation import problems_of
from .errors import ApiError, body_json

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


def _doc(text: str) -> Any:
    return Field(description=text)


class Visit(TypedDict, total=False):
    """POST /v1/visit. A null is the same as a field left out."""
    url: Required[Annotated[Text16K, _doc("the page's URL with its query")]]
    visitor_id: Annotated[VisitorId | None, _doc("default: the k50_vid cookie, or a new random id")]
    session_id: Text64 | None
    referrer: Text16K | None
    user_agent: Annotated[Text4K | None, _doc("default: the request's User-Agent header")]
    token: Annotated[Text64 | None, _doc("the token an earlier answer gave (keeps the number)")]
    ga_client_id: Annotated[Text64 | None, _doc("GA4 client id, <random>.<timestamp>")]
    ga_session_id: Annotated[Text32 | None, _doc("GA4 session id (the _ga_<container> cookie's)")]
    cookies: Annotated[Cookies | None, _doc("name: value pairs, or a Cookie header")]
    claim: Annotated[Text64 | None, _doc("the claim ticket an earlier answer gave a new visitor: the same visit "
                                         "sent back with it takes the number (a bad or expired one gets a fresh "
                                         "ticket)")]


class Heartbeat(TypedDict):
    """POST /v1/heartbeat."""
    token: Annotated[str, StringConstraints(min_length=1, max_length=64), _doc("the token /v1/visit gave")]


class Intent(TypedDict, total=False):
    """POST /v1/intent. Nothing in it is ever an error (see intents.py): what fails here is counted."""
    token: Required[Annotated[str, StringConstraints(min_length=1, max_length=TOKEN_MAX),
                              _doc("the token /v1/visit gave")]]
    kind: Required[Annotated[Literal["click", "copy"], _doc("click: a tap or click on the number or its tel: "
                                                            "link; copy: its text copied")]]
    visitor_id: Annotated[Any, WithJsonSchema({
        "type": "string", "description": "who (on a shared number every visitor has the same token); "
                                         "default: the k50_vid cookie, else the holder; ignored when it is "
                                         "no visitor id"})]


class Deals(TypedDict):
    """POST /v1/deals as an object (a bare array of deals is taken too). Each deal is checked by
    the import, which answers row by row."""
    deals: list[dict[str, Any]]


VISIT = TypeAdapter(Visit)
HEARTBEAT = TypeAdapter(Heartbeat)
INTENT = TypeAdapter(Intent)
DEALS = TypeAdapter(Deals)

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
        if any(f["type"] == "json_invalid" for f in exc.errors(include_url=False)):
            raise ApiError(400, "body is not valid JSON") from None
        raise ApiError(422, error, *_problems(exc)) from None


def check(adapter: TypeAdapter[T], value: Any, error: str) -> T:
    """A value already decoded, validated by ``adapter`` (422 ``error`` as ``decode``)."""
    try:
        return adapter.validate_python(value)
    except ValidationError as exc:
        raise ApiError(422, error, *_problems(exc)) from None


def _problems(faults: ValidationError) -> tuple[list[tuple[str, str]], list[list[str | int]]]:
    return problems_of(faults, _ONE_MESSAGE, _REQUIRED)


def present(fields: Mapping[str, object]) -> dict[str, Any]:
    """The fields given, a null left out."""
    return {k: v for k, v in fields.items() if v is not None}
