"""PHP-style form fields (``leads[add][0][id]=1``), as amoCRM and Bitrix24 post their webhooks,
read into nested dicts with bounds (depth, fields, key length): the body comes from anyone."""
from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl

from .deals import DealError

MAX_FIELDS = 2000
MAX_DEPTH = 12
_KEY = re.compile(r"^([^\[\]]{1,100})((?:\[[^\[\]]{0,100}\]){0,12})$")
_PART = re.compile(r"\[([^\[\]]{0,100})\]")


def decode(body: bytes) -> list[tuple[str, str]]:
    try:
        return parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise DealError([("body", f"expected a UTF-8 form (application/x-www-form-urlencoded) of at most "
                                  f"{MAX_FIELDS} fields")]) from None


def nested(pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """``a[b][0][c]=v`` pairs as {"a": {"b": {"0": {"c": "v"}}}}; a key that is not of that shape,
    or that clashes with another (a value and a mapping at one place), is a DealError naming it."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        m = _KEY.match(key)
        if m is None:
            raise DealError([(key[:100], "not a form field name of the form a[b][c]")])
        parts = [m.group(1)] + _PART.findall(m.group(2))
        if len(parts) > MAX_DEPTH:
            raise DealError([(key[:100], f"nested deeper than {MAX_DEPTH}")])
        here = out
        for part in parts[:-1]:
            nxt = here.setdefault(part, {})
            if not isinstance(nxt, dict):
                raise DealError([(key[:100], "a value and a group of fields under one name")])
            here = nxt
        if isinstance(here.get(parts[-1]), dict):
            raise DealError([(key[:100], "a value and a group of fields under one name")])
        here[parts[-1]] = value
    return out


def items(group: Any) -> list[dict[str, Any]]:
    """The entries of a numbered group ({"0": {...}, "1": {...}}), in order; others skipped."""
    if not isinstance(group, dict):
        return []
    return [group[k] for k in sorted(group, key=lambda k: (len(k), k)) if isinstance(group[k], dict)]
