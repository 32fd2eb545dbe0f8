"""Deals from CRMs (files, the generic API, amoCRM and Bitrix24 webhooks), matched to calls."""
from __future__ import annotations

from .deals import STATUSES, DealError, ImportResult, import_deals, parse_deal
from .files import DealFileError, read_deal_file

__all__ = ["STATUSES", "DealError", "DealFileError", "ImportResult", "import_deals", "parse_deal", "read_deal_file"]
