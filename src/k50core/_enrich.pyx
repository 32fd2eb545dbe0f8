# cython: language_level=3
"""Visit enrichment, compiled: the attribute dict of a visit, as k50core._engine_py.enrich makes it.

Each landing URL and referrer is parsed once (the usual landing URL in C, _url_fast.pxi; the rest by
k50core.enrich.url, in Python) and kept with what classification needs of it: the URL's query
decides most of the verdict alone (``_Url.mode``), the
referrer only the rest. A visit whose URL and referrer were seen costs dictionary look-ups, the
checks of its own fields and the dicts it is given, with no Python-level call. The caches are
bounded: full, they are emptied, and refill from the URLs in use (as the device cache does).

Only exact ``str``, ``bytes`` and ``dict`` take the fast paths. Anything else (a subclass, a
mapping that is not a dict, a number where text belongs) goes to the reference's own functions, so
the two builds answer alike for any input, however odd.
"""
from collections.abc import Mapping
from time import time as _now

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_Copy, PyDict_GetItem, PyDict_GetItemWithError, PyDict_Size
from cpython.exc cimport PyErr_Clear, PyErr_Occurred
from cpython.float cimport PyFloat_AS_DOUBLE, PyFloat_FromDouble
from cpython.object cimport PyObject, PyObject_IsInstance
from cpython.unicode cimport (
    PyUnicode_1BYTE_KIND, PyUnicode_DATA, PyUnicode_DecodeUTF8, PyUnicode_GET_LENGTH, PyUnicode_KIND, PyUnicode_READ,
)
from libc.math cimport fabs
from libc.string cimport memchr

from k50core._csrc.capi cimport PyLong_AsDouble, PyUnicode_IS_ASCII, utf8_or_null
from k50core._csrc.net cimport AF_INET, AF_INET6, inet_pton
from k50core._device cimport _dev_lookup
from k50core._geoip cimport GeoIP

from k50core._engine_py.enrich import Classifier as _PyClassifier
from k50core.enrich.fields import (
    MAX_COOKIE_VALUE as _MAX_COOKIE_VALUE, MAX_COOKIES as _MAX_COOKIES, MAX_ID as _MAX_ID, MAX_UA as _MAX_UA,
    clean_text as _py_clean_text, parse_cookies as _py_parse_cookies, valid_ip as _py_valid_ip,
)
from k50core.enrich.source import _ORGANIC, _ORGANIC_KEEPS, _host_arg, _norm_value, _site, _strip_www
from k50core.enrich.url import MAX_FIELD as _MAX_FIELD, MAX_PARAMS as _MAX_PARAMS, host_of as _host_of
from k50core.enrich.url import split_url as _split_url

cdef Py_ssize_t MAX_FIELD = _MAX_FIELD
cdef Py_ssize_t MAX_ID = _MAX_ID
cdef Py_ssize_t MAX_UA = _MAX_UA
cdef Py_ssize_t MAX_COOKIES = _MAX_COOKIES
cdef Py_ssize_t MAX_COOKIE_VALUE = _MAX_COOKIE_VALUE
cdef Py_ssize_t MAX_IP = 64        # the raw field; an address is at most 45 characters
cdef Py_ssize_t MAX_COOKIE_NAME = 256

include "_url_fast.pxi"
include "_summary.pxi"

# _Url.mode: what the referrer changes
cdef enum:
    _FINAL = 0       # nothing: the query decided (utm tags, a paid click id)
    _FALLBACK = 1    # the source only: the referrer's (same site: none), without one the final's
    _REFERRER = 2    # both: the referrer's verdict, without one the final's (a marker's or direct)

cdef tuple _INTERNAL = (None, "internal")
cdef tuple _DIRECT = (None, "direct")
cdef tuple _INT_FLOAT = (int, float)


# ---- the visit's own fields ----------------------------------------------------------------------

cdef bint _has_surrogate(str s) noexcept:
    """A code point a UTF-8 encoder refuses (a lone surrogate)."""
    cdef unsigned int kind = PyUnicode_KIND(s)
    cdef void* data
    cdef Py_ssize_t i
    cdef Py_UCS4 c
    if kind == PyUnicode_1BYTE_KIND:
        return False
    data = PyUnicode_DATA(s)
    for i in range(PyUnicode_GET_LENGTH(s)):
        c = PyUnicode_READ(kind, data, i)
        if 0xD800 <= c <= 0xDFFF:
            return True
    return False


