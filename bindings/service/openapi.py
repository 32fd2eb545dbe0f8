"""The service's OpenAPI 3 document, written by hand (served at GET /openapi.json)."""
from __future__ import annotations

from typing import Any

from k50core.attribution import STATUSES

from .report_openapi import report_paths


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _errors(*codes: int) -> dict[str, Any]:
    text = {400: "bad JSON or query", 401: "no valid API key", 403: "origin not allowed",
            413: "body larger than 16 KiB", 415: "a text/plain or form body (a cross-site post)",
            422: "a field is missing or of the wrong type",
            429: "too many heartbeats for tokens this network was not given"}
    return {str(c): {"description": text[c], **_json(_ref("Error"))} for c in codes}


_NULLABLE_STR = {"type": "string", "nullable": True}

_SCHEMAS: dict[str, Any] = {
    "Error": {"type": "object", "required": ["error"], "properties": {
        "error": {"type": "string"},
        "problems": {"type": "array", "items": {"type": "object", "properties": {
            "field": {"type": "string"}, "message": {"type": "string"},
            "loc": {"type": "array", "items": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
                    "description": "where in the request, as pydantic names it (a body's faults)"}}}}}},
    "Intent": {"type": "object", "required": ["token", "kind"], "properties": {
        "token": {"type": "string", "maxLength": 64, "description": "the token /v1/visit gave"},
        "kind": {"type": "string", "enum": ["click", "copy"],
                 "description": "click: a tap or click on the number or its tel: link; copy: its text copied"},
        "visitor_id": {"type": "string", "description": "who (on a shared number every visitor has the same "
                                                        "token); default: the k50_vid cookie, else the holder"}}},
    "Visit": {"type": "object", "required": ["url"], "properties": {
        "url": {"type": "string", "description": "the page's URL with its query"},
        "visitor_id": {"type": "string", "description": "default: the k50_vid cookie, or a new random id"},
        "session_id": {"type": "string"},
        "referrer": {"type": "string"},
        "user_agent": {"type": "string", "description": "default: the request's User-Agent header"},
        "cookies": {"oneOf": [{"type": "object", "additionalProperties": {"type": "string"}}, {"type": "string"}]},
        "token": {"type": "string", "description": "the token an earlier answer gave (keeps the number)"},
        "claim": {"type": "string", "maxLength": 64,
                  "description": "the claim ticket an earlier answer gave a new visitor: the same visit sent "
                                 "back with it takes the number (a bad or expired one gets a fresh ticket)"},
        "ga_client_id": {"type": "string", "description": "GA4 client id, <random>.<timestamp>"}}},
    "Assignment": {"type": "object", "properties": {
        "number": {**_NULLABLE_STR, "description": "E.164; null: the page keeps its own number"},
        "display": _NULLABLE_STR, "token": _NULLABLE_STR,
        "ttl": {"type": "integer", "nullable": True, "description": "seconds until the lease ends without activity"},
        "shared": {"type": "boolean"}, "visitor_id": {"type": "string"},
        "claim": {"type": "string", "description": "a new visitor headed for a dynamic pool: no number yet; "
                                                   "send the same visit back with this ticket"}}},
    "Call": {"type": "object", "required": ["call_id", "number", "started_at"], "properties": {
        "call_id": {"type": "string", "description": "1-128 printable ASCII characters; recorded once"},
        "number": {"type": "string", "description": "the tracking number called"},
        "caller": {"type": "string", "description": "a phone number, or up to 64 printable characters "
                                                    "(anonymous, a SIP URI)"},
        "started_at": {"type": "number", "description": "unix seconds, from 400 days before now to a day after"},
        "duration_seconds": {"type": "number", "minimum": 0, "maximum": 86400, "description": "at most a day"},
        "answered": {"type": "boolean"}}},
    "TwilioStatusCallback": {"type": "object", "required": ["CallSid", "To", "CallStatus"], "properties": {
        "CallSid": {"type": "string"}, "To": {"type": "string", "description": "the tracking number called"},
        "From": {"type": "string"},
        "CallStatus": {"type": "string", "enum": ["completed", "busy", "no-answer", "failed", "canceled"],
                       "description": "queued, ringing, in-progress events are answered 202 and not recorded"},
        "CallDuration": {"type": "string", "description": "seconds (or Duration), at most a day"},
        "Timestamp": {"type": "string", "description": "RFC 2822; the start is Timestamp - CallDuration"},
        "StartTime": {"type": "string", "description": "RFC 2822; wins over Timestamp"}}},
    "AsteriskCdr": {"type": "object", "required": ["uniqueid"], "properties": {
        "uniqueid": {"type": "string"}, "did": {"type": "string"}, "dst": {"type": "string"},
        "src": {"type": "string"}, "clid": {"type": "string"},
        "start": {"type": "string", "description": "YYYY-MM-DD HH:MM:SS in the service's CDR time zone"},
        "calldate": {"type": "string"}, "duration": {"type": "string"}, "billsec": {"type": "string"},
        "disposition": {"type": "string", "enum": ["ANSWERED", "NO ANSWER", "BUSY", "FAILED", "CONGESTION"]}}},
    "Candidate": {"type": "object", "properties": {
        "visitor_id": _NULLABLE_STR, "session_id": _NULLABLE_STR, "lease": {"type": "string"},
        "seen_at": {"type": "number"}, "likelihood": {"type": "number"}}},
    "Attribution": {"type": "object", "properties": {
        "call_id": {"type": "string"}, "status": {"type": "string", "enum": list(STATUSES)},
        "visitor_id": _NULLABLE_STR, "session_id": _NULLABLE_STR, "rule": _NULLABLE_STR, "pool": _NULLABLE_STR,
        "lease": _NULLABLE_STR, "likelihood": {"type": "number"}, "attributes": {"type": "object"},
        "candidates": {"type": "array", "items": _ref("Candidate"),
                       "description": "ambiguous: the likeliest visitors shown the number, at most the "
                                      "config's attribution.max_candidates (default 20)"},
        "more_candidates": {"type": "integer", "description": "candidates beyond those listed"},
        "repeat": {"type": "boolean"}, "first_call_id": _NULLABLE_STR}},
    "CallRow": {"type": "object", "properties": {
        "call_id": {"type": "string"}, "number": {"type": "string"}, "caller": _NULLABLE_STR,
        "started_at": {"type": "number"}, "duration_seconds": {"type": "number"}, "answered": {"type": "boolean"},
        "received_at": {"type": "number"}, "status": {"type": "string", "enum": list(STATUSES)},
        "visitor_id": _NULLABLE_STR, "session_id": _NULLABLE_STR, "pool": _NULLABLE_STR, "rule": _NULLABLE_STR,
        "likelihood": {"type": "number"}, "repeat_of": _NULLABLE_STR, "attributes": {"type": "object"}}},
}


