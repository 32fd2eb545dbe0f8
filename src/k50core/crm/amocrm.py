"""amoCRM webhooks: ``leads[add]`` / ``leads[status]`` (and ``leads[update]``) become deals;
``contacts[add]`` / ``contacts[update]`` give phones.

amoCRM posts a form (``leads[add][0][id]=…&leads[add][0][price]=…``). A lead's phone comes from
the lead itself when the payload carries it (a PHONE field, or its contact's), else from the deal
as imported before, else from a contact a ``contacts`` webhook gave: a lead whose contact has not
come yet waits (table ``crm_waiting``) and is imported when a contact linked to it brings a phone.
Statuses: 142 is amoCRM's "won", 143 its "lost"; any other is an open deal.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from ..config.phones import normalise
from ..store.base import Store
from .deals import DealError, ImportResult, deal_of, import_deals
from .forms import items, nested

WON, LOST = "142", "143"
LEAD_EVENTS = ("add", "status", "update")
CONTACT_EVENTS = ("add", "update")


def _phones(fields: Any) -> list[str]:
    """The values of PHONE custom fields (``custom_fields[0][code]=PHONE``)."""
    out: list[str] = []
    for f in items(fields):
        if str(f.get("code", "")).upper() == "PHONE":
            out += [v["value"] for v in items(f.get("values")) if isinstance(v.get("value"), str)]
    return out


def _phone(entry: Mapping[str, Any], region: str) -> str | None:
    for text in _phones(entry.get("custom_fields")) + [entry.get("phone")]:
        number = normalise(text, region) if isinstance(text, str) else None
        if number is not None:
            return number
    return None


def _lead_contact(lead: Mapping[str, Any], region: str) -> tuple[str | None, str | None]:
    """(contact id, phone) a lead's payload carries of its contact."""
    for key in ("main_contact_id", "contact_id"):
        if isinstance(lead.get(key), str) and lead[key]:
            return lead[key], None
    for c in items(lead.get("contacts")):
        cid = c.get("id") if isinstance(c.get("id"), str) else None
        return cid, _phone(c, region)
    return None, None


def _deal(lead: Mapping[str, Any]) -> dict[str, Any]:
    status = lead.get("status_id")
    return {"deal_id": lead.get("id"), "title": lead.get("name") or None,
            "amount": lead.get("price") or 0,
            "status": "won" if status == WON else "lost" if status == LOST else "open",
            "created_at": lead.get("date_create") or lead.get("created_at")}


class WrongAccount(DealError):
    """A webhook of another amoCRM account than the configured one."""


def check_account(body: Sequence[tuple[str, str]], subdomain: str | None) -> None:
    """A webhook of the configured account only (``crm.amocrm_subdomain``): amoCRM names the account
    in every webhook (``account[subdomain]``), so a leaked webhook URL given to another account, or a
    payload replayed from one, imports nothing. WrongAccount naming the field otherwise."""
    if subdomain is None:
        return
    given = [v for k, v in body if k == "account[subdomain]"]
    if len(given) != 1 or given[0].strip().lower() != subdomain:
        raise WrongAccount([("account[subdomain]", f"not the configured account (crm.amocrm_subdomain: {subdomain})")])


def handle(store: Store, body: Mapping[str, Any] | Sequence[tuple[str, str]], *, region: str, match_days: float,
           now: float) -> dict[str, Any]:
    """One webhook's leads and contacts, stored: what was imported, updated, left waiting, refused."""
    data = nested(body) if not isinstance(body, Mapping) else body
    result = ImportResult()
    waiting: list[str] = []
    contacts = 0

    def run(rows: list[dict[str, Any]]) -> None:
        got = import_deals(store, rows, region=region, match_days=match_days, now=now, origin="amocrm")
        result.imported += got.imported
        result.updated += got.updated
        result.unattributed += got.unattributed
        result.refused += got.refused

    for event in CONTACT_EVENTS:
        for c in items(data.get("contacts", {}).get(event) if isinstance(data.get("contacts"), dict) else None):
            cid, phone = c.get("id"), _phone(c, region)
            if not isinstance(cid, str) or not cid or phone is None:
                continue
            contacts += 1
            linked = [k for k in (c.get("linked_leads_id") or {})] if isinstance(c.get("linked_leads_id"), dict) \
                else []
            run(_release(store, cid, phone, linked, now))
    found = data.get("leads")
    leads: dict[str, Any] = found if isinstance(found, dict) else {}
    rows: list[dict[str, Any]] = []
    for event in LEAD_EVENTS:
        for lead in items(leads.get(event)):
            row = _deal(lead)
            cid, phone = _lead_contact(lead, region)
            phone = phone or _phone(lead, region)
            if phone is None and isinstance(row["deal_id"], str):
                known = deal_of(store, row["deal_id"])
                phone = known["phone"] if known else None
            if phone is None and cid is not None:
                phone = _contact_phone(store, cid)
            if phone is None and isinstance(row["deal_id"], str) and row["deal_id"]:
                _wait(store, row, cid, now)
                waiting.append(row["deal_id"])
                continue
            rows.append({**row, "phone": phone})
    if rows:
        run(rows)
    out = result.as_dict()
    out["waiting"] = waiting
    out["contacts"] = contacts
    return out


def _contact_phone(store: Store, contact_id: str) -> str | None:
    cur = store.conn.cursor()
    cur.execute(store._sql("SELECT phone FROM crm_contacts WHERE contact_id = ?"), (contact_id,))
    row = cur.fetchone()
    return row[0] if row else None


def _wait(store: Store, row: dict[str, Any], contact_id: str | None, now: float) -> None:
    with store.transaction():
        store.conn.cursor().execute(store._sql(
            "INSERT INTO crm_waiting (deal_id, contact_id, row, at) VALUES (?, ?, ?, ?) ON CONFLICT (deal_id) "
            "DO UPDATE SET contact_id = COALESCE(excluded.contact_id, crm_waiting.contact_id), row = excluded.row, "
            "at = excluded.at"), (row["deal_id"], contact_id, orjson.dumps(row).decode(), now))


def _release(store: Store, contact_id: str, phone: str, linked: list[str], now: float) -> list[dict[str, Any]]:
    """Remember the contact's phone; the leads that waited for it, with it, taken off the list."""
    with store.transaction():
        cur = store.conn.cursor()
        cur.execute(store._sql(
            "INSERT INTO crm_contacts (contact_id, phone, at) VALUES (?, ?, ?) ON CONFLICT (contact_id) DO UPDATE "
            "SET phone = excluded.phone, at = excluded.at"), (contact_id, phone, now))
        linked = [str(x) for x in linked][:500]
        marks = ", ".join("?" for _ in linked)
        cur.execute(store._sql("SELECT deal_id, row FROM crm_waiting WHERE contact_id = ?" +
                               (f" OR deal_id IN ({marks})" if linked else "")), [contact_id] + linked)
        found = cur.fetchall()
        for deal_id, _ in found:
            cur.execute(store._sql("DELETE FROM crm_waiting WHERE deal_id = ?"), (deal_id,))
    return [{**orjson.loads(row), "phone": phone} for _, row in found]


def waiting(store: Store) -> list[str]:
    cur = store.conn.cursor()
    cur.execute("SELECT deal_id FROM crm_waiting ORDER BY at, deal_id")
    return [r[0] for r in cur.fetchall()]
