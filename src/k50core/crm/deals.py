"""Deals from a CRM, each matched to the call that brought it.

A deal is ``deal_id``, ``phone``, ``created_at``, ``amount``, ``status`` (won, lost or open) and
optionally ``currency`` and ``title``. It belongs to the most recent call from that phone (E.164,
normalised with phonenumbers in the site's region) that started before the deal was created and
at most ``match_days`` before; otherwise it is unattributed. Importing a deal again updates it:
the import is idempotent by ``deal_id``.
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ..config.phones import normalise
from ..errors import Error
from ..report.storage import update_deal_figures
from ..store.base import Store

STATUSES = ("won", "lost", "open")
_DEAL_ID = re.compile(r"^[\x21-\x7e]{1,128}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
MAX_TITLE = 500
MAX_AMOUNT = 1e15
EARLIEST = 946684800.0  # 2000-01-01: an earlier "created_at" is a unit mistake (milliseconds, days)
MAX_AHEAD = 86400.0


class DealError(Error, ValueError):
    """A deal that cannot be imported; ``problems`` lists (field, message)."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{f}: {m}" for f, m in problems))


@dataclass
class ImportResult:
    """What an import did: deal ids imported (new) and updated, the unattributed among them, and
    each refused row with its place (``row``: index in the rows given) and reason."""
    imported: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unattributed: list[str] = field(default_factory=list)
    refused: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"imported": self.imported, "updated": self.updated, "unattributed": self.unattributed,
                "refused": self.refused}


