"""The bodies ``POST /v1/calls`` takes, as pydantic types: the generic call, a Twilio status
callback and an Asterisk / FreePBX CDR. They validate each field (payloads.py runs them, then reads
what depends on other fields: dates, alternatives, the status), and their JSON Schemas are what the
OpenAPI document publishes.

A field another field stands in for (Asterisk's ``dst`` after a given ``did``, ``clid`` after
``src``, the dates) is read by payloads.py only when it counts, as telephony sends it: here it is
described, not checked, so a value nobody reads never refuses a call.
"""
from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import ConfigDict, Field, PlainValidator, StringConstraints, TypeAdapter, WithJsonSchema
from typing_extensions import Required, TypedDict

from k50core.attribution import (
    MAX_CALL_SECONDS,
    finite as _finite,  # one rule for what a JSON number may be
)

from ..validation import one_fault

MAX_TEXT = 256
_SECONDS_TEXT = re.compile(r"\d{1,12}(\.\d{1,9})?")


def clean_text(value: Any) -> str | None:
    """A payload's text field: a string (a JSON number is taken as its text), stripped; None when
    absent or blank. ValueError naming what is wrong."""
    if _finite(value) is not None:
        value = str(value)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {type(value).__name__}")
    if len(value) > MAX_TEXT:
        raise ValueError(f"longer than {MAX_TEXT} characters")
    if not value.strip().isprintable():  # a lone surrogate (JSON's "\ud800") is no UTF-8, a NUL no PostgreSQL text
        raise ValueError("expected printable text (no control characters or lone surrogates)")
    return value.strip()


def required_text(value: Any) -> str:
    text = clean_text(value)
    if text is None:
        raise ValueError("required")
    return text