cdef object _clean(object value, Py_ssize_t limit):
    """k50core.enrich.fields.clean_text: the same str (or None) for any value."""
    cdef object text
    if value is None:
        return None
    if type(value) is str:
        if PyUnicode_GET_LENGTH(value) > limit:
            return None
        if PyUnicode_IS_ASCII(value) or not _has_surrogate(value):
            return value
        return None
    if type(value) is bytes:
        if PyBytes_GET_SIZE(value) > limit * 4:
            return None
        try:
            text = PyUnicode_DecodeUTF8(PyBytes_AS_STRING(value), PyBytes_GET_SIZE(value), NULL)
        except UnicodeDecodeError:
            return None
        return text if PyUnicode_GET_LENGTH(text) <= limit else None  # strict UTF-8: no surrogates
    return _py_clean_text(value, limit)


cdef object _valid_ip(object text):
    """k50core.enrich.fields.valid_ip of what _clean gave: the text when the C library reads it as
    an IPv4 or IPv6 address (as socket.inet_pton does), else None."""
    cdef Py_ssize_t n
    cdef const char* s
    cdef unsigned char buf[16]
    if text is None:
        return None
    if type(text) is not str:
        return _py_valid_ip(text)
    n = PyUnicode_GET_LENGTH(text)
    if n == 0 or n > 45 or not PyUnicode_IS_ASCII(text):  # the C library reads no other character
        return None
    s = utf8_or_null(text, &n)  # ASCII: the string's own bytes
    if s == NULL:
        PyErr_Clear()
        return None
    if memchr(s, b"%", n) != NULL or memchr(s, 0, n) != NULL:  # a scope; a NUL socket refuses
        return None
    if inet_pton(AF_INET, s, buf) == 1 or inet_pton(AF_INET6, s, buf) == 1:
        return text
    return None


cdef object _stamp(object ts):
    """float(ts) when ts is a usable time stamp, else None."""
    cdef double d
    if type(ts) is float:
        d = PyFloat_AS_DOUBLE(ts)
        return ts if d == d and fabs(d) < 1e11 else None
    if type(ts) is int:
        d = PyLong_AsDouble(ts)
        if d == -1.0 and PyErr_Occurred() != NULL:  # too large for a double: not a time stamp
            PyErr_Clear()
            return None
        return PyFloat_FromDouble(d) if fabs(d) < 1e11 else None
    if ts is None or type(ts) is str or type(ts) is bool:
        return None
    if (PyObject_IsInstance(ts, _INT_FLOAT) and not PyObject_IsInstance(ts, bool)
            and ts == ts and abs(ts) < 1e11):
        return float(ts)
    return None


cdef int _cookie(dict out, object key, object value) except -1:
    """One cookie into out; 1 when out is full."""
    key = _clean(key, MAX_COOKIE_NAME)
    value = _clean(value, MAX_COOKIE_VALUE)
    if key is None or value is None:
        return 0
    key = key.strip()
    if key and key not in out:
        out[key] = value.strip().strip('"')
        if len(out) >= MAX_COOKIES:
            return 1
    return 0


cdef dict _cookies(object raw):
    """k50core.enrich.fields.parse_cookies."""
    cdef dict out = {}
    cdef object header
    cdef list kv
    if type(raw) is dict:
        for key, value in (<dict>raw).items():
            if _cookie(out, key, value):
                break
        return out
    if type(raw) is str or type(raw) is bytes:
        header = _clean(raw, MAX_FIELD)
        if not header:
            return out
        for part in (<str>header).split(";"):
            if "=" in <str>part:
                kv = (<str>part).split("=", 1)
                if _cookie(out, kv[0], kv[1]):
                    break
        return out
    return _py_parse_cookies(raw)


cdef inline object _field(object visit, bint exact, str key):
    cdef PyObject* hit
    if exact:
        hit = PyDict_GetItemWithError(visit, key)
        return <object>hit if hit != NULL else None
    return visit.get(key)


# ---- classification ------------------------------------------------------------------------------

cdef class _Host:
    cdef object site(self):
        if self.site_ is None:
            self.site_ = _site(self.name)
        return self.site_


cdef class _Url:
    pass


cdef class _Ref:
    pass


