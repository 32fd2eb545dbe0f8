"""Reports on the store: visits counted as the engine runs, calls, deals and cost, by source."""
from __future__ import annotations

from .dimensions import JOINT, KNOWN, SINGLE, ReportError, parse_by
from .query import COLUMNS, billed_minutes, pool_usage, report

__all__ = ["COLUMNS", "JOINT", "KNOWN", "SINGLE", "ReportError", "billed_minutes", "parse_by", "pool_usage",
           "report"]
