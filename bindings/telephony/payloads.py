"""Telephony webhook payloads → the engine's call dict (see ``k50core.attribution.parse_call``).

Three formats:

* ``json``: the engine's own call dict, passed through as is;
* ``twilio``: a Twilio Voice status callback (form fields ``CallSid``, ``To``, ``From``,
  ``CallStatus``, ``CallDuration``/``Duration``, ``Timestamp``/``StartTime``);
* ``asterisk``: an Asterisk / FreePBX CDR row (``uniqueid``, ``did``/``dst``, ``src``/``clid``,
  ``start``/``calldate``, ``duration``, ``billsec``, ``disposition``), as JSON or a form.

Every parser raises ``PayloadError`` (and nothing else) naming the bad fields in the payload's own
vocabulary; ``NotFinal`` (a PayloadError) is a Twilio event of a call still in progress, which is
not recorded: the engine records a call once, so only its final state counts.
"""
from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone, tzinfo
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import TypeAdapter, ValidationError

from k50core.attribution import finite as _finite  # one rule for what a JSON number may be
from k50core.errors import Error

from ..validation import problems_of
from .models import ASTERISK, CALL, TWILIO, clean_seconds, clean_text

FORMATS = ("json", "twilio", "asterisk")

# the engine's field -> the payload's field, to name a problem the engine found in the payload's words
FIELD_NAMES: dict[str, dict[str, str]] = {
    "json": {},
    "twilio": {"call_id": "CallSid", "number": "To", "caller": "From", "started_at": "Timestamp",
               "duration_seconds": "CallDuration", "answered": "CallStatus", "call": "body"},
    "asterisk": {"call_id": "uniqueid", "number": "did", "caller": "src", "started_at": "start",
                 "duration_seconds": "billsec", "answered": "disposition", "call": "body"},
}

TWILIO_FINAL = {"completed", "busy", "no-answer", "failed", "canceled"}
TWILIO_IN_PROGRESS = {"queued", "initiated", "ringing", "in-progress", "answered"}
ASTERISK_DISPOSITIONS = {"ANSWERED", "NO ANSWER", "BUSY", "FAILED", "CONGESTION"}
_CLID_NUMBER = re.compile(r"<([^<>]{1,64})>\s*$")


class PayloadError(Error, ValueError):
    """A payload that is no call; ``problems`` lists (field, message) in the payload's vocabulary."""

    def __init__(self, problems: Sequence[tuple[str, str]], error: str = "invalid call",
                 locs: Sequence[Sequence[str | int]] | None = None) -> None:
        self.problems = list(problems)
        self.error = error
        # where each problem is, as pydantic names places: a payload's field is ["body", field]
        given = [list(loc) for loc in locs or ()]
        self.locs = given + [["body"] if f in ("body", "call") else ["body", f] for f, _ in self.problems[len(given):]]
        super().__init__("; ".join(f"{f}: {m}" for f, m in self.problems) or error)


class NotFinal(PayloadError):
    """A status callback of a call not finished yet (queued, ringing, in-progress): nothing to record."""

    def __init__(self, status: str) -> None:
        self.status = status
        super().__init__([("CallStatus", f"{status}: the call is not finished")], "call not finished")


# -- bodies -----------------------------------------------------------------------------------
def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _json_int(digits: str) -> int | float:
    """A JSON integer; one longer than Python reads (sys.get_int_max_str_digits) as infinity, which
    no field takes: a 422 naming the field, not a body called "not JSON"."""
    return int(digits) if len(digits) <= 4000 else float("inf")


def is_form(content_type: str | None) -> bool:
    return (content_type or "").split(";")[0].strip().lower() == "application/x-www-form-urlencoded"


def decode_form(body: bytes) -> list[tuple[str, str]]:
    """``application/x-www-form-urlencoded`` pairs, in order (UTF-8; PayloadError otherwise)."""
    try:
        text = body.decode("utf-8")
        return parse_qsl(text, keep_blank_values=True, max_num_fields=1000)
    except (UnicodeDecodeError, ValueError):
        raise PayloadError([("body", "not a UTF-8 form (application/x-www-form-urlencoded)")],
                           "bad form") from None


def decode_body(body: bytes, content_type: str | None) -> Any:
    """The body as a dict of form fields (first value of each) or as JSON."""
    if is_form(content_type):
        out: dict[str, str] = {}
        for k, v in decode_form(body):
            out.setdefault(k, v)
        return out
    if not body:
        raise PayloadError([("body", "empty: expected JSON or a form")], "empty body")
    try:
        return json.loads(body, parse_constant=_no_constant, parse_int=_json_int)
    except (ValueError, RecursionError):
        raise PayloadError([("body", "not valid JSON")], "body is not valid JSON") from None


