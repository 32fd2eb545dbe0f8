"""The visit's own fields: text, an IP address, cookies. Each accepts any object and never raises on
a bad one: what cannot be used comes back as absent (``None`` or ``{}``).

The plain-Python reference: the compiled enricher (``k50core._enrich``) answers the same for every
input, and calls these for the inputs it has no fast path for (str and bytes subclasses, mappings
other than a dict).
"""
from __future__ import annotations

import socket
from collections import abc
from typing import Any

from .url import MAX_FIELD

MAX_ID = 256
MAX_UA = 4096
MAX_COOKIES = 100
MAX_COOKIE_VALUE = 4096

__all__ = ["MAX_COOKIES", "MAX_COOKIE_VALUE", "MAX_ID", "MAX_UA", "clean_text", "parse_cookies", "valid_ip"]


def clean_text(value: Any, limit: int = MAX_FIELD) -> str | None:
    """A usable str, or None: bytes must be valid UTF-8, no lone surrogates, within limit."""
    if type(value) is str and len(value) <= limit and value.isascii():  # the usual case, first
        return value
    if isinstance(value, bytes):
        if len(value) > limit * 4:
            return None
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            return None
    if not isinstance(value, str) or len(value) > limit:
        return None
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates from a lossy decode
            return None
    return value


def valid_ip(text: str | None) -> str | None:
    if not text or len(text) > 45 or "%" in text:
        return None
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, text)
            return text
        except (OSError, ValueError):
            continue
    return None


def parse_cookies(raw: Any) -> dict[str, str]:
    """A dict of cookies from a mapping or a ``Cookie:`` header string."""
    pairs: Any
    if isinstance(raw, (dict, abc.Mapping)):
        pairs = raw.items()
    else:
        header = clean_text(raw)
        if not header:
            return {}
        pairs = (part.split("=", 1) for part in header.split(";") if "=" in part)
    out: dict[str, str] = {}
    for key, value in pairs:
        key, value = clean_text(key, 256), clean_text(value, MAX_COOKIE_VALUE)
        if key is None or value is None:
            continue
        key = key.strip()
        if key and key not in out:
            out[key] = value.strip().strip('"')
            if len(out) >= MAX_COOKIES:
                break
    return out
