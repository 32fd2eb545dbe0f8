"""The ``reports:`` and ``crm:`` sections of a config::

    reports: {plan: provider | own | code, package: 10k, plans_file: my-plans.yaml}
    crm: {match_days: 30, amocrm_token: SECRET, amocrm_subdomain: sofashop,
          bitrix24_application_token: SECRET, bitrix24_rest_url: https://example.bitrix24.ru/rest/1/KEY/}
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

_REPORT_KEYS = {"plan", "package", "plans_file"}
_CRM_KEYS = {"match_days", "amocrm_token", "amocrm_subdomain", "bitrix24_application_token", "bitrix24_rest_url"}
_SUBDOMAIN = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_URL_SAFE = re.compile(r"[A-Za-z0-9_-]+")
PLANS = ("provider", "own", "code")
MAX_MATCH_DAYS = 366


def _section(raw: Any, place: str, keys: set[str], problems: list[tuple[str, str]]) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        problems.append((place, "expected a mapping"))
        return {}
    for k in raw:
        if k not in keys:
            problems.append((f"{place}.{k}", f"unknown key (expected one of {', '.join(sorted(keys))})"))
    return {k: v for k, v in raw.items() if k in keys}


def _text(out: dict[str, Any], key: str, place: str, problems: list[tuple[str, str]],
          check: Callable[[str], bool] = lambda s: True, what: str = "a string") -> None:
    value = out.get(key)
    if value is not None and (not isinstance(value, str) or not value or len(value) > 512 or not check(value)):
        problems.append((f"{place}.{key}", f"expected {what}"))
        out.pop(key, None)


def parse_reports(raw: Any) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    problems: list[tuple[str, str]] = []
    out = _section(raw, "reports", _REPORT_KEYS, problems)
    if out.get("plan", "provider") not in PLANS:
        problems.append(("reports.plan", f"expected one of {', '.join(PLANS)}"))
        out.pop("plan")
    _text(out, "package", "reports", problems)
    _text(out, "plans_file", "reports", problems, what="a file path")
    return out, problems


def parse_crm(raw: Any) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    problems: list[tuple[str, str]] = []
    out = _section(raw, "crm", _CRM_KEYS, problems)
    days = out.get("match_days", 30)
    if isinstance(days, bool) or not isinstance(days, (int, float)) or not 0 < days <= MAX_MATCH_DAYS:
        problems.append(("crm.match_days", f"expected a number of days from 1 to {MAX_MATCH_DAYS}"))
        days = 30
    out["match_days"] = float(days)
    _text(out, "amocrm_token", "crm", problems, lambda s: len(s) >= 32 and _URL_SAFE.fullmatch(s) is not None,
          "a secret of at least 32 letters, digits, '-' or '_' (it is the webhook URL's last path segment: "
          "python -c 'import secrets; print(secrets.token_urlsafe(32))')")
    _text(out, "amocrm_subdomain", "crm", problems, lambda s: _SUBDOMAIN.fullmatch(s.lower()) is not None,
          "the account's amoCRM subdomain (SUBDOMAIN of SUBDOMAIN.amocrm.ru): letters, digits and '-'")
    if "amocrm_subdomain" in out:
        out["amocrm_subdomain"] = out["amocrm_subdomain"].lower()
    _text(out, "bitrix24_application_token", "crm", problems, lambda s: len(s) >= 16,
          "a secret of at least 16 characters")
    _text(out, "bitrix24_rest_url", "crm", problems, lambda s: s.startswith(("https://", "http://")),
          "an http(s) URL (the portal's inbound webhook: https://PORTAL/rest/USER/KEY/)")
    return out, problems