cdef class Classifier:
    """``classify(landing_host, query, referrer_host)`` -> ``(source, traffic_type)``, as
    k50core._engine_py.enrich.Classifier answers, for one SourceCatalogue."""

    def __init__(self, catalogue, Py_ssize_t cache_size=16384):
        self.catalogue = catalogue
        self.py = _PyClassifier(catalogue)
        self.hosts = {}
        self.hosts_max = max(cache_size, 1)
        self.paid_set = catalogue._paid_id_set
        self.marker_set = catalogue._marker_id_set
        self.paid_ids = catalogue._paid_ids
        self.marker_ids = catalogue._marker_ids

    cdef object host(self, object raw):
        """The _Host of a host as split_url gives it (or anything: normalised as the reference
        does), or None."""
        cdef PyObject* hit
        cdef _Host h
        if raw is None:
            return None
        if type(raw) is str:
            if PyUnicode_GET_LENGTH(raw) == 0:
                return None
            hit = PyDict_GetItem(self.hosts, raw)
            if hit != NULL:
                return <object>hit
        name = _host_arg(raw)
        if name is None:
            h = None
        else:
            h = _Host.__new__(_Host)
            h.name = name
            found = self.catalogue._lookup(name)
            h.hit = found if found is not None else (_strip_www(name), "referral")
        if type(raw) is str:
            if PyDict_Size(self.hosts) >= self.hosts_max:
                self.hosts.clear()
            self.hosts[raw] = h
        return h

    cdef int plan(self, _Url u, dict query) except -1:
        """What the query alone decides (the reference's steps a, b and d), into u."""
        py = self.py
        medium = _norm_value(query.get("utm_medium")) if query else ""
        src_tag = _norm_value(query.get("utm_source")) if query else ""
        kind = py._medium_type(medium) if medium else None
        click_source = None
        if query and not self.paid_set.isdisjoint(query.keys()):
            for key, paid_source in self.paid_ids:
                if _norm_value(query.get(key)):
                    click_source = paid_source
                    break
        marker = None  # an organic click id: stands in for a referrer the browser did not send
        if query and not self.marker_set.isdisjoint(query.keys()):
            for key, hit in self.marker_ids:
                if _norm_value(query.get(key)):
                    marker = hit
                    break
        u.kind = None
        if kind == "ads" or click_source is not None:
            if src_tag:
                u.mode, u.final = _FINAL, (py._tag_source(src_tag)[0], "ads")
            elif click_source is not None:
                u.mode, u.final = _FINAL, (click_source, "ads")
            else:
                u.mode, u.kind = _FALLBACK, "ads"
                u.final = (marker[0] if marker is not None else None, "ads")
        elif kind is not None or src_tag:
            name, tag_kind = py._tag_source(src_tag) if src_tag else (None, None)
            if kind == _ORGANIC:
                kind = tag_kind if tag_kind in _ORGANIC_KEEPS else "search"
            elif kind is None:
                kind = tag_kind if tag_kind is not None else "referral"
            if name is not None:
                u.mode, u.final = _FINAL, (name, kind)
            else:
                u.mode, u.kind = _FALLBACK, kind
                u.final = (marker[0] if marker is not None else None, kind)
        else:
            u.mode, u.final = _REFERRER, (marker if marker is not None else _DIRECT)
        return 0

    cdef tuple resolve(self, _Url u, _Host ref):
        """The verdict of a visit to u from ref (None: no referrer)."""
        cdef _Host landing
        cdef tuple seen
        if u.mode == _FINAL or ref is None:
            return u.final
        landing = u.lhost
        if landing is not None and (landing.name == ref.name or landing.site() == ref.site()):
            seen = _INTERNAL
        else:
            seen = ref.hit
        if u.mode == _FALLBACK:
            return (seen[0], u.kind)
        return seen

    def classify(self, landing_host, query, referrer_host):
        """``(source, traffic_type)`` of a visit; see k50core.enrich.source. Never raises."""
        cdef _Url u
        if type(query) is not dict:
            if isinstance(query, Mapping):
                return self.py.classify(landing_host, query, referrer_host)
            query = {}
        u = _Url.__new__(_Url)
        u.lhost = self.host(landing_host)
        self.plan(u, query)
        return self.resolve(u, self.host(referrer_host))

    def clear_cache(self):
        """Forget the hosts seen."""
        self.hosts.clear()


# ---- the enricher --------------------------------------------------------------------------------

