"""Bitrix24's outgoing webhook: ``ONCRMDEALADD`` / ``ONCRMDEALUPDATE`` become deals.

Bitrix24 posts a form: ``event=ONCRMDEALADD&data[FIELDS][ID]=42&auth[application_token]=…``. The
application token is checked (constant time) against ``crm.bitrix24_application_token``. The event
carries the deal's id only: its fields and its contact's phone are read from the portal's REST API
at ``crm.bitrix24_rest_url`` (an inbound webhook URL of the portal, from the config, never from the
payload: a payload's ``auth[client_endpoint]`` would let anyone make this service call any address).
A stage of semantic ``S`` is won, ``F`` lost, any other open.
"""
from __future__ import annotations

import hmac
import json
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .deals import DealError, parse_time
from .forms import nested

EVENTS = ("ONCRMDEALADD", "ONCRMDEALUPDATE")
MAX_ANSWER = 1024 * 1024
TIMEOUT = 10.0
Fetch = Callable[[str, Mapping[str, str]], Any]


class TokenError(DealError):
    """The webhook's application token is missing or wrong."""


def event_of(pairs: Sequence[tuple[str, str]], token: str | None) -> tuple[str, str]:
    """(event, deal id) of a checked webhook; TokenError / DealError naming the field at fault."""
    data = nested(pairs)
    found = data.get("auth")
    auth: dict[str, Any] = found if isinstance(found, dict) else {}
    given = auth.get("application_token")
    if not token or not isinstance(given, str) or not hmac.compare_digest(given.encode("utf-8", "replace"),
                                                                          token.encode("utf-8")):
        raise TokenError([("auth[application_token]", "missing or not this portal's application token")])
    event = data.get("event")
    if event not in EVENTS:
        raise DealError([("event", f"expected one of {', '.join(EVENTS)}")])
    fields = (data.get("data") or {}).get("FIELDS") if isinstance(data.get("data"), dict) else None
    deal_id = fields.get("ID") if isinstance(fields, dict) else None
    if not isinstance(deal_id, str) or not (deal_id.isascii() and deal_id.isdigit()) or len(deal_id) > 20:
        raise DealError([("data[FIELDS][ID]", "expected the deal's numeric id")])
    return event, deal_id


def http_fetch(url: str, params: Mapping[str, str]) -> Any:
    """GET ``url`` with ``params``: its JSON ``result`` (at most MAX_ANSWER bytes, TIMEOUT seconds)."""
    full = url + ("&" if "?" in url else "?") + urllib.parse.urlencode(params)
    with urllib.request.urlopen(full, timeout=TIMEOUT) as answer:  # noqa: S310 (the config's URL)
        body = answer.read(MAX_ANSWER + 1)
    if len(body) > MAX_ANSWER:
        raise DealError([("bitrix24", "the portal's answer is larger than 1 MiB")])
    data = json.loads(body)
    if not isinstance(data, dict) or "result" not in data:
        raise DealError([("bitrix24", f"the portal answered no result: {str(data)[:200]}")])
    return data["result"]


def deal_row(rest_url: str, deal_id: str, fetch: Fetch = http_fetch) -> dict[str, Any]:
    """The deal as import_deals takes it, read from the portal (crm.deal.get, crm.contact.get)."""
    base = rest_url.rstrip("/") + "/"
    try:
        deal = fetch(base + "crm.deal.get.json", {"id": deal_id})
        if not isinstance(deal, dict):
            raise DealError([("bitrix24", f"crm.deal.get gave no deal {deal_id}")])
        phone = None
        contact_id = deal.get("CONTACT_ID")
        if contact_id not in (None, "", "0", 0):
            contact = fetch(base + "crm.contact.get.json", {"id": str(contact_id)})
            phones = contact.get("PHONE") if isinstance(contact, dict) else None
            for p in phones if isinstance(phones, list) else []:
                if isinstance(p, dict) and isinstance(p.get("VALUE"), str) and p["VALUE"].strip():
                    phone = p["VALUE"]
                    break
    except (OSError, ValueError) as exc:  # the portal unreachable, an HTTP error, not JSON
        if isinstance(exc, DealError):
            raise
        raise DealError([("bitrix24", f"reading deal {deal_id} from the portal failed: {str(exc)[:200]}")]) \
            from None
    semantic = str(deal.get("STAGE_SEMANTIC_ID") or "")
    stage = str(deal.get("STAGE_ID") or "")
    status = "won" if semantic == "S" or stage.endswith("WON") else \
        "lost" if semantic == "F" or stage.endswith(("LOSE", "LOST")) else "open"
    created = parse_time(deal.get("DATE_CREATE"))
    return {"deal_id": deal_id, "phone": phone, "created_at": created, "amount": deal.get("OPPORTUNITY") or 0,
            "status": status, "currency": deal.get("CURRENCY_ID") or None, "title": deal.get("TITLE") or None}
