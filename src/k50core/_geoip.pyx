# cython: language_level=3
# GeoIP: MaxMind DB lookups without decoding whole records (the module k50core._geoip).
#
# The file is mmapped; the search tree is walked in C and the data record is
# navigated just far enough to read country.iso_code, subdivisions[0].iso_code
# and city.names.en. The decoded triple is cached per data offset, so a record
# shared by many networks is decoded once. Answers must equal the reference
# (k50core._engine_py.geoip, i.e. maxminddb's own Reader.get). GeoIP is declared in _geoip.pxd.
from cpython.mem cimport PyMem_Calloc, PyMem_Free, PyMem_Malloc
from cpython.object cimport PyObject
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.stdint cimport uint8_t, uint32_t
from libc.string cimport memchr, memcmp, memcpy, memset, strlen

import ipaddress as _geo_ipaddress
import mmap as _geo_mmap
import os as _geo_os

import maxminddb as _geo_maxminddb

from cpython.exc cimport PyErr_Clear

from k50core._csrc.capi cimport utf8_or_null
from k50core._csrc.net cimport (
    AF_INET, AF_INET6, AF_UNSPEC, AI_NUMERICHOST, SOCK_STREAM, addrinfo, freeaddrinfo, getaddrinfo, inet_pton,
    sockaddr_in, sockaddr_in6,
)

cdef tuple _GEO_NONE3 = (None, None, None)
cdef tuple _GEO_IPTYPES = (_geo_ipaddress.IPv4Address, _geo_ipaddress.IPv6Address)
cdef bytes _GEO_MARKER = b"\xab\xcd\xefMaxMind.com"
# Position codes returned by the record navigator besides real positions.
cdef enum:
    _GEO_CORRUPT = -1
    _GEO_ABSENT = -2
    _GEO_MAX_DEPTH = 512  # nesting limit while skipping (libmaxminddb uses 512 too)


# ---- IP parsing --------------------------------------------------------------

cdef bint _geo_dotted_quad(const char* s, Py_ssize_t n, uint8_t* out) noexcept nogil:
    """Strict a.b.c.d (0-255, no leading zeros): the common case, faster than inet_pton.

    Accepts a subset of what inet_pton accepts and gives the same bytes; anything
    else falls through to libc.
    """
    cdef Py_ssize_t i = 0
    cdef int part, v, digits
    for part in range(4):
        if part:
            if i >= n or s[i] != c'.':
                return False
            i += 1
        v = 0
        digits = 0
        while i < n and c'0' <= s[i] <= c'9' and digits < 3:
            v = v * 10 + (s[i] - c'0')
            digits += 1
            i += 1
        if digits == 0 or v > 255 or (digits > 1 and s[i - digits] == c'0'):
            return False
        out[part] = v
    return i == n


cdef int _geo_parse_libc(const char* s, uint8_t* out) noexcept nogil:
    """Rare forms ("1.2.3", "010.1.1.1", "fe80::1%eth0"): ask getaddrinfo, as maxminddb does."""
    cdef addrinfo hints
    cdef addrinfo* res = NULL
    cdef int bits = 0
    memset(&hints, 0, sizeof(hints))
    hints.ai_family = AF_UNSPEC
    hints.ai_flags = AI_NUMERICHOST
    hints.ai_socktype = SOCK_STREAM
    if getaddrinfo(s, NULL, &hints, &res) == 0 and res != NULL:
        if res.ai_family == AF_INET:
            memcpy(out, &(<sockaddr_in*>res.ai_addr).sin_addr, 4)
            bits = 32
        elif res.ai_family == AF_INET6:
            memcpy(out, &(<sockaddr_in6*>res.ai_addr).sin6_addr, 16)
            bits = 128
    if res != NULL:
        freeaddrinfo(res)
    return bits