cdef class Enricher:
    """``enrich(visit, now=None)``: the nested attribute dict rules look at, as
    k50core._engine_py.enrich.Enricher makes it."""

    def __init__(self, geoip, catalogue, Py_ssize_t cache_size=65536):
        self.geoip = geoip
        self.catalogue = catalogue
        self.classifier = Classifier(catalogue, cache_size)
        self.cgeo = geoip if type(geoip) is GeoIP else None  # a subclass may answer otherwise
        self.cache_size = max(cache_size, 1)
        self.urls = {}
        self.refs = {}
        self.none_url = self._new_url(None)
        self.none_ref = _Ref.__new__(_Ref)

    def clear_caches(self):
        """Forget the URLs, referrers and hosts seen (a cold start, for benchmarks)."""
        self.urls.clear()
        self.refs.clear()
        self.classifier.hosts.clear()

    def cache_sizes(self):
        """{"urls", "referrers", "hosts"}: how many of each are kept parsed."""
        return {"urls": len(self.urls), "referrers": len(self.refs), "hosts": len(self.classifier.hosts)}

    cdef _Url _new_url(self, object text):
        cdef _Url u = _Url.__new__(_Url)
        cdef dict landing = {}
        host, path, query = split_url(text)
        if host is not None:
            landing["host"] = host
        if path is not None:
            landing["path"] = path
        u.landing = landing if landing else None
        u.query = query if query else None  # the entry's own: each visit gets a copy
        u.lhost = self.classifier.host(host)
        self.classifier.plan(u, query)
        return u

    cdef _Url url(self, object text):
        cdef PyObject* hit
        cdef _Url u
        if text is None:
            return self.none_url
        if type(text) is not str:  # a str subclass: parsed as it is, not kept
            return self._new_url(text)
        hit = PyDict_GetItem(self.urls, text)
        if hit != NULL:
            return <_Url>hit
        u = self._new_url(text)
        if PyDict_Size(self.urls) >= self.cache_size:
            self.urls.clear()
        self.urls[text] = u
        return u

    cdef _Ref ref(self, object text):
        cdef PyObject* hit
        cdef _Ref r
        if text is None:
            return self.none_ref
        if type(text) is str:
            hit = PyDict_GetItem(self.refs, text)
            if hit != NULL:
                return <_Ref>hit
        r = _Ref.__new__(_Ref)
        r.host = _host_of(text)
        r.info = self.classifier.host(r.host)
        if type(text) is str:
            if PyDict_Size(self.refs) >= self.cache_size:
                self.refs.clear()
            self.refs[text] = r
        return r

    def __call__(self, visit, now=None):
        cdef bint exact = type(visit) is dict
        cdef dict out
        cdef _Url u
        cdef _Ref r
        cdef tuple verdict, info, triple
        if not exact and not isinstance(visit, Mapping):
            return {}
        out = {}
        visitor = _clean(_field(visit, exact, "visitor_id"), MAX_ID)
        if visitor:
            out["visitor_id"] = visitor
        stamp = _stamp(_field(visit, exact, "ts"))
        if stamp is not None:
            out["ts"] = stamp
        elif now is not None:
            out["ts"] = float(now)
        else:
            out["ts"] = _now()

        u = self.url(_clean(_field(visit, exact, "url"), MAX_FIELD))
        if u.landing is not None:
            out["landing"] = PyDict_Copy(u.landing)
        if u.query is not None:
            out["query"] = PyDict_Copy(u.query)
        r = self.ref(_clean(_field(visit, exact, "referrer"), MAX_FIELD))
        if r.host:
            out["referrer"] = {"host": r.host}
        verdict = self.classifier.resolve(u, r.info)
        source = verdict[0]
        if source:
            out["source"] = source
        out["traffic_type"] = verdict[1]

        ip = _valid_ip(_clean(_field(visit, exact, "ip"), MAX_IP))
        if ip:
            out["ip"] = ip
            if self.cgeo is not None:
                country, region, city = <tuple>self.cgeo._find(ip).triple
            else:
                country, region, city = self.geoip.lookup(ip)
            geo = {}
            if country:
                geo["country"] = country
            if region:
                geo["region"] = region
            if city:
                geo["city"] = city
            if geo:
                out["geo"] = geo
        ua = _clean(_field(visit, exact, "user_agent"), MAX_UA)
        info = _dev_lookup(ua if ua is not None else "")
        out["device"] = {"type": info[0], "os": info[1], "browser": info[2]}
        raw = _field(visit, exact, "cookies")
        if raw is not None:
            cookies = _cookies(raw)
            if cookies:
                out["cookie"] = cookies
        return out