def parse_time(value: Any) -> float | None:
    """Unix seconds from a number, a numeric string or an ISO 8601 time (UTC when it has no zone)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        number = float(value) if not isinstance(value, int) or abs(value) < 1e18 else math.inf
        return number if math.isfinite(number) else None
    if not isinstance(value, str) or not value.strip() or len(value) > 64:
        return None
    text = value.strip()
    try:
        number = float(text)
        return number if math.isfinite(number) else None
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


def _amount(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip().replace(" ", "").replace("\u00a0", "")
        if not text or len(text) > 32:
            return None
        if "," in text and "." not in text:
            text = text.replace(",", ".")  # 1500,50 as a Russian CRM writes it
        try:
            value = float(text)
        except ValueError:
            return None
    if not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) and 0 <= number <= MAX_AMOUNT else None


def parse_deal(row: Any, region: str, now: float) -> dict[str, Any]:
    """A checked, normalised deal; DealError names every bad field."""
    if not isinstance(row, Mapping):
        raise DealError([("deal", "expected an object with deal_id, phone, created_at, amount, status")])
    problems: list[tuple[str, str]] = []
    deal_id = row.get("deal_id")
    if isinstance(deal_id, int) and not isinstance(deal_id, bool):
        deal_id = str(deal_id)
    if not isinstance(deal_id, str) or not _DEAL_ID.match(deal_id.strip()):
        problems.append(("deal_id", "expected 1-128 printable ASCII characters"))
    else:
        deal_id = deal_id.strip()
    phone = normalise(row.get("phone"), region)
    if phone is None:
        shown = str(row.get("phone"))[:40] if row.get("phone") not in (None, "") else "missing"
        problems.append(("phone", f"not a valid phone number: {shown!r}" if shown != "missing" else "missing"))
    created = parse_time(row.get("created_at"))
    if created is None:
        problems.append(("created_at", "expected unix seconds or an ISO 8601 time"))
    elif not EARLIEST <= created <= now + MAX_AHEAD:
        problems.append(("created_at", "expected a time from 2000 to a day after now (unix seconds, not ms)"))
    amount = _amount(row.get("amount", 0) if row.get("amount") not in (None, "") else 0)
    if amount is None:
        problems.append(("amount", f"expected a non-negative number up to {MAX_AMOUNT:.0e}"))
    status = row.get("status")
    status = status.strip().lower() if isinstance(status, str) else status
    if status not in STATUSES:
        problems.append(("status", f"expected one of {', '.join(STATUSES)}"))
    currency = row.get("currency")
    if currency in (None, ""):
        currency = None
    elif not isinstance(currency, str) or not _CURRENCY.match(currency.strip().upper()):
        problems.append(("currency", "expected a three-letter ISO 4217 code, e.g. RUB"))
    else:
        currency = currency.strip().upper()
    title = row.get("title")
    if title in (None, ""):
        title = None
    elif not isinstance(title, str) or len(title) > MAX_TITLE or not title.isprintable():
        problems.append(("title", f"expected printable text of at most {MAX_TITLE} characters"))
    if problems:
        raise DealError(problems)
    return {"deal_id": deal_id, "phone": phone, "created_at": created, "amount": amount, "status": status,
            "currency": currency, "title": title}


def match_call(store: Store, phone: str, created_at: float, match_days: float) -> str | None:
    """The most recent call from ``phone`` that started before ``created_at``, within the window."""
    cur = store.conn.cursor()
    cur.execute(store._sql(
        "SELECT call_id FROM calls WHERE caller = ? AND started_at <= ? AND started_at >= ? "
        "ORDER BY started_at DESC, call_id DESC LIMIT 1"), (phone, created_at, created_at - match_days * 86400.0))
    row = cur.fetchone()
    return row[0] if row else None


def import_deals(store: Store, rows: Sequence[Any], *, region: str = "RU", match_days: float = 30.0,
                 now: float, origin: str = "api") -> ImportResult:
    """Check, match and store ``rows`` (one transaction); refused rows are reported, not raised."""
    result = ImportResult()
    good: dict[str, tuple[int, dict[str, Any]]] = {}
    for i, row in enumerate(rows):
        try:
            deal = parse_deal(row, region, now)
        except DealError as exc:
            deal_id = row.get("deal_id") if isinstance(row, Mapping) else None
            result.refused.append({"row": i, "deal_id": deal_id if isinstance(deal_id, (str, int)) else None,
                                   "reason": str(exc), "problems": [{"field": f, "message": m}
                                                                    for f, m in exc.problems]})
            continue
        good[deal["deal_id"]] = (i, deal)  # the same deal twice in one import: the later row wins
    if not good:
        return result
    with store.transaction():
        cur = store.conn.cursor()
        before: dict[str, str | None] = {}  # known deals -> the call they belonged to (it may lose them)
        ids = list(good)
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            cur.execute(store._sql(
                f"SELECT deal_id, call_id FROM deals WHERE deal_id IN ({', '.join('?' for _ in chunk)})"), chunk)
            before.update((r[0], r[1]) for r in cur.fetchall())
        stored = []
        for deal_id, (_, d) in good.items():
            call_id = match_call(store, d["phone"], d["created_at"], match_days)
            stored.append((deal_id, d["phone"], d["created_at"], d["amount"], d["status"], d["currency"], d["title"],
                           call_id, origin, now))
            (result.updated if deal_id in before else result.imported).append(deal_id)
            if call_id is None:
                result.unattributed.append(deal_id)
        cur.executemany(store._sql(
            "INSERT INTO deals (deal_id, phone, created_at, amount, status, currency, title, call_id, origin, "
            "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (deal_id) DO UPDATE SET "
            "phone = excluded.phone, created_at = excluded.created_at, amount = excluded.amount, "
            "status = excluded.status, currency = excluded.currency, title = excluded.title, "
            "call_id = excluded.call_id, origin = excluded.origin, updated_at = excluded.updated_at"), stored)
        update_deal_figures(store, cur, [row[7] for row in stored] + list(before.values()))
    return result


def deal_of(store: Store, deal_id: str) -> dict[str, Any] | None:
    cur = store.conn.cursor()
    cur.execute(store._sql("SELECT deal_id, phone, created_at, amount, status, currency, title, call_id, origin "
                           "FROM deals WHERE deal_id = ?"), (deal_id,))
    row = cur.fetchone()
    keys = ("deal_id", "phone", "created_at", "amount", "status", "currency", "title", "call_id", "origin")
    return dict(zip(keys, row)) if row else None
