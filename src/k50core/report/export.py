"""A report as CSV (RFC 4180, CRLF), cells escaped against spreadsheet formulas: utm tags and
pages come from visitors' URLs."""
from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from .query import COLUMNS


def report_csv(rows: Sequence[dict[str, Any]], by: Sequence[str]) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(list(by) + ["unmatched"] + list(COLUMNS))
    for r in rows:
        w.writerow([cell(r[d]) for d in by] + [r["unmatched"]] + [cell(r[c]) for c in COLUMNS])
    return out.getvalue()


def cell(value: Any) -> str:
    """A cell no spreadsheet reads as a formula (OWASP: a leading quote before = + - @ tab CR)."""
    if value is None:
        return ""
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
