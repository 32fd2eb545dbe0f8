"""GeoIP: known answers, compiled == reference (maxminddb), bad input, bad paths.

The compiled build is checked against the reference on the bundled GeoLite2
City database and on small databases written here (record sizes 24/28/32,
IPv4-only and IPv6 trees), since GeoLite2 only exercises record size 28.
"""
from __future__ import annotations

import ipaddress
import os
import random
import re
import struct
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from k50core import _impl

BUILDS = _impl.available()


def _build(name: str) -> ModuleType:
    """The named build; a missing compiled build fails unless extensions are off."""
    if name not in BUILDS:
        if os.environ.get("K50CORE_NO_EXTENSIONS"):
            pytest.skip("K50CORE_NO_EXTENSIONS is set")
        pytest.fail("compiled k50core._engine is missing: run `python setup.py build_ext --inplace`")
    return BUILDS[name]


@pytest.fixture(scope="module", params=["reference", "compiled"])
def geo(request: pytest.FixtureRequest) -> Any:
    return _build(request.param).GeoIP()


@pytest.fixture(scope="module")
def pair() -> tuple[Any, Any]:
    """(compiled, reference) on the bundled GeoLite2-City."""
    return _build("compiled").GeoIP(), _build("reference").GeoIP()


def _same(pair: tuple[Any, Any], ips: list[object]) -> None:
    compiled, reference = pair
    for ip in ips:
        assert compiled.lookup(ip) == reference.lookup(ip), ip
    assert compiled.regions(ips) == reference.regions(ips)


# ---- known answers ----------------------------------------------------------

@pytest.mark.parametrize(
    "ip, country, region, city",
    [
        ("77.88.55.55", "RU", None, None),
        ("81.19.70.1", "RU", "RU-MOW", "Moscow"),
        ("178.213.112.75", "RU", "RU-MOW", "Moscow"),
        ("213.180.204.3", "RU", "RU-SPE", "St Petersburg"),
        ("188.134.81.96", "RU", "RU-SPE", "St Petersburg"),
        ("::ffff:81.19.70.1", "RU", "RU-MOW", "Moscow"),
        ("2001:4860:4860::8888", "US", "US-CA", "Mountain View"),
        ("127.0.0.1", None, None, None),
        ("10.1.2.3", None, None, None),
    ],
)
def test_known(geo: Any, ip: str, country: str | None, region: str | None, city: str | None) -> None:
    assert geo.lookup(ip) == (country, region, city)
    assert geo.region(ip) == region
    assert geo.country(ip) == country
    assert geo.regions([ip, ip]) == [region, region]


def test_default_path(geo: Any) -> None:
    from _maxminddb_geolite2 import geolite2_database

    assert geo.path == os.fsdecode(geolite2_database())
    assert type(geo).__name__ == "GeoIP"


BAD = [None, 123, 1.5, [], b"1.2.3.4", bytearray(b"1.2.3.4"), "", " ", "999.1.1.1", "1.2.3.4.5",
       "1.2.3.4 ", " 1.2.3.4", "::gggg", "\udcff", "1.2.3.4\udcff", "77.88.55.55\x00", "a" * 100_000,
       "1" * 100_000, "::" + "1:" * 50_000, "fe80::1%zz", "ｌ.２.３.４"]


@pytest.mark.parametrize("ip", BAD, ids=lambda v: repr(v)[:20])
def test_bad_input_is_none(geo: Any, ip: object) -> None:
    assert geo.lookup(ip) == (None, None, None)
    assert geo.region(ip) is None and geo.country(ip) is None
    assert geo.regions([ip]) == [None]


# Forms libc's getaddrinfo (and so maxminddb) accepts besides plain ones.
ODD = ["1.2.3", "81.19.70.1\n", "010.1.1.1", "01.2.3.4", "0x51.19.70.1", "81.19.17921", "127.1",
       "4294967295", "0" * 40 + "81.19.70.1", "fe80::1%1", "::81.19.70.1", "::FFFF:81.19.70.1",
       "2002:5113:4601::", "0:0:0:0:0:ffff:5113:4601", ipaddress.ip_address("81.19.70.1"),
       ipaddress.ip_address("2001:4860:4860::8888")]


