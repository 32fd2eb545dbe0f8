"""A report's dimensions as columns of ``report_calls`` (r): calls and deals are grouped in the
database (100,000 calls are not 100,000 rows read into Python), on plain columns filled from the
visit summary when the call was stored (``from_summary``: the same values visits are counted by)."""
from __future__ import annotations

from typing import Any

COLUMNS: dict[str, str] = {
    "source": "source", "traffic_type": "traffic_type", "query.utm_source": "utm_source",
    "query.utm_medium": "utm_medium", "query.utm_campaign": "utm_campaign", "query.utm_content": "utm_content",
    "query.utm_term": "utm_term", "landing.path": "landing_path", "landing.host": "landing_host",
    "referrer.host": "referrer_host", "geo.region": "region", "geo.city": "city", "geo.country": "country",
    "device.type": "device", "status": "status", "number": "number", "pool": "pool", "rule": "rule",
    "day": "day_start", "hour": "hour_start",
}
VISIT_DIMENSIONS = [d for d in COLUMNS if d not in ("status", "number", "pool", "rule", "day", "hour")]


def dimension(name: str) -> str:
    return "r." + COLUMNS[name]


def start_column(store: Any, since: float | None, until: float | None) -> str:
    """``r.started_at`` for the period's condition; on SQLite ``+r.started_at`` (no index) when the
    period holds a quarter of the calls or more: a scan in table order beats a row looked up for
    each index entry."""
    if store.backend != "sqlite" or (since is None and until is None):
        return "r.started_at"
    cur = store.conn.cursor()
    cur.execute("SELECT count(*) FROM report_calls")
    total = cur.fetchone()[0]
    where, args = ["started_at >= ?"], [since if since is not None else float("-inf")]
    if until is not None and until != float("inf"):
        where.append("started_at < ?")
        args.append(until)
    cur.execute("SELECT count(*) FROM report_calls WHERE " + " AND ".join(where), args)
    return "+r.started_at" if cur.fetchone()[0] * 4 >= total else "r.started_at"
