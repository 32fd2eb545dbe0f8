"""GeoIP region lookups, plain-Python reference.

Decodes the whole MaxMind DB record with ``maxminddb`` and reads three fields
from the dict; this defines the answers the compiled build must reproduce.
"""
from __future__ import annotations

import os
from ipaddress import IPv4Address, IPv6Address
from typing import Any

import maxminddb

Triple = tuple[str | None, str | None, str | None]
_NONE3: Triple = (None, None, None)


def default_path() -> str:
    """The GeoLite2-City database shipped by the maxminddb-geolite2 package."""
    from _maxminddb_geolite2 import geolite2_database

    return os.fsdecode(geolite2_database())


def open_reader(path: str | os.PathLike[str] | None) -> tuple[str, Any]:
    """(path as str, maxminddb Reader); errors name the path."""
    path = default_path() if path is None else os.fsdecode(path)
    try:
        return path, maxminddb.open_database(path)
    except OSError as e:  # missing file, permissions: keep the errno subclass
        raise OSError(e.errno, f"cannot open GeoIP database: {e.strerror}", path) from e
    except (maxminddb.InvalidDatabaseError, ValueError) as e:
        raise ValueError(f"{path!r} is not a MaxMind DB file: {e}") from e


def _str(d: Any, key: str) -> str | None:
    """d[key] when d is a dict and the value a str, else None."""
    v = d.get(key) if isinstance(d, dict) else None
    return v if isinstance(v, str) else None


def triple(record: Any) -> Triple:
    """(country iso, "CC-SUB" region, English city name) of a decoded record."""
    if not isinstance(record, dict):
        return _NONE3
    country = _str(record.get("country"), "iso_code")
    subs = record.get("subdivisions")
    sub = _str(subs[0], "iso_code") if isinstance(subs, list) and subs else None
    city = record.get("city")
    name = _str(city.get("names"), "en") if isinstance(city, dict) else None
    region = f"{country}-{sub}" if country is not None and sub is not None else None
    return country, region, name


class GeoIP:
    """Country / region / city of an IP address from a MaxMind DB file."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path, self._reader = open_reader(path)

    def lookup(self, ip: object) -> Triple:
        """(country iso, region, city name); all None for unknown or invalid ip."""
        # maxminddb also takes ipaddress objects; anything else is not an address
        if not isinstance(ip, (str, IPv4Address, IPv6Address)):
            return _NONE3
        try:
            record = self._reader.get(ip)
        except (TypeError, ValueError):  # unparsable, lone surrogate, NUL, v6 in v4 db
            return _NONE3
        return triple(record)

    def region(self, ip: object) -> str | None:
        """"CC-SUB" (e.g. "RU-MOW") or None."""
        return self.lookup(ip)[1]

    def country(self, ip: object) -> str | None:
        """Country ISO code (e.g. "RU") or None."""
        return self.lookup(ip)[0]

    def regions(self, ips: list[object]) -> list[str | None]:
        """region() of each address."""
        return [self.lookup(ip)[1] for ip in ips]