@pytest.mark.parametrize("ip", BAD + ODD, ids=lambda v: repr(v)[:20])
def test_odd_input_same_as_reference(pair: tuple[Any, Any], ip: object) -> None:
    _same(pair, [ip])


# ---- compiled == reference ----------------------------------------------------

def test_random_10k(pair: tuple[Any, Any]) -> None:
    rnd = random.Random(50)
    v4 = [str(ipaddress.IPv4Address(rnd.getrandbits(32))) for _ in range(8000)]
    # random IPv6 is mostly unallocated: sample the big RIR blocks and 6to4 (2002::/16)
    blocks = [(0x2001, 16), (0x2002, 16), (0x2A0, 12), (0x240, 12), (0x260, 12), (0x280, 12)]
    v6 = [str(ipaddress.IPv6Address(top << (128 - bits) | rnd.getrandbits(128 - bits)))
          for top, bits in (rnd.choice(blocks) for _ in range(1500))]
    mapped = [f"::ffff:{ip}" for ip in v4[:500]]
    ips = v4 + v6 + mapped
    assert sum(pair[1].country(ip) is not None for ip in v6) > 200  # the v6 sample hits data
    _same(pair, ips)


@settings(max_examples=400, deadline=None)
@given(st.ip_addresses(v=4))
def test_property_v4(pair: tuple[Any, Any], ip: ipaddress.IPv4Address) -> None:
    _same(pair, [str(ip), ip, f"::ffff:{ip}", f"::{ip}"])


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.ip_addresses(v=6), st.integers(0, 2**125 - 1).map(lambda n: ipaddress.IPv6Address((1 << 125) | n))))
def test_property_v6(pair: tuple[Any, Any], ip: ipaddress.IPv6Address) -> None:
    _same(pair, [str(ip), ip, ip.exploded])


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=40), st.from_regex(r"[0-9a-fA-Fx:.%]{1,45}", fullmatch=True)))
def test_property_any_text(pair: tuple[Any, Any], text: str) -> None:
    _same(pair, [text])


# ---- bad paths ------------------------------------------------------------------

@pytest.mark.parametrize("name", ["reference", "compiled"])
def test_bad_paths(name: str, tmp_path: Path) -> None:
    GeoIP = _build(name).GeoIP
    junk = tmp_path / "junk.mmdb"
    junk.write_bytes(os.urandom(4096))
    empty = tmp_path / "empty.mmdb"
    empty.write_bytes(b"")
    for path in (tmp_path / "missing.mmdb", tmp_path, junk, empty):
        with pytest.raises((ValueError, OSError), match=re.escape(str(path))):
            GeoIP(path)


# ---- small hand-written databases: other record sizes and tree shapes ---------
# A minimal MaxMind DB writer (format spec: maxmind.github.io/MaxMind-DB).

def _ctrl(kind: int, size: int) -> bytes:
    head, ext = (kind << 5, b"") if kind <= 7 else (0, bytes([kind - 7]))
    if size < 29:
        return bytes([head | size]) + ext
    if size < 285:
        return bytes([head | 29]) + ext + bytes([size - 29])
    if size < 65821:
        return bytes([head | 30]) + ext + (size - 285).to_bytes(2, "big")
    return bytes([head | 31]) + ext + (size - 65821).to_bytes(3, "big")


def _uint(kind: int, n: int) -> bytes:
    raw = n.to_bytes(16, "big").lstrip(b"\0")
    return _ctrl(kind, len(raw)) + raw


def _pointer(offset: int) -> bytes:
    """Pointer to a data-section offset, in the shortest of the four encodings."""
    if offset < 2048:
        return bytes([0x20 | offset >> 8, offset & 0xFF])
    if offset < 526336:
        v = offset - 2048
        return bytes([0x28 | v >> 16]) + (v & 0xFFFF).to_bytes(2, "big")
    if offset < 134744064:
        v = offset - 526336
        return bytes([0x30 | v >> 24]) + (v & 0xFFFFFF).to_bytes(3, "big")
    return bytes([0x38]) + offset.to_bytes(4, "big")


