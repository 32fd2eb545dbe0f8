"""What an attributed call looks like outside k50core: the webhook document and the GA4 event.

Both are built from the stored call row and its Attribution, never from the raw webhook that
reported the call, so an event written right after attribution and one rebuilt after a crash
(``Dispatcher.catch_up``) are byte for byte the same document.
"""
from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from k50core.attribution import Attribution, Candidate
from k50core.config.model import GA4

EVENT_TYPE = "call.attributed"
CALL_FIELDS = ("call_id", "number", "caller", "started_at", "duration_seconds", "answered", "received_at")

# GA4 collection limits (Measurement Protocol): names up to 40 characters, values up to 100,
# at most 25 parameters an event; events are accepted up to 72 hours after they happened.
GA4_NAME_MAX = 40
GA4_VALUE_MAX = 100
GA4_PARAMS_MAX = 25
GA4_BACKDATE_SECONDS = 72 * 3600
_BACKDATE_MARGIN = 600              # clocks differ: stay clear of the edge rather than be refused
_CLIENT_ID = re.compile(r"^[\x21-\x7e]{1,100}$")
_SESSION_ID = re.compile(r"^\d{1,20}$")


def attribution_json(a: Attribution) -> dict[str, Any]:
    """An Attribution as JSON-ready data: what ``POST /v1/calls`` answers and the events carry."""
    out = asdict(a)
    out["attributes"] = dict(a.attributes)
    out["candidates"] = [asdict(c) for c in a.candidates]
    return out


def attribution_from_row(row: Mapping[str, Any]) -> Attribution:
    """The Attribution of a stored ``attributions`` row (JSON text columns still as text)."""
    candidates = row.get("candidates")
    attributes = row.get("attributes")
    candidates = json.loads(candidates) if isinstance(candidates, str) else candidates or []
    attributes = json.loads(attributes) if isinstance(attributes, str) else attributes or {}
    repeat_of = row.get("repeat_of")
    return Attribution(row["call_id"], row["status"], row.get("visitor_id"), row.get("session_id"), row.get("rule"),
                       row.get("pool"), row.get("lease"), float(row.get("likelihood") or 0.0), attributes,
                       tuple(Candidate(*c) for c in candidates), repeat_of is not None, repeat_of,
                       int(row.get("more_candidates") or 0))


def call_event(call: Mapping[str, Any], a: Attribution, event_id: str) -> dict[str, Any]:
    """The webhook document: the event's type and id, the call, and its attribution (flat)."""
    out: dict[str, Any] = {"type": EVENT_TYPE, "event_id": event_id}
    out.update({k: call.get(k) for k in CALL_FIELDS})
    out["answered"] = bool(out["answered"])  # SQLite stores booleans as 0/1
    out.update(attribution_json(a))
    return out


def ga4_session_id(attributes: Mapping[str, Any], measurement_id: str) -> str | None:
    """The visit's GA4 session id for this stream: its own _ga_<container> cookie first."""
    several = attributes.get("ga_session_ids")
    if isinstance(several, Mapping):
        sid = several.get(measurement_id[2:] if measurement_id.startswith("G-") else measurement_id)
    else:
        sid = attributes.get("ga_session_id")
    return sid if isinstance(sid, str) and _SESSION_ID.match(sid) else None


def ga4_event(call: Mapping[str, Any], a: Attribution, ga4: GA4) -> dict[str, Any] | None:
    """The Measurement Protocol body for this call, or None when the visit had no GA client id.

    The caller's phone number is left out: Google Analytics forbids personal data."""
    attrs = a.attributes
    client_id = attrs.get("ga_client_id")
    if not isinstance(client_id, str) or not _CLIENT_ID.match(client_id):
        return None
    tags = attrs.get("utm")
    utm: Mapping[str, Any] = tags if isinstance(tags, Mapping) else {}
    params: dict[str, Any] = {
        "session_id": ga4_session_id(attrs, ga4.measurement_id),
        "engagement_time_msec": 1,   # without it GA4 leaves the event out of engagement and realtime reports
        "call_id": a.call_id,
        "call_status": a.status,
        "duration_seconds": int(round(float(call.get("duration_seconds") or 0))),
        "answered": 1 if call.get("answered") else 0,
        "tracking_number": call.get("number"),
        "source": utm.get("utm_source") or attrs.get("source"),
        "medium": utm.get("utm_medium") or attrs.get("traffic_type"),
        "campaign": utm.get("utm_campaign"),
        "rule": a.rule,
        "pool": a.pool,
        "likelihood": a.likelihood,
        "repeat_call": 1 if a.repeat else 0,
    }
    kept = {k[:GA4_NAME_MAX]: _ga4_value(v) for k, v in params.items() if v is not None and v != ""}
    body: dict[str, Any] = {"client_id": client_id,
                            "events": [{"name": ga4.event_name, "params": dict(list(kept.items())[:GA4_PARAMS_MAX])}]}
    started = call.get("started_at")
    if isinstance(started, (int, float)) and started > 0:
        body["timestamp_micros"] = int(round(float(started) * 1_000_000))
    return body


def _ga4_value(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)):
        return value
    return str(value)[:GA4_VALUE_MAX]


def ga4_at_send(body: Mapping[str, Any], now: float) -> dict[str, Any]:
    """The stored GA4 body as sent at ``now``: GA4 refuses a timestamp more than 72 hours old (or in
    the future), so a call that old, or an event retried that long, goes without one (sent as now)."""
    out = dict(body)
    micros = out.get("timestamp_micros")
    if isinstance(micros, int):
        age = now - micros / 1_000_000
        if age > GA4_BACKDATE_SECONDS - _BACKDATE_MARGIN or age < -60:
            del out["timestamp_micros"]
    return out


def dumps(document: Any) -> str:
    """Stable JSON text: sorted keys, no spaces, UTF-8 as is (the body is signed as these bytes)."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