def openapi_document() -> dict[str, Any]:
    from k50core import __version__

    key: list[dict[str, list[str]]] = [{"bearer": []}, {"apiKey": []}]
    return {
        "openapi": "3.0.3",
        "info": {"title": "k50core service", "version": __version__,
                 "description": "Dynamic number insertion and call attribution over HTTP."},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"},
                                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                                "webhookSignature": {"type": "apiKey", "in": "header", "name": "X-K50-Signature"},
                                "webhookTimestamp": {"type": "apiKey", "in": "header", "name": "X-K50-Timestamp"},
                                "twilioSignature": {"type": "apiKey", "in": "header", "name": "X-Twilio-Signature"}},
            "schemas": _SCHEMAS},
        "paths": {
            "/v1/visit": {"post": {
                "summary": "The number a visit's page shows (public; sets the k50_vid cookie)",
                "description": "Browsers only; an Origin that is neither allow-listed nor the service's own is "
                               "403, a text/plain or form body 415. A new visitor headed for a dynamic pool "
                               "first gets a claim ticket (see Visit.claim).",
                "requestBody": {"required": True, **_json(_ref("Visit"))},
                "responses": {"200": {"description": "the assignment", **_json(_ref("Assignment"))},
                              **_errors(400, 403, 413, 415, 422)}}},
            "/v1/heartbeat": {"post": {
                "summary": "Activity on the page: extends the lease (public)",
                "requestBody": {"required": True, **_json({"type": "object", "required": ["token"],
                                                           "properties": {"token": {"type": "string"}}})},
                "responses": {"200": {"description": "whether the lease was alive", **_json(
                    {"type": "object", "properties": {"alive": {"type": "boolean"}}})},
                    **_errors(400, 403, 413, 415, 422, 429)}}},
            "/v1/intent": {"post": {
                "summary": "A call intent: the visitor tapped or copied the shown number (public; always 204)",
                "description": "Sent by the snippet with navigator.sendBeacon as the page hands over to the "
                               "dialer, so a text/plain body is taken as well as application/json. Renews the "
                               "lease like a heartbeat and keeps the intent with it: attribution weighs it to "
                               "tell apart the visitors of a shared number. Never an error for what the body "
                               "holds: a token not alive, a kind not known, a body that is not the object "
                               "below, a network over its heartbeat allowance are all 204, counted in "
                               "/metrics (k50_intents by outcome). 403 for an Origin not allowed.",
                "requestBody": {"required": True, "content": {
                    "application/json": {"schema": _ref("Intent")}, "text/plain": {"schema": _ref("Intent")}}},
                "responses": {"204": {"description": "taken (whatever it held: see /metrics)"},
                              **_errors(403, 413)}}},
            "/v1/calls": {
                "post": {"summary": "Attribute a call from telephony (recorded once per call_id)",
                         "description": "A telephony webhook: the generic call JSON, a Twilio status callback "
                                        "(form) or an Asterisk/FreePBX CDR (JSON or form). Authorised by an API key, "
                                        "or, when the service is so configured, by X-K50-Timestamp + X-K50-Signature "
                                        "(sha256=HMAC-SHA256(secret, timestamp + '.' + body), within 300 s, once) "
                                        "or by X-Twilio-Signature (form bodies only: it does not cover a JSON body).",
                         "security": key + [{"webhookSignature": [], "webhookTimestamp": []}, {"twilioSignature": []}],
                         "parameters": [{"name": "format", "in": "query", "schema": {
                             "type": "string", "enum": ["json", "twilio", "asterisk"]},
                             "description": "default: detected (CallSid: twilio, uniqueid: asterisk, else json)"}],
                         "requestBody": {"required": True, "content": {
                             "application/json": {"schema": {"oneOf": [_ref("Call"), _ref("AsteriskCdr")]}},
                             "application/x-www-form-urlencoded": {"schema": {
                                 "oneOf": [_ref("TwilioStatusCallback"), _ref("AsteriskCdr")]}}}},
                         "responses": {"200": {"description": "the attribution", **_json(_ref("Attribution"))},
                                       "202": {"description": "a Twilio event of a call not finished yet: ignored",
                                               **_json({"type": "object", "properties": {
                                                   "status": {"type": "string"}, "reason": {"type": "string"}}})},
                                       **_errors(400, 401, 413, 422)}},
                "get": {"summary": "Export recorded calls with their attribution, oldest first", "security": key,
                        "parameters": [
                            {"name": "since", "in": "query", "schema": {"type": "number"},
                             "description": "unix seconds, inclusive"},
                            {"name": "until", "in": "query", "schema": {"type": "number"},
                             "description": "unix seconds, exclusive"},
                            {"name": "status", "in": "query", "schema": {"type": "string", "enum": list(STATUSES)}},
                            {"name": "limit", "in": "query",
                             "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}},
                            {"name": "cursor", "in": "query", "schema": {"type": "string"},
                             "description": "next_cursor of the previous page (CSV: the X-Next-Cursor header)"},
                            {"name": "format", "in": "query", "schema": {"type": "string", "enum": ["json", "csv"]},
                             "description": "default json; Accept: text/csv also gives CSV. In CSV a cell "
                                            "that starts with =, +, -, @, tab or CR gets a leading single quote "
                                            "(OWASP: no spreadsheet formulas from visitors' utm tags or cookies), "
                                            "so E.164 numbers read '+74951234567; the JSON has values as they are"}],
                        "responses": {"200": {"description": "a page of calls", "content": {
                            "application/json": {"schema": {"type": "object", "properties": {
                                "calls": {"type": "array", "items": _ref("CallRow")},
                                "next_cursor": _NULLABLE_STR}}},
                            "text/csv": {"schema": {"type": "string"}}}}, **_errors(400, 401)}}},
            "/v1/pools": {"get": {
                "summary": "Utilisation per pool", "security": key,
                "responses": {"200": {"description": "per pool: numbers, leased, cooling, free, claims, "
                                                     "exhaustion counters, utilisation"}, **_errors(401)}}},
            "/healthz": {"get": {"summary": "Liveness (open; nothing about the process)",
                                 "responses": {"200": {"description": "ok"}}}},
            "/metrics": {"get": {"summary": "Prometheus metrics (private: an API key or a metrics key)",
                                 "security": key, "responses": {"200": {
                "description": "text exposition format", "content": {"text/plain": {"schema": {"type": "string"}}}},
                **_errors(401)}}},
            "/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3"}}}},
            "/docs": {"get": {"summary": "This document as a page to read (HTML, nothing fetched from elsewhere)",
                              "responses": {"200": {"description": "the API reference", "content": {
                                  "text/html": {"schema": {"type": "string"}}}}}}},
            **report_paths(key),
        },
    }