cdef int _geo_parse(object ip, uint8_t* out):
    """Address bytes into out; returns 32 or 128 (bits), 0 when ip is no address."""
    cdef Py_ssize_t n
    cdef const char* s
    cdef bytes packed
    if isinstance(ip, str):
        s = utf8_or_null(ip, &n)
        if s == NULL:  # lone surrogate: maxminddb rejects it too
            PyErr_Clear()
            return 0
        if memchr(s, 0, n) != NULL:  # embedded NUL: rejected by maxminddb
            return 0
        if _geo_dotted_quad(s, n, out) or inet_pton(AF_INET, s, out) == 1:
            return 32
        if inet_pton(AF_INET6, s, out) == 1:
            return 128
        return _geo_parse_libc(s, out)
    if isinstance(ip, _GEO_IPTYPES):  # maxminddb takes ipaddress objects too
        packed = ip.packed
        if len(packed) not in (4, 16):
            return 0
        memcpy(out, <const char*>packed, len(packed))
        return 8 * len(packed)
    return 0


# ---- search tree -------------------------------------------------------------

cdef inline uint32_t _geo_be(const uint8_t* p, int n) noexcept nogil:
    cdef uint32_t v = 0
    cdef int i
    for i in range(n):
        v = (v << 8) | p[i]
    return v


cdef inline uint32_t _geo_child(const uint8_t* tree, uint32_t node, uint32_t bit, int rs) noexcept nogil:
    """Left (bit 0) or right record of a node. Branch-free in bit: random bits would mispredict."""
    cdef const uint8_t* p
    if rs == 28:  # 7-byte node; byte 3 holds the top nibble of both records
        p = tree + <size_t>node * 7
        return (((<uint32_t>p[3] >> (4 - 4 * bit)) & 0x0F) << 24) | _geo_be(p + 4 * bit, 3)
    if rs == 24:
        return _geo_be(tree + <size_t>node * 6 + 3 * bit, 3)
    return _geo_be(tree + <size_t>node * 8 + 4 * bit, 4)


cdef inline uint32_t _geo_bit(const uint8_t* addr, int i) noexcept nogil:
    return (addr[i >> 3] >> (7 - (i & 7))) & 1


cdef uint32_t _geo_walk(const uint8_t* tree, uint32_t node_count, int rs, uint32_t node,
                        const uint8_t* addr, int i, int nbits) noexcept nogil:
    """Follow addr's bits i..nbits-1 from node; returns the first record value >= node_count.

    One loop per record size so the size test is not paid on every step.
    """
    if rs == 28:
        while i < nbits and node < node_count:
            node = _geo_child(tree, node, _geo_bit(addr, i), 28)
            i += 1
    elif rs == 24:
        while i < nbits and node < node_count:
            node = _geo_child(tree, node, _geo_bit(addr, i), 24)
            i += 1
    else:
        while i < nbits and node < node_count:
            node = _geo_child(tree, node, _geo_bit(addr, i), 32)
            i += 1
    return node


# ---- cache: data record -> decoded triple --------------------------------------
# An open-addressing table keyed by the record value (always > 0, so 0 marks an
# empty slot); avoids building a Python int per lookup as a dict would.

cdef _GeoSlot _GEO_NONE_SLOT = _GeoSlot(0, <PyObject*>_GEO_NONE3, <PyObject*>None)  # no answer


cdef inline uint32_t _geo_hash(uint32_t key, uint32_t mask) noexcept nogil:
    key *= 2654435761u
    return (key ^ (key >> 16)) & mask


# ---- data section ------------------------------------------------------------

