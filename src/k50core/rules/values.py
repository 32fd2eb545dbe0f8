"""Value semantics of the condition language (GrowthBook-compatible).

Shared by the compiler and both VMs so the two builds cannot drift:
JSON-strict equality (``True`` is not ``1``, containers only by deep value),
JavaScript relational comparison (strings by UTF-16 code units, otherwise
both sides as numbers, a missing value counting as 0), and GrowthBook's
padded version strings for ``$veq`` … ``$vgte``.
"""
from __future__ import annotations

import math
import re
from functools import lru_cache
from typing import Any

NAN = float("nan")
_JS_DECIMAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\Z")
_JS_RADIX = {"0x": 16, "0o": 8, "0b": 2}


def js_type(v: Any) -> str:
    """The JSON type name ``$type`` compares with."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, (list, tuple)):
        return "array"
    if isinstance(v, dict):
        return "object"
    return "unknown"


def deep_equal(a: Any, b: Any) -> bool:
    """Literal equality: same JSON type at every level, keys in the same order."""
    ta = js_type(a)
    if ta != js_type(b):
        return False
    if ta == "array":
        return len(a) == len(b) and all(deep_equal(x, y) for x, y in zip(a, b))
    if ta == "object":
        return list(a) == list(b) and all(deep_equal(a[k], b[k]) for k in a)
    if ta == "unknown":
        return False
    return bool(a == b)


def js_number(v: Any) -> float:
    """JavaScript ToNumber for the values a condition can compare."""
    if v is None or v is False:
        return 0.0
    if v is True:
        return 1.0
    if isinstance(v, (int, float)):
        try:
            return float(v)
        except OverflowError:
            return math.inf if v > 0 else -math.inf
    if isinstance(v, str):
        return _string_number(v)
    return NAN  # arrays and objects are not ordered here


@lru_cache(maxsize=4096)
def _string_number(s: str) -> float:
    s = s.strip()
    if not s:
        return 0.0
    if s in ("Infinity", "+Infinity"):
        return math.inf
    if s == "-Infinity":
        return -math.inf
    radix = _JS_RADIX.get(s[:2].lower())
    if radix:
        try:
            return float(int(s[2:], radix)) if s[2:].isalnum() else NAN
        except ValueError:
            return NAN
    if _JS_DECIMAL.match(s):
        try:
            return float(s)
        except OverflowError:  # pragma: no cover - float() saturates to inf
            return math.inf
    return NAN


def utf16_compare(a: str, b: str) -> int:
    """Order two strings as JavaScript does (by UTF-16 code units)."""
    if a.isascii() and b.isascii():
        return (a > b) - (a < b)
    ua = a.encode("utf-16-be", "surrogatepass")
    ub = b.encode("utf-16-be", "surrogatepass")
    return (ua > ub) - (ua < ub)


def js_compare(v: Any, literal: Any, flag: int) -> bool:
    """``v <op> literal`` with JS semantics; flag 0:< 1:<= 2:> 3:>=."""
    if isinstance(v, str) and isinstance(literal, str):
        c = utf16_compare(v, literal)
    else:
        x, y = js_number(v), js_number(literal)
        if x != x or y != y:  # NaN orders with nothing
            return False
        c = (x > y) - (x < y)
    if flag == 0:
        return c < 0
    if flag == 1:
        return c <= 0
    if flag == 2:
        return c > 0
    return c >= 0


def js_number_string(x: float) -> str:
    """JavaScript String(number) for the version operators."""
    if x != x:
        return "NaN"
    if x in (math.inf, -math.inf):
        return "Infinity" if x > 0 else "-Infinity"
    if x == int(x) and abs(x) < 1e21:
        return str(int(x))
    return repr(x)


def padded_version(v: Any) -> str:
    """GrowthBook's padded version string, so versions compare as strings."""
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        v = js_number_string(float(v))
    if not v or not isinstance(v, str):
        v = "0"
    return _padded(v)


_VER_STRIP = re.compile(r"(^v|\+.*$)")
_VER_SPLIT = re.compile(r"[-.]")


@lru_cache(maxsize=4096)
def _padded(s: str) -> str:
    parts = _VER_SPLIT.split(_VER_STRIP.sub("", s))
    if len(parts) == 3:
        parts.append("~")  # a release sorts after its pre-releases
    return "-".join(p.rjust(5, " ") if p.isdigit() else p for p in parts)


def version_compare(v: Any, padded_literal: str, flag: int, literal_is_str: bool) -> bool:
    """``$veq`` … ``$vgte``; flag as js_compare, 4:== 5:!=.

    Only two strings or two numbers compare; otherwise only ``$vne`` holds.
    """
    if isinstance(v, bool) or not (
        isinstance(v, str) if literal_is_str else isinstance(v, (int, float))
    ):
        return flag == 5
    a = padded_version(v)
    if flag == 4:
        return a == padded_literal
    if flag == 5:
        return a != padded_literal
    c = (a > padded_literal) - (a < padded_literal)
    return (c < 0, c <= 0, c > 0, c >= 0)[flag]