class U16(int):
    pass


class U64(int):
    pass


class Ptr(int):
    """A value written as a pointer to this data-section offset."""


class Pairs(list):
    """A map given as (key, value) pairs, so keys may repeat."""


def _enc(v: Any) -> bytes:
    if isinstance(v, Ptr):
        return _pointer(int(v))
    if isinstance(v, bool):
        return _ctrl(14, int(v))
    if isinstance(v, U16):
        return _uint(5, v)
    if isinstance(v, U64):
        return _uint(9, v)
    if isinstance(v, int):
        return _uint(6, v)
    if isinstance(v, float):
        return _ctrl(3, 8) + struct.pack(">d", v)
    if isinstance(v, str):
        raw = v.encode()
        return _ctrl(2, len(raw)) + raw
    if isinstance(v, list) and not isinstance(v, Pairs):
        return _ctrl(11, len(v)) + b"".join(map(_enc, v))
    pairs = list(v.items() if isinstance(v, dict) else v)
    return _ctrl(7, len(pairs)) + b"".join(_enc(k) + _enc(x) for k, x in pairs)


def write_mmdb(path: Path, nets: dict[str, Any], record_size: int, ip_version: int,
               shared: Any = None, alias_mapped: bool = True) -> None:
    """nets: CIDR -> record; `shared` is placed first so records can Ptr(0) to it."""
    data = bytearray(_enc(shared) if shared is not None else b"")
    offsets: dict[str, int] = {}
    for cidr, record in nets.items():
        offsets[cidr] = len(data)
        data += _enc(record)
    nodes: list[list[Any]] = [[None, None]]  # child: ("n", index) | ("d", offset) | None

    def put(bits: int, plen: int, total: int, value: tuple[str, int]) -> None:
        n = 0
        for i in range(plen - 1):
            b = (bits >> (total - 1 - i)) & 1
            if nodes[n][b] is None:
                nodes.append([None, None])
                nodes[n][b] = ("n", len(nodes) - 1)
            assert nodes[n][b][0] == "n", "networks must not nest"
            n = nodes[n][b][1]
        nodes[n][(bits >> (total - plen)) & 1] = value

    total = 32 if ip_version == 4 else 128
    for cidr, off in offsets.items():
        net = ipaddress.ip_network(cidr)
        shift = 96 if net.version == 4 and ip_version == 6 else 0
        put(int(net.network_address), net.prefixlen + shift, total, ("d", off))
    if ip_version == 6 and alias_mapped:  # ::ffff:0:0/96 -> the node IPv4 lives under
        n = 0
        for _ in range(96):
            n = nodes[n][0][1]
        put(0xFFFF << 32, 96, 128, ("n", n))
    count = len(nodes)

    def rec(child: Any) -> int:
        return count if child is None else child[1] if child[0] == "n" else count + 16 + child[1]

    tree = bytearray()
    for left, right in nodes:
        a, b = rec(left), rec(right)
        if record_size == 28:
            tree += (a & 0xFFFFFF).to_bytes(3, "big") + bytes([(a >> 24) << 4 | b >> 24])
            tree += (b & 0xFFFFFF).to_bytes(3, "big")
        else:
            tree += a.to_bytes(record_size // 8, "big") + b.to_bytes(record_size // 8, "big")
    meta = {"binary_format_major_version": U16(2), "binary_format_minor_version": U16(0),
            "build_epoch": U64(1700000000), "database_type": "k50-test", "description": {"en": "test"},
            "ip_version": U16(ip_version), "languages": ["en"], "node_count": count,
            "record_size": U16(record_size)}
    path.write_bytes(bytes(tree) + bytes(16) + bytes(data) + b"\xab\xcd\xefMaxMind.com" + _enc(meta))


def _city(cc: Any, sub: Any = None, city: Any = None) -> dict[str, Any]:
    r: dict[str, Any] = {"continent": {"code": "EU"}, "location": {"latitude": 55.75, "longitude": 37.6}}
    if cc is not None:
        r["country"] = {"iso_code": cc, "geoname_id": 2017370, "is_in_european_union": False}
    if sub is not None:
        r["subdivisions"] = sub
    if city is not None:
        r["city"] = {"geoname_id": 524901, "names": city}
    return r


NETS: dict[str, Any] = {
    "81.19.70.0/24": _city("RU", [{"iso_code": "MOW"}, {"iso_code": "X"}], {"en": "Moscow", "ru": "Москва"}),
    "81.19.71.0/25": _city("RU", [{"iso_code": "SPE", "names": {"en": "St.-Petersburg"}}], {"ru": "Питер"}),
    "81.19.72.0/21": _city("RU", []),                                # empty subdivisions
    "10.0.0.0/8": _city(None, [{"iso_code": "MOW"}]),                 # no country
    "11.0.0.0/8": {"country": "RU"},                                  # country is not a map
    "1.0.0.0/8": _city(7, [{"iso_code": "A"}], {"en": 5}),            # non-string values
    "2.0.0.0/8": _city("DE", [{"names": {"en": "x"}}, {"iso_code": "B"}], {"en": "Köln"}),
    "3.0.0.0/8": Pairs([("country", {"iso_code": "FR"}), ("country", {"iso_code": "IT"})]),  # dup key
    "4.0.0.0/8": _city("ES", ["MD"], {"en": True}),                   # subdivision not a map
    "5.0.0.0/8": {"country": {"iso_code": Ptr(0)}, "city": Ptr(0)},   # pointers
    "6.0.0.0/8": _city("US", [{"iso_code": "C" * 300}], {"en": "é" * 40000}),  # long strings
    "7.0.0.0/8": "not a map",
    "128.0.0.0/1": _city("JP", [{"iso_code": "13"}], {"en": "Tokyo"}),
}
NETS6: dict[str, Any] = {
    "2a02:6b8::/32": _city("RU", [{"iso_code": "MOW"}], {"en": "Moscow"}),
    "2001:db8::/33": _city("ZZ", [{"iso_code": "Q"}]),
    "8000::/1": _city("AQ"),
}


def _probe_ips(nets: list[str]) -> list[str]:
    rnd = random.Random(7)
    ips: list[str] = []
    for cidr in nets:
        net = ipaddress.ip_network(cidr)
        for _ in range(20):
            ip = net.network_address + rnd.randrange(net.num_addresses)
            ips += [str(ip), str(net.network_address), str(net.broadcast_address)]
            if net.version == 4:
                ips += [f"::ffff:{ip}", f"::{ip}"]
    ips += [str(ipaddress.IPv4Address(rnd.getrandbits(32))) for _ in range(300)]
    ips += [str(ipaddress.IPv6Address(rnd.getrandbits(128))) for _ in range(300)]
    return ips


@pytest.mark.parametrize("record_size", [24, 28, 32])
@pytest.mark.parametrize("ip_version, alias", [(4, False), (6, True), (6, False)])
def test_synthetic_db(tmp_path: Path, record_size: int, ip_version: int, alias: bool) -> None:
    path = tmp_path / f"t{record_size}-{ip_version}.mmdb"
    nets = dict(NETS, **(NETS6 if ip_version == 6 else {}))
    write_mmdb(path, nets, record_size, ip_version, shared={"iso_code": "PT", "names": {"en": "Lisbon"}},
               alias_mapped=alias)
    compiled, reference = _build("compiled").GeoIP(path), _build("reference").GeoIP(path)
    assert reference.lookup("81.19.70.5") == ("RU", "RU-MOW", "Moscow")  # the writer is sane
    assert reference.lookup("5.1.1.1") == (None, None, "Lisbon")
    _same((compiled, reference), _probe_ips(list(nets)) + ODD)