def detect(data: Any) -> str:
    """``twilio`` when the payload has CallSid, ``asterisk`` when it has uniqueid, else ``json``."""
    if isinstance(data, Mapping):
        if "CallSid" in data:
            return "twilio"
        if "uniqueid" in data:
            return "asterisk"
    return "json"


def to_call(data: Any, fmt: str | None = None, *, cdr_timezone: Any = "UTC") -> dict[str, Any]:
    """The engine's call dict from a decoded payload in ``fmt`` (detected when None)."""
    fmt = fmt or detect(data)
    if fmt == "twilio":
        return from_twilio(data)
    if fmt == "asterisk":
        return from_asterisk(data, cdr_timezone)
    if fmt == "json":
        validated(CALL, data)  # the engine checks the rest: phone numbers, the time against the clock
        return data
    raise PayloadError([("format", f"expected one of {', '.join(FORMATS)}")], "unknown format")


# where a payload may carry a field under either of two names: the second counts when the first is empty
_ALTERNATIVES = {"twilio": {"Timestamp": "StartTime", "CallDuration": "Duration"},
                 "asterisk": {"did": "dst", "src": "clid", "start": "calldate"}}


def rename(problems: Sequence[tuple[str, str]], fmt: str, data: Any = None) -> list[tuple[str, str]]:
    """The engine's problems with its field names put back into the payload's (``data``: the payload,
    to name the field the value really came from, e.g. ``dst`` when ``did`` was empty)."""
    names = dict(FIELD_NAMES.get(fmt, {}))
    if isinstance(data, Mapping):
        for engine_name, first in list(names.items()):
            second = _ALTERNATIVES.get(fmt, {}).get(first)
            if fmt == "twilio" and first == "Timestamp" and second:  # StartTime wins over Timestamp when given
                first, second = second, first
            if second and data.get(first) in (None, "") and data.get(second) not in (None, ""):
                names[engine_name] = second
            elif second and data.get(first) not in (None, ""):
                names[engine_name] = first
    return [(names.get(f, f), m) for f, m in problems]


# -- field helpers ------------------------------------------------------------------------------
def _object(data: Any) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise PayloadError([("body", f"expected an object of fields, got {type(data).__name__}")])
    return data


T = TypeVar("T")


def validated(model: TypeAdapter[T], data: Any) -> T:
    """``data`` checked by one of models.py's types; PayloadError with each fault's place."""
    try:
        return model.validate_python(data)
    except ValidationError as exc:
        raise PayloadError(*_faults(exc)) from None


def _faults(exc: ValidationError) -> tuple[list[tuple[str, str]], str, list[list[str | int]]]:
    problems, locs = problems_of(exc)
    return problems, "invalid call", locs


def _text(data: Mapping[str, Any], name: str, problems: list[tuple[str, str]]) -> str | None:
    """A text field read only when another is absent (see models.py); None when bad (a problem)."""
    try:
        return clean_text(data.get(name))
    except ValueError as exc:
        problems.append((name, str(exc)))
        return None


def _seconds(data: Mapping[str, Any], name: str, problems: list[tuple[str, str]]) -> float | None:
    try:
        return clean_seconds(data.get(name))
    except ValueError as exc:
        problems.append((name, str(exc)))
        return None


def _unix(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = _finite(value)
        return number if number is not None and 0 <= number < 1e11 else None
    if isinstance(value, str) and re.fullmatch(r"\d{9,11}(\.\d{1,9})?", value.strip()):
        return float(value.strip())
    return None


def _rfc2822(value: Any) -> float | None:
    """Unix seconds of an RFC 2822 date ("Mon, 16 Aug 2010 03:45:01 +0000"), an ISO 8601 one with
    an offset, or unix seconds; None when it is none of these."""
    unix = _unix(value)
    if unix is not None or not isinstance(value, str):
        return unix
    text = value.strip()
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        try:
            when = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)  # "-0000" (RFC 2822: UTC, source unknown)
    try:
        t = when.timestamp()
    except (OverflowError, ValueError, OSError):
        return None
    return t if 0 <= t < 1e11 else None


def zone(name: Any) -> tzinfo:
    """A tzinfo from an IANA name ("Europe/Moscow", "UTC") or a tzinfo; ValueError when unknown."""
    if isinstance(name, tzinfo):
        return name
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError(f"unknown time zone: {name!r}") from None


