"""The service's OpenAPI 3 document (served at GET /openapi.json): the paths written here, every
request and answer schema the JSON Schema of the pydantic type the service validates or answers with
(bodies.py, telephony/models.py, schemas.py)."""
from __future__ import annotations

from functools import lru_cache
from typing import Any

from pydantic import TypeAdapter
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode, JsonSchemaValue
from pydantic_core import core_schema

from k50core.attribution import STATUSES

from ..telephony.models import ASTERISK, CALL, TWILIO
from . import schemas
from .bodies import HEARTBEAT, INTENT, VISIT
from .report_openapi import report_paths


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


_REF = "#/components/schemas/{model}"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF.format(model=name)}


def _errors(*codes: int) -> dict[str, Any]:
    text = {400: "bad JSON or query", 401: "no valid API key", 403: "origin not allowed",
            413: "body larger than 16 KiB", 415: "a text/plain or form body (a cross-site post)",
            422: "a field is missing or wrong: each problem names it, with its loc",
            429: "too many heartbeats for tokens this network was not given"}
    return {str(c): {"description": text[c], **_json(_ref("Error"))} for c in codes}


class _OpenAPI30(GenerateJsonSchema):
    """pydantic's JSON Schema in OpenAPI 3.0's dialect: a null allowed is ``nullable``, no titles."""

    def nullable_schema(self, schema: core_schema.NullableSchema) -> JsonSchemaValue:
        inner = self.generate_inner(schema["schema"])
        return {"allOf": [inner], "nullable": True} if "$ref" in inner else {**inner, "nullable": True}

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


_AS_EXTENSION = ("propertyNames",)  # JSON Schema keywords OpenAPI 3.0 has not: kept as x-propertyNames


def _openapi30(schema: Any) -> Any:
    if isinstance(schema, dict):
        out = {("x-" + k if k in _AS_EXTENSION else k): _openapi30(v) for k, v in schema.items()
               if k != "title" or not isinstance(v, str)}
        if isinstance(schema.get("properties"), dict):  # field names, not keywords: every one kept
            out["properties"] = {name: _openapi30(v) for name, v in schema["properties"].items()}
        if "const" in out:
            out["enum"] = [out.pop("const")]
        for bound, limit in (("exclusiveMaximum", "maximum"), ("exclusiveMinimum", "minimum")):
            if isinstance(out.get(bound), (int, float)) and not isinstance(out[bound], bool):  # 3.0: a flag
                out[limit], out[bound] = out[bound], True
        return out
    if isinstance(schema, list):
        return [_openapi30(v) for v in schema]
    return schema


# What the document publishes: the request bodies the service validates with, its answers' types.
_REQUESTS: tuple[TypeAdapter[Any], ...] = (VISIT, HEARTBEAT, INTENT, CALL, TWILIO, ASTERISK)
_ANSWERS: tuple[Any, ...] = (schemas.Error, schemas.Assignment, schemas.Alive, schemas.Ignored, schemas.Attribution,
                             schemas.CallsPage)


@lru_cache(maxsize=1)
def component_schemas() -> dict[str, Any]:
    """``components.schemas``: each model's JSON Schema, referring to the others by name."""
    inputs: list[tuple[int, JsonSchemaMode, TypeAdapter[Any]]] = [
        (i, "validation", adapter) for i, adapter in enumerate(_REQUESTS)]
    inputs += [(len(_REQUESTS) + i, "serialization", TypeAdapter(t)) for i, t in enumerate(_ANSWERS)]
    _, defs = TypeAdapter.json_schemas(inputs, ref_template=_REF, schema_generator=_OpenAPI30)
    return {name: _openapi30(schema) for name, schema in sorted(defs.get("$defs", {}).items())}


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
            "schemas": component_schemas()},
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
                "requestBody": {"required": True, **_json(_ref("Heartbeat"))},
                "responses": {"200": {"description": "whether the lease was alive", **_json(_ref("Alive"))},
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
                             "application/json": {"schema": {"oneOf": [_ref("Call"), _ref("AsteriskCdr"),
                                                                       _ref("TwilioStatusCallback")]}},
                             "application/x-www-form-urlencoded": {"schema": {
                                 "oneOf": [_ref("TwilioStatusCallback"), _ref("AsteriskCdr")]}}}},
                         "responses": {"200": {"description": "the attribution", **_json(_ref("Attribution"))},
                                       "202": {"description": "a Twilio event of a call not finished yet: ignored",
                                               **_json(_ref("Ignored"))},
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
                            "application/json": {"schema": _ref("CallsPage")},
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
