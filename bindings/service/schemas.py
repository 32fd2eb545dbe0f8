"""The service's answers as pydantic types: the OpenAPI document publishes their JSON Schemas
(openapi.py), and the tests check real answers against them. The request bodies are in bodies.py
and telephony/models.py."""
from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field
from typing_extensions import NotRequired, Required, TypedDict

from k50core.attribution import STATUSES


def _doc(text: str) -> Any:
    return Field(description=text)


Status = Annotated[str, Field(json_schema_extra={"enum": list(STATUSES)})]


class Problem(TypedDict):
    field: str
    message: str
    loc: NotRequired[Annotated[list[str | int], _doc("where in the request, as pydantic names places: "
                                           '["body", "cookies"], ["body", "CallSid"]')]]


class Error(TypedDict, total=False):
    """Every 4xx answer (and 500 ``internal``, with nothing of the fault in it)."""
    error: Required[str]
    problems: list[Problem]


class Assignment(TypedDict):
    """POST /v1/visit's answer."""
    number: Annotated[str | None, _doc("E.164; null: the page keeps its own number")]
    display: str | None
    token: str | None
    ttl: Annotated[int | None, _doc("seconds until the lease ends without activity")]
    shared: bool
    visitor_id: str
    claim: NotRequired[Annotated[str, _doc("a new visitor headed for a dynamic pool: no number yet; send the same "
                                 "visit back with this ticket")]]


class Alive(TypedDict):
    """POST /v1/heartbeat's answer."""
    alive: bool


class Ignored(TypedDict):
    """A Twilio event of a call not finished yet."""
    status: str
    reason: str


class Candidate(TypedDict):
    visitor_id: str | None
    session_id: str | None
    lease: str
    seen_at: float
    likelihood: float


class Attribution(TypedDict):
    """POST /v1/calls' answer: what the call is attributed to."""
    call_id: str
    status: Status
    visitor_id: str | None
    session_id: str | None
    rule: str | None
    pool: str | None
    lease: str | None
    likelihood: float
    attributes: Annotated[dict[str, Any], _doc("the visit's source, traffic type, utm tags, landing page, "
                                               "region, device, GA4 client id")]
    candidates: Annotated[list[Candidate], _doc("ambiguous: the likeliest visitors shown the number, at most "
                                                "the config's attribution.max_candidates (default 20)")]
    repeat: bool
    first_call_id: str | None
    more_candidates: Annotated[int, _doc("candidates beyond those listed")]


class CallRow(TypedDict):
    """A recorded call with its attribution (GET /v1/calls)."""
    call_id: str
    number: str
    caller: str | None
    started_at: float
    duration_seconds: float
    answered: bool
    received_at: float
    status: Status
    visitor_id: str | None
    session_id: str | None
    pool: str | None
    rule: str | None
    likelihood: float | None
    repeat_of: str | None
    attributes: dict[str, Any]


class CallsPage(TypedDict):
    calls: list[CallRow]
    next_cursor: Annotated[str | None, _doc("the next page's cursor; null on the last page")]
