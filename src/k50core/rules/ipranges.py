"""IP addresses and CIDR lists as integer ranges, compiled once at load."""
from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Range = tuple[int, int]
Ranges = tuple[tuple[Range, ...], tuple[Range, ...]]  # (IPv4, IPv6), sorted, merged


def ip_to_int(value: object) -> tuple[int, int] | None:
    """(version, integer) of an IP address string, or None.

    IPv4-mapped IPv6 (``::ffff:1.2.3.4``) counts as IPv4. Zone ids and IPv4
    octets with leading zeros are refused (as inet_pton does).
    """
    if not isinstance(value, str) or len(value) > 45 or "%" in value:
        return None
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        return None
    if ip.version == 6 and ip.ipv4_mapped is not None:
        return 4, int(ip.ipv4_mapped)
    return ip.version, int(ip)


def parse_network(text: str) -> tuple[int, int, int]:
    """(version, first, last) of a CIDR or a single address; ValueError if bad."""
    if not isinstance(text, str):
        raise ValueError(f"expected an IP network as a string, got {type(text).__name__}")
    try:
        net = ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise ValueError(f"bad IP network {text!r}") from None
    first, last = int(net.network_address), int(net.broadcast_address)
    if net.version == 6 and net.prefixlen >= 96 and (first >> 32) == 0xFFFF:
        return 4, first & 0xFFFFFFFF, last & 0xFFFFFFFF  # an IPv4-mapped block
    return net.version, first, last


def looks_like_network(text: object) -> bool:
    """Whether a list entry is meant as an address or CIDR (then it must parse)."""
    if not isinstance(text, str) or not text:
        return False
    t = text.strip()
    return (":" in t and all(c in "0123456789abcdefABCDEF:./" for c in t)) or (
        "." in t and all(c in "0123456789./" for c in t) and t[0].isdigit()
    )


def merge(networks: Iterable[tuple[int, int, int]]) -> Ranges:
    out: list[list[Range]] = [[], []]
    for version, first, last in sorted(networks):
        bucket = out[0 if version == 4 else 1]
        if bucket and first <= bucket[-1][1] + 1:
            if last > bucket[-1][1]:
                bucket[-1] = (bucket[-1][0], last)
        else:
            bucket.append((first, last))
    return tuple(out[0]), tuple(out[1])


def contains(ranges: Ranges, value: object) -> bool:
    """Whether an IP string lies in the ranges (reference of the compiled test)."""
    parsed = ip_to_int(value)
    if parsed is None:
        return False
    version, n = parsed
    bucket = ranges[0] if version == 4 else ranges[1]
    lo, hi = 0, len(bucket)
    while lo < hi:  # last range starting at or below n
        mid = (lo + hi) // 2
        if bucket[mid][0] <= n:
            lo = mid + 1
        else:
            hi = mid
    return lo > 0 and n <= bucket[lo - 1][1]
