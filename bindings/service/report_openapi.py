"""The OpenAPI paths of reports, deals and the CRM webhooks (see reports.py)."""
from __future__ import annotations

from typing import Any

from k50core.report import COLUMNS, KNOWN

_TIME = {"type": "string", "description": "unix seconds, or a date (2026-12-01) / time in ISO 8601, UTC"}


def _errors(*codes: int) -> dict[str, Any]:
    text = {400: "a bad query or body", 401: "no valid API key or token", 413: "body too large",
            422: "a field is missing or wrong", 502: "the CRM's portal could not be read"}
    return {str(c): {"description": text[c], "content": {"application/json": {"schema": {
        "$ref": "#/components/schemas/Error"}}}} for c in codes}


_ROW = {"type": "object", "description": "the `by` dimensions (null: none), then the figures", "properties": {
    "unmatched": {"type": "boolean", "description": "the group of unmatched calls (and unattributed deals)"},
    **{c: {"type": "number", "nullable": c == "visits"} for c in COLUMNS}}}

_DEAL = {"type": "object", "required": ["deal_id", "phone", "created_at", "status"], "properties": {
    "deal_id": {"type": "string", "description": "1-128 printable ASCII characters; importing it again updates it"},
    "phone": {"type": "string", "description": "the client's phone, any format phonenumbers reads"},
    "created_at": {"oneOf": [{"type": "number"}, {"type": "string"}],
                   "description": "unix seconds or ISO 8601"},
    "amount": {"oneOf": [{"type": "number", "minimum": 0}, {"type": "string"}]},
    "status": {"type": "string", "enum": ["won", "lost", "open"]},
    "currency": {"type": "string", "description": "ISO 4217, e.g. RUB"},
    "title": {"type": "string", "maxLength": 500}}}

_IMPORTED = {"type": "object", "properties": {
    "imported": {"type": "array", "items": {"type": "string"}},
    "updated": {"type": "array", "items": {"type": "string"}},
    "unattributed": {"type": "array", "items": {"type": "string"},
                     "description": "deals with no call from their phone in crm.match_days before them"},
    "refused": {"type": "array", "items": {"type": "object", "properties": {
        "row": {"type": "integer"}, "deal_id": {"type": "string", "nullable": True}, "reason": {"type": "string"}}}}}}


def report_paths(key: list[dict[str, Any]]) -> dict[str, Any]:
    json_ok = lambda schema, text: {"200": {"description": text, "content": {"application/json": {"schema": schema}}}}  # noqa: E731
    form = {"application/x-www-form-urlencoded": {"schema": {"type": "object", "additionalProperties": {
        "type": "string"}}}}
    return {
        "/v1/reports": {"get": {
            "summary": "Visits, calls, deals, revenue and cost by source, campaign, page, ...", "security": key,
            "parameters": [
                {"name": "by", "in": "query", "schema": {"type": "string", "default": "source"},
                 "description": "comma-separated dimensions: " + ", ".join(KNOWN)},
                {"name": "since", "in": "query", "schema": _TIME}, {"name": "until", "in": "query", "schema": _TIME},
                {"name": "format", "in": "query", "schema": {"type": "string", "enum": ["json", "csv"]}}],
            "responses": {"200": {"description": "one row per group, the most calls first", "content": {
                "application/json": {"schema": {"type": "object", "properties": {
                    "by": {"type": "array", "items": {"type": "string"}},
                    "rows": {"type": "array", "items": _ROW}}}},
                "text/csv": {"schema": {"type": "string"}}}}, **_errors(400, 401)}}},
        "/v1/pools/usage": {"get": {
            "summary": "Per step: peak leased numbers, size, exhaustion events; the size sizing recommends",
            "security": key,
            "parameters": [
                {"name": "pool", "in": "query", "schema": {"type": "string"},
                 "description": "default: every dynamic pool"},
                {"name": "since", "in": "query", "schema": _TIME, "description": "default: a day before until"},
                {"name": "until", "in": "query", "schema": _TIME, "description": "default: now"},
                {"name": "step", "in": "query", "schema": {"type": "number", "minimum": 60, "default": 3600}}],
            "responses": {**json_ok({"type": "object"}, "per pool, its steps"), **_errors(400, 401)}}},
        "/v1/deals": {"post": {
            "summary": "Import CRM deals (idempotent by deal_id), each matched to the caller's latest call",
            "security": key,
            "requestBody": {"required": True, "content": {"application/json": {"schema": {"oneOf": [
                {"type": "array", "items": _DEAL, "maxItems": 5000},
                {"type": "object", "properties": {"deals": {"type": "array", "items": _DEAL}}}]}}}},
            "responses": {**json_ok(_IMPORTED, "what was imported, updated, refused"),
                          **_errors(400, 401, 413, 422)}}},
        "/v1/crm/amocrm/{secret}": {"post": {
            "summary": "amoCRM webhook: leads[add], leads[status], contacts[add], contacts[update]",
            "description": "The webhook URL to give amoCRM: its last path segment is the config's "
                           "crm.amocrm_token (amoCRM signs nothing and sends no header of ours, so the URL is "
                           "the only channel). Compared in constant time and written as [redacted] in the "
                           "service's logs; keep it out of a proxy's access log too. A lead whose phone is not "
                           "known yet waits for a contacts webhook that gives it.",
            "security": [{}],
            "parameters": [{"name": "secret", "in": "path", "required": True,
                            "schema": {"type": "string", "minLength": 32}}],
            "requestBody": {"required": True, "content": form},
            "responses": {**json_ok({"type": "object"}, "imported, updated, waiting, refused"),
                          **_errors(400, 401, 413, 422)}}},
        "/v1/crm/amocrm": {"post": {
            "summary": "amoCRM webhook payload posted with an API key (a replay, a test)",
            "description": "The same as /v1/crm/amocrm/{secret}, authorised by an API key in a header. A "
                           "?token= query is refused (400): query strings end up in logs.",
            "security": key,
            "requestBody": {"required": True, "content": form},
            "responses": {**json_ok({"type": "object"}, "imported, updated, waiting, refused"),
                          **_errors(400, 401, 413, 422)}}},
        "/v1/crm/bitrix24": {"post": {
            "summary": "Bitrix24 outgoing webhook: ONCRMDEALADD, ONCRMDEALUPDATE",
            "description": "Authorised by auth[application_token] (the config's crm.bitrix24_application_token); "
                           "the deal is read from crm.bitrix24_rest_url.",
            "security": [{}],
            "requestBody": {"required": True, "content": form},
            "responses": {**json_ok(_IMPORTED, "the deal imported"), **_errors(401, 413, 422, 502)}}},
    }
