"""The telephony parsers as they were before their fields became pydantic types (bindings/telephony/
models.py): the oracle tests/test_request_bodies.py compares today's parsers with, so a Twilio or
Asterisk payload is accepted, refused and read exactly as before. Not used by the package."""
from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timezone, tzinfo
from email.utils import parsedate_to_datetime
from typing import Any

from k50core.attribution import finite as _finite
from k50core.bindings.telephony.payloads import NotFinal, PayloadError, zone

TWILIO_FINAL = {"completed", "busy", "no-answer", "failed", "canceled"}
TWILIO_IN_PROGRESS = {"queued", "initiated", "ringing", "in-progress", "answered"}
ASTERISK_DISPOSITIONS = {"ANSWERED", "NO ANSWER", "BUSY", "FAILED", "CONGESTION"}
MAX_TEXT = 256
MAX_CALL_SECONDS = 86400
_CLID_NUMBER = re.compile(r"<([^<>]{1,64})>\s*$")


def _object(data: Any) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise PayloadError([("body", f"expected an object of fields, got {type(data).__name__}")])
    return data


def _text(data: Mapping[str, Any], name: str, problems: list[tuple[str, str]],
          required: bool = False) -> str | None:
    value = data.get(name)
    if _finite(value) is not None:
        value = str(value)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            problems.append((name, "required"))
        return None
    if not isinstance(value, str):
        problems.append((name, f"expected a string, got {type(value).__name__}"))
        return None
    if len(value) > MAX_TEXT:
        problems.append((name, f"longer than {MAX_TEXT} characters"))
        return None
    if not value.strip().isprintable():  # a lone surrogate (JSON's "\ud800") is no UTF-8, a NUL no PostgreSQL text
        problems.append((name, "expected printable text (no control characters or lone surrogates)"))
        return None
    return value.strip()


def _seconds(data: Mapping[str, Any], name: str, problems: list[tuple[str, str]]) -> float | None:
    """A non-negative whole or decimal number of seconds up to a day (a JSON number or its text), None
    when absent."""
    value = data.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        text = value.strip()
        if not re.fullmatch(r"\d{1,12}(\.\d{1,9})?", text):
            problems.append((name, "expected a non-negative number of seconds"))
            return None
        number = float(text)
    else:
        finite = _finite(value)
        if finite is None or finite < 0:
            problems.append((name, "expected a non-negative number of seconds"))
            return None
        number = finite
    if number > MAX_CALL_SECONDS:
        problems.append((name, f"longer than a day ({MAX_CALL_SECONDS} s)"))
        return None
    return number


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


def from_twilio(data: Any) -> dict[str, Any]:
    """A Twilio Voice status callback → call. ``started_at`` is ``StartTime`` when given, else the
    callback's ``Timestamp`` (when the event fired, i.e. the call's end for a final status) less
    ``CallDuration``. ``answered``: CallStatus completed with a duration above 0. Raises NotFinal for
    queued / ringing / in-progress events."""
    data = _object(data)
    problems: list[tuple[str, str]] = []
    sid = _text(data, "CallSid", problems, required=True)
    to = _text(data, "To", problems, required=True)
    caller = _text(data, "From", problems)
    status = _text(data, "CallStatus", problems, required=True)
    if status is not None:
        status = status.lower()
        if status in TWILIO_IN_PROGRESS and not problems:
            raise NotFinal(status)
        if status not in TWILIO_FINAL and status not in TWILIO_IN_PROGRESS:
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


def from_asterisk(data: Any, tz: Any = "UTC") -> dict[str, Any]:
    """An Asterisk / FreePBX CDR → call. The number called is ``did`` (FreePBX: the inbound DID) or
    else ``dst``; the caller ``src`` or else the number in ``clid`` ("Name" <number>); the start
    ``start`` or else ``calldate`` ("YYYY-MM-DD HH:MM:SS" in ``tz``); the duration ``billsec`` (the
    answered time; ``duration`` counts the ringing too); answered: disposition ANSWERED (without a
    disposition: billsec above 0)."""
    data = _object(data)
    where = zone(tz)
    problems: list[tuple[str, str]] = []
    uid = _text(data, "uniqueid", problems, required=True)
    number = _text(data, "did", problems) or _text(data, "dst", problems)
    if number is None and not any(f in ("did", "dst") for f, _ in problems):
        problems.append(("dst", "required (or did)"))
    caller = _text(data, "src", problems)
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
    duration = _seconds(data, "duration", problems)
    billsec = _seconds(data, "billsec", problems)
    disposition = _text(data, "disposition", problems)
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