cdef Py_ssize_t _geo_ctrl(const uint8_t* d, Py_ssize_t end, Py_ssize_t pos,
                          int* typ, Py_ssize_t* size) noexcept nogil:
    """Decode the control byte(s) at pos: type, size; returns the payload position.

    For a pointer, size is its target (relative to the data section) and the
    returned position is just past the pointer. -1 when out of bounds/invalid.
    """
    cdef int c, t, s, ss
    if pos < 0 or pos >= end:
        return -1
    c = d[pos]
    pos += 1
    t = c >> 5
    if t == 1:
        ss = (c >> 3) & 3
        if pos + ss + 1 > end:
            return -1
        if ss == 3:
            size[0] = _geo_be(d + pos, 4)
        else:  # 3 high bits from the control byte, plus the biases of the format
            size[0] = ((<Py_ssize_t>(c & 7) << (8 * (ss + 1))) | _geo_be(d + pos, ss + 1)) + (
                0 if ss == 0 else 2048 if ss == 1 else 526336)
        typ[0] = 1
        return pos + ss + 1
    if t == 0:  # extended type in the next byte
        if pos >= end:
            return -1
        t = 7 + d[pos]
        pos += 1
        if t < 8 or t > 15:
            return -1
    s = c & 0x1F
    if s >= 29:
        ss = s - 28  # 1..3 extra size bytes
        if pos + ss > end:
            return -1
        size[0] = (29 if ss == 1 else 285 if ss == 2 else 65821) + _geo_be(d + pos, ss)
        pos += ss
    else:
        size[0] = s
    typ[0] = t
    return pos


cdef Py_ssize_t _geo_skip(const uint8_t* d, Py_ssize_t end, Py_ssize_t pos, int depth) noexcept nogil:
    """Position just past the value at pos (pointers not followed); -1 if corrupt."""
    cdef int t
    cdef Py_ssize_t size, n, i
    if depth > _GEO_MAX_DEPTH:
        return -1
    pos = _geo_ctrl(d, end, pos, &t, &size)
    if pos < 0 or t == 1 or t == 14:  # pointer / boolean: no further payload
        return pos
    if t == 7 or t == 11:  # map (key, value pairs) / array
        n = 2 * size if t == 7 else size
        for i in range(n):
            pos = _geo_skip(d, end, pos, depth + 1)
            if pos < 0:
                return -1
        return pos
    return pos + size if pos + size <= end else -1


