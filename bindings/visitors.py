"""What every host binding agrees on about a visitor: the cookie and the client's address.

The service and the middleware both read the ``k50_vid`` cookie and resolve the
client IP behind trusted proxies; keeping it here means they cannot drift apart.
"""
from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from typing import Any

VISITOR_COOKIE = "k50_vid"
COOKIE_MAX_AGE = 365 * 24 * 3600
VISITOR_ID = re.compile(r"\A[A-Za-z0-9._~-]{1,128}\Z")  # a visitor id we accept as a cookie value


def networks(items: Iterable[str]) -> list[Any]:
    """Addresses or CIDR networks (e.g. trusted proxies) as ip_network objects."""
    return [ipaddress.ip_network(i, strict=False) for i in items]


def address_or_none(text: str | None) -> Any | None:
    """The ipaddress object of an address string; None for anything else."""
    try:
        return ipaddress.ip_address((text or "").strip())
    except ValueError:
        return None


def client_ip(peer: str | None, forwarded: Iterable[str], trusted: list[Any]) -> str | None:
    """The peer's address; X-Forwarded-For only when the peer is a trusted proxy (the rightmost
    address not itself a trusted proxy is the client)."""
    ip = address_or_none(peer)
    if ip is None:
        return None
    if trusted and any(ip in n for n in trusted):
        hops = [h for part in forwarded for h in part.split(",")]
        for hop in reversed(hops):
            hop_ip = address_or_none(hop)
            if hop_ip is None:
                break
            if not any(hop_ip in n for n in trusted):
                return str(hop_ip)
    return str(ip)