def _local(value: Any, tz: tzinfo) -> float | None:
    """Unix seconds of a CDR time "YYYY-MM-DD HH:MM:SS" in ``tz`` (or of unix seconds)."""
    unix = _unix(value)
    if unix is not None or not isinstance(value, str):
        return unix
    text = value.strip()
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d{1,6})?", text):
        return None
    try:
        when = datetime.fromisoformat(text.replace("T", " "))
        t = when.replace(tzinfo=tz).timestamp()
    except (ValueError, OverflowError, OSError):
        return None
    return t if 0 <= t < 1e11 else None


# -- Twilio -------------------------------------------------------------------------------------
def from_twilio(data: Any) -> dict[str, Any]:
    """A Twilio Voice status callback → call. ``started_at`` is ``StartTime`` when given, else the
    callback's ``Timestamp`` (when the event fired, i.e. the call's end for a final status) less
    ``CallDuration``. ``answered``: CallStatus completed with a duration above 0. Raises NotFinal for
    queued / ringing / in-progress events."""
    data = _object(data)
    fields = validated(TWILIO, data)
    problems: list[tuple[str, str]] = []
    sid, to, caller = fields["CallSid"], fields["To"], fields.get("From")
    status = fields["CallStatus"].lower()
    if status in TWILIO_IN_PROGRESS:
        raise NotFinal(status)
    if status not in TWILIO_FINAL:
        problems.append(("CallStatus", f"expected one of {', '.join(sorted(TWILIO_FINAL))}"))
    duration_field = "CallDuration" if data.get("CallDuration") not in (None, "") else "Duration"
    duration = _seconds(data, duration_field, problems)
    started: float | None = None
    if data.get("StartTime") not in (None, ""):
        started = _rfc2822(data.get("StartTime"))
        if started is None:
            problems.append(("StartTime", "expected an RFC 2822 date, e.g. Mon, 16 Aug 2010 03:45:01 +0000"))
    elif data.get("Timestamp") not in (None, ""):
        fired = _rfc2822(data.get("Timestamp"))
        if fired is None:
            problems.append(("Timestamp", "expected an RFC 2822 date, e.g. Mon, 16 Aug 2010 03:45:01 +0000"))
        else:
            started = max(0.0, fired - (duration or 0.0))
    else:
        problems.append(("Timestamp", "required (or StartTime)"))
    if problems:
        raise PayloadError(problems)
    seconds = duration or 0.0
    return {"call_id": sid, "number": to, "caller": caller, "started_at": started,
            "duration_seconds": seconds, "answered": status == "completed" and seconds > 0}


# -- Asterisk / FreePBX CDR -----------------------------------------------------------------------
def from_asterisk(data: Any, tz: Any = "UTC") -> dict[str, Any]:
    """An Asterisk / FreePBX CDR → call. The number called is ``did`` (FreePBX: the inbound DID) or
    else ``dst``; the caller ``src`` or else the number in ``clid`` ("Name" <number>); the start
    ``start`` or else ``calldate`` ("YYYY-MM-DD HH:MM:SS" in ``tz``); the duration ``billsec`` (the
    answered time; ``duration`` counts the ringing too); answered: disposition ANSWERED (without a
    disposition: billsec above 0)."""
    data = _object(data)
    where = zone(tz)
    fields = validated(ASTERISK, data)
    problems: list[tuple[str, str]] = []
    uid = fields["uniqueid"]
    number = fields.get("did") or _text(data, "dst", problems)
    if number is None and not problems:
        problems.append(("dst", "required (or did)"))
    caller = fields.get("src")
    if caller is None:
        clid = _text(data, "clid", problems)
        if clid:
            m = _CLID_NUMBER.search(clid)
            caller = m.group(1).strip() if m else clid.strip('" ')
            caller = caller or None
    started: float | None = None
    name = "start" if data.get("start") not in (None, "") else "calldate"
    if data.get(name) in (None, ""):
        problems.append(("start", "required (or calldate)"))
    else:
        started = _local(data.get(name), where)
        if started is None:
            problems.append((name, "expected YYYY-MM-DD HH:MM:SS"))
    duration, billsec, disposition = fields.get("duration"), fields.get("billsec"), fields.get("disposition")
    if disposition is not None:
        disposition = disposition.upper()
        if disposition not in ASTERISK_DISPOSITIONS:
            problems.append(("disposition", f"expected one of {', '.join(sorted(ASTERISK_DISPOSITIONS))}"))
    if billsec is not None and duration is not None and billsec > duration:
        problems.append(("billsec", "longer than duration"))
    if problems:
        raise PayloadError(problems)
    talk = billsec or 0.0
    answered = disposition == "ANSWERED" if disposition is not None else talk > 0
    return {"call_id": uid, "number": number, "caller": caller, "started_at": started,
            "duration_seconds": talk if answered else 0.0, "answered": answered}