def clean_seconds(value: Any) -> float | None:
    """A non-negative whole or decimal number of seconds up to a day (a JSON number or its text);
    None when absent or blank. ValueError naming what is wrong."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        text = value.strip()
        if not _SECONDS_TEXT.fullmatch(text):
            raise ValueError("expected a non-negative number of seconds")
        number = float(text)
    else:
        finite = _finite(value)
        if finite is None or finite < 0:
            raise ValueError("expected a non-negative number of seconds")
        number = finite
    if number > MAX_CALL_SECONDS:
        raise ValueError(f"longer than a day ({MAX_CALL_SECONDS} s)")
    return number


_TEXT_SCHEMA = {"type": "string", "maxLength": MAX_TEXT}
PayloadText = Annotated[str | None, PlainValidator(clean_text), WithJsonSchema(_TEXT_SCHEMA)]
RequiredText = Annotated[str, PlainValidator(required_text), WithJsonSchema({**_TEXT_SCHEMA, "minLength": 1})]
_SECONDS_SCHEMA = {"type": "string", "pattern": r"^\s*\d{1,12}(\.\d{1,9})?\s*$"}  # a form's text; JSON numbers too
PayloadSeconds = Annotated[float | None, PlainValidator(clean_seconds), WithJsonSchema(_SECONDS_SCHEMA)]


# -- the generic call ---------------------------------------------------------------------------
CallId = Annotated[str, StringConstraints(pattern=r"^[\x21-\x7e]{1,128}$")]
PhoneText = Annotated[str, StringConstraints(max_length=250)]   # phonenumbers reads no longer input
_PHONE = "expected a phone number: a string of at most 250 characters, or an integer"
Phone = Annotated[PhoneText | Annotated[int, Field(strict=True)], one_fault(_PHONE)]
OptionalPhone = Annotated[PhoneText | Annotated[int, Field(strict=True)] | None,
                          one_fault(_PHONE + ", or null")]
UnixSeconds = Annotated[float, Field(strict=True, ge=0, lt=1e11, allow_inf_nan=False)]  # the engine: near now
CallSeconds = Annotated[float, Field(strict=True, ge=0, le=MAX_CALL_SECONDS, allow_inf_nan=False)]


def _doc(text: str) -> Any:
    return Field(description=text)


class Call(TypedDict, total=False):
    """The generic call (format json): the engine's own call dict. Other fields are ignored.
    Past these types the engine checks what needs the config and the clock: the numbers are
    phone numbers, ``started_at`` from 400 days before now to a day after."""
    __pydantic_config__ = ConfigDict(extra="allow")  # type: ignore[misc]
    call_id: Required[Annotated[CallId, _doc("1-128 printable ASCII characters; recorded once")]]
    number: Required[Annotated[Phone, _doc("the tracking number called")]]
    caller: Annotated[OptionalPhone, _doc("a phone number, or up to 64 printable characters (anonymous, a SIP URI)")]
    started_at: Required[Annotated[UnixSeconds, _doc("unix seconds, from 400 days before now to a day after")]]
    duration_seconds: Annotated[CallSeconds | None, _doc("at most a day; default 0")]
    answered: Annotated[bool, Field(strict=True, description="default: whether the duration is above 0")]


# Fields read only when they count (see the module's note): described, not checked here.
LaterText = Annotated[Any, WithJsonSchema(_TEXT_SCHEMA)]
LaterSeconds = Annotated[Any, WithJsonSchema(_SECONDS_SCHEMA)]
LaterDate = Annotated[Any, WithJsonSchema({"type": "string", "maxLength": 64})]
LaterLocalTime = Annotated[Any, WithJsonSchema(
    {"type": "string", "pattern": r"^\s*\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d{1,6})?\s*$"})]


# -- Twilio -------------------------------------------------------------------------------------
class TwilioStatusCallback(TypedDict, total=False):
    """A Twilio Voice status callback (form fields; as JSON, numbers are taken as their text)."""
    __pydantic_config__ = ConfigDict(extra="allow")  # type: ignore[misc]
    CallSid: Required[RequiredText]
    To: Required[Annotated[RequiredText, _doc("the tracking number called")]]
    From: Annotated[PayloadText, _doc("the caller")]
    CallStatus: Required[Annotated[RequiredText, _doc(
        "completed, busy, no-answer, failed, canceled; queued, ringing, in-progress events are answered 202 "
        "and not recorded")]]
    CallDuration: Annotated[LaterSeconds, _doc("seconds (or Duration), at most a day")]
    Duration: Annotated[LaterSeconds, _doc("seconds, when CallDuration is not given")]
    Timestamp: Annotated[LaterDate, _doc("RFC 2822, when the event fired; the start is Timestamp - CallDuration")]
    StartTime: Annotated[LaterDate, _doc("RFC 2822; wins over Timestamp")]


# -- Asterisk / FreePBX CDR ---------------------------------------------------------------------
class AsteriskCdr(TypedDict, total=False):
    """An Asterisk / FreePBX CDR row (JSON or a form)."""
    __pydantic_config__ = ConfigDict(extra="allow")  # type: ignore[misc]
    uniqueid: Required[RequiredText]
    did: Annotated[PayloadText, _doc("the inbound DID called (FreePBX)")]
    dst: Annotated[LaterText, _doc("the number called, when did is not given")]
    src: Annotated[PayloadText, _doc("the caller")]
    clid: Annotated[LaterText, _doc('the caller as "Name" <number>, when src is not given')]
    start: Annotated[LaterLocalTime, _doc("YYYY-MM-DD HH:MM:SS in the service's CDR time zone")]
    calldate: Annotated[LaterLocalTime, _doc("the start, when start is not given")]
    duration: Annotated[PayloadSeconds, _doc("seconds, ringing included")]
    billsec: Annotated[PayloadSeconds, _doc("seconds answered: the call's duration")]
    disposition: Annotated[PayloadText, _doc("ANSWERED, NO ANSWER, BUSY, FAILED or CONGESTION")]


CALL = TypeAdapter(Call)
TWILIO = TypeAdapter(TwilioStatusCallback)
ASTERISK = TypeAdapter(AsteriskCdr)