cdef class GeoIP:
    """Country / region / city of an IP address from a MaxMind DB file (compiled)."""

    def __cinit__(self, path=None):  # str | os.PathLike | None
        if path is None:
            from _maxminddb_geolite2 import geolite2_database
            path = geolite2_database()
        self.path = _geo_os.fsdecode(path)
        meta = self._check(self.path)
        self._rs = meta.record_size
        self._node_count = meta.node_count
        self._ip_version = meta.ip_version
        with open(self.path, "rb") as f:
            self._mm = _geo_mmap.mmap(f.fileno(), 0, access=_geo_mmap.ACCESS_READ)
        self._buf = self._mm
        self._d = &self._buf[0]
        self._base = <Py_ssize_t>self._node_count * self._rs // 4 + 16
        self._end = self._mm.rfind(_GEO_MARKER)
        if self._rs not in (24, 28, 32) or self._ip_version not in (4, 6) or self._end < self._base:
            raise ValueError(f"{self.path!r}: unsupported MaxMind DB layout "
                             f"(record_size {self._rs}, ip_version {self._ip_version})")
        self._init_v4tab()
        self._triples = []
        self._strings = {}
        self._mask = 1023
        self._slots = <_GeoSlot*>PyMem_Calloc(self._mask + 1, sizeof(_GeoSlot))
        if self._slots == NULL:
            raise MemoryError()

    cdef int _init_v4tab(self) except -1:
        """Precompute the IPv4 walk's first 16 steps: one table read replaces 16 dependent loads."""
        cdef uint32_t start = 0, p
        cdef uint8_t addr[16]
        cdef int i
        if self._ip_version == 6:  # IPv4 lives under ::/96; find that node once
            memset(addr, 0, 16)
            start = _geo_walk(self._d, self._node_count, self._rs, 0, addr, 0, 96)
            # The table may also serve ::ffff:a.b.c.d, but only if this database
            # aliases that prefix to the same node (GeoLite2 does).
            addr[10] = addr[11] = 0xFF
            self._mapped_alias = _geo_walk(self._d, self._node_count, self._rs, 0, addr, 0, 96) == start
        self._v4tab = <uint32_t*>PyMem_Malloc(65536 * sizeof(uint32_t))
        if self._v4tab == NULL:
            raise MemoryError()
        memset(addr, 0, 4)
        for p in range(65536):
            addr[0] = p >> 8
            addr[1] = p & 0xFF
            self._v4tab[p] = _geo_walk(self._d, self._node_count, self._rs, start, addr, 0, 16)
        return 0

    def __dealloc__(self):
        PyMem_Free(self._v4tab)
        PyMem_Free(self._slots)

    cdef _GeoSlot* _cache_put(self, uint32_t key, tuple value) except NULL:
        """Remember value for key; doubles the table at half load. Returns its slot."""
        cdef _GeoSlot* old = self._slots
        cdef uint32_t n = self._mask + 1, i, h
        if 2 * (self._used + 1) > n:
            self._slots = <_GeoSlot*>PyMem_Calloc(2 * n, sizeof(_GeoSlot))
            if self._slots == NULL:
                self._slots = old
                raise MemoryError()
            self._mask = 2 * n - 1
            for i in range(n):
                if old[i].key:
                    h = _geo_hash(old[i].key, self._mask)
                    while self._slots[h].key:
                        h = (h + 1) & self._mask
                    self._slots[h] = old[i]
            PyMem_Free(old)
        h = _geo_hash(key, self._mask)
        while self._slots[h].key:
            h = (h + 1) & self._mask
        self._triples.append(value)
        self._slots[h].key = key
        self._slots[h].triple = <PyObject*>value
        self._slots[h].region = <PyObject*>value[1]
        self._used += 1
        return &self._slots[h]

    @staticmethod
    def _check(str path):
        """maxminddb validates the file and parses its metadata; errors name the path."""
        try:
            reader = _geo_maxminddb.open_database(path)
        except OSError as e:
            raise OSError(e.errno, f"cannot open GeoIP database: {e.strerror}", path) from e
        except (_geo_maxminddb.InvalidDatabaseError, ValueError) as e:
            raise ValueError(f"{path!r} is not a MaxMind DB file: {e}") from e
        meta = reader.metadata()
        reader.close()
        return meta

    # -- record navigation: positions are absolute offsets into the file --

    cdef Py_ssize_t _value(self, Py_ssize_t pos, int* typ, Py_ssize_t* size) noexcept nogil:
        """Payload position of the value at pos, following one pointer."""
        pos = _geo_ctrl(self._d, self._end, pos, typ, size)
        if pos >= 0 and typ[0] == 1:
            pos = _geo_ctrl(self._d, self._end, self._base + size[0], typ, size)
            if typ[0] == 1:  # a pointer to a pointer is invalid
                return -1
        return pos

    cdef Py_ssize_t _get(self, Py_ssize_t pos, const char* key) noexcept nogil:
        """Position of map[key] for the map at pos; ABSENT if no such key or not a map."""
        cdef int t
        cdef Py_ssize_t size, n, i, k, v, klen = strlen(key)
        cdef Py_ssize_t found = _GEO_ABSENT
        if pos < 0:
            return pos
        pos = self._value(pos, &t, &n)
        if pos < 0:
            return _GEO_CORRUPT
        if t != 7:
            return _GEO_ABSENT
        for i in range(n):  # scan every key: with duplicates, the dict keeps the last
            k = self._value(pos, &t, &size)
            v = _geo_skip(self._d, self._end, pos, 0)
            if k < 0 or t != 2 or k + size > self._end or v < 0:
                return _GEO_CORRUPT
            if size == klen and memcmp(self._d + k, key, klen) == 0:
                found = v
            pos = _geo_skip(self._d, self._end, v, 0)
            if pos < 0:
                return _GEO_CORRUPT
        return found

    cdef Py_ssize_t _first(self, Py_ssize_t pos) noexcept nogil:
        """Position of array[0] for the array at pos; ABSENT if empty or not an array."""
        cdef int t
        cdef Py_ssize_t n
        if pos < 0:
            return pos
        pos = self._value(pos, &t, &n)
        if pos < 0:
            return _GEO_CORRUPT
        return pos if t == 11 and n > 0 else _GEO_ABSENT

    cdef object _str(self, Py_ssize_t pos):
        """The string at pos, or None when absent / not a string."""
        cdef int t
        cdef Py_ssize_t n
        if pos < 0:
            return None
        pos = self._value(pos, &t, &n)
        if pos < 0 or (t == 2 and pos + n > self._end):
            self._corrupt(pos)
        if t != 2:
            return None
        return self._shared(PyUnicode_DecodeUTF8(<const char*>self._d + pos, n, NULL))

    cdef inline object _shared(self, object s):
        return self._strings.setdefault(s, s)

    cdef int _corrupt(self, Py_ssize_t pos) except -1:
        raise _geo_maxminddb.InvalidDatabaseError(
            f"{self.path!r}: corrupt data section near offset {pos}")

    cdef tuple _decode(self, Py_ssize_t rec):
        """(country, region, city) of the record at rec."""
        cdef Py_ssize_t c = self._get(self._get(rec, "country"), "iso_code")
        cdef Py_ssize_t s = self._get(self._first(self._get(rec, "subdivisions")), "iso_code")
        cdef Py_ssize_t n = self._get(self._get(self._get(rec, "city"), "names"), "en")
        if c == _GEO_CORRUPT or s == _GEO_CORRUPT or n == _GEO_CORRUPT:
            self._corrupt(rec)
        country, sub = self._str(c), self._str(s)
        region = self._shared(f"{country}-{sub}") if country is not None and sub is not None else None
        return (country, region, self._str(n))

    cdef inline bint _v4_in_v6(self, const uint8_t* a) noexcept nogil:
        """::a.b.c.d, or ::ffff:a.b.c.d when the database aliases it to the IPv4 subtree."""
        cdef int i
        for i in range(10):
            if a[i]:
                return False
        return (a[10] == 0 and a[11] == 0) or (self._mapped_alias and a[10] == 0xFF and a[11] == 0xFF)

    cdef _GeoSlot* _find(self, object ip) except NULL:
        """The cache slot holding ip's answer (decoded on first use)."""
        cdef uint8_t addr[16]
        cdef int bits = _geo_parse(ip, addr)
        cdef uint32_t rec, h
        cdef Py_ssize_t pos
        if bits == 32:
            rec = self._v4tab[(<uint32_t>addr[0] << 8) | addr[1]]
            rec = _geo_walk(self._d, self._node_count, self._rs, rec, addr, 16, 32)
        elif bits == 128 and self._ip_version == 6:
            if self._v4_in_v6(addr):  # same walk as IPv4 from bit 96 on: use the table
                rec = self._v4tab[(<uint32_t>addr[12] << 8) | addr[13]]
                rec = _geo_walk(self._d, self._node_count, self._rs, rec, addr + 12, 16, 32)
            else:
                rec = _geo_walk(self._d, self._node_count, self._rs, 0, addr, 0, 128)
        else:  # not an address, or IPv6 in an IPv4-only database
            return &_GEO_NONE_SLOT
        if rec == self._node_count:  # no data for this network
            return &_GEO_NONE_SLOT
        pos = <Py_ssize_t>rec - self._node_count - 16 + self._base
        if rec < self._node_count + 16 or pos >= self._end:
            self._corrupt(pos)
        h = _geo_hash(rec, self._mask)
        while self._slots[h].key:
            if self._slots[h].key == rec:
                return &self._slots[h]
            h = (h + 1) & self._mask
        return self._cache_put(rec, self._decode(pos))

    def lookup(self, ip: object) -> tuple:
        """(country iso, region, city name); all None for unknown or invalid ip."""
        return <tuple>self._find(ip).triple

    def region(self, ip: object) -> str | None:
        """"CC-SUB" (e.g. "RU-MOW") or None."""
        return <object>self._find(ip).region

    def country(self, ip: object) -> str | None:
        """Country ISO code (e.g. "RU") or None."""
        return (<tuple>self._find(ip).triple)[0]

    def regions(self, ips: object) -> list:
        """region() of each address in ips (a list; any iterable works)."""
        return [<object>self._find(ip).region for ip in ips]
