"""Hypothesis strategies: random conditions and attribute documents."""
from decimal import Decimal
from fractions import Fraction

from hypothesis import strategies as st

PATHS = ["a", "b", "n", "tags", "c.d", "c.e", "ip", "host", "v", "tags.0", "tags.length"]
WORDS = ["", "x", "y", "X", "abc", "1", "2.5", "1.2.3", "v1.10.0", "é", "𝄞", "example.com", "sub.example.com",
         "10.0.0.5", "192.168.1.1", "2001:db8::1", "::ffff:10.0.0.1", "/catalog/a", "/catalog/a/b"]
REGEXES = ["^a", "^(ab|c)d", "^/(cat|catalog)/[a-z]", "\\A[xy]", "b$", "x|y", "[0-9]+", "abc", "(?i)X", "^/catalog/", ".*", "\\d\\.\\d", "(", "[a-"]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 5), st.sampled_from([0.5, -1.5, 2.0, float("nan"), 1e300, 2**63]),
    st.sampled_from(WORDS),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(["d", "e", "name"]), inner, max_size=3)),
    max_leaves=8,
)


@st.composite
def documents(draw):
    doc = {}
    for key in draw(st.lists(st.sampled_from(["a", "b", "n", "tags", "c", "ip", "host", "v"]), max_size=8, unique=True)):
        if key == "c":
            doc[key] = draw(st.one_of(st.dictionaries(st.sampled_from(["d", "e"]), values, max_size=2), values))
        elif key == "tags":
            doc[key] = draw(st.one_of(st.lists(scalars, max_size=5), values))
        else:
            doc[key] = draw(values)
    return doc


def _op(inner):
    lists = st.lists(scalars, max_size=4)
    strings = st.one_of(st.sampled_from(WORDS), st.lists(st.sampled_from(WORDS), max_size=3))
    return st.one_of(
        st.tuples(st.sampled_from(["$eq", "$ne", "$lt", "$lte", "$gt", "$gte"]), scalars),
        st.tuples(st.sampled_from(["$veq", "$vne", "$vlt", "$vlte", "$vgt", "$vgte"]), st.one_of(st.sampled_from(WORDS), st.integers(0, 3))),
        st.tuples(st.sampled_from(["$in", "$nin", "$ini", "$nini", "$all", "$alli"]), st.one_of(lists, scalars)),
        st.tuples(st.sampled_from(["$regex", "$regexi", "$notRegex", "$notRegexi"]), st.sampled_from(REGEXES)),
        st.tuples(st.just("$exists"), st.booleans()),
        st.tuples(st.just("$type"), st.sampled_from(["string", "number", "boolean", "array", "object", "null", "bogus"])),
        st.tuples(st.just("$size"), st.one_of(st.integers(0, 3), inner)),
        st.tuples(st.sampled_from(["$elemMatch", "$not"]), inner),
        st.tuples(st.sampled_from(["$inGroup", "$notInGroup"]), st.sampled_from(["g1", "nets", "missing"])),
        st.tuples(st.just("$cidr"), st.sampled_from(["10.0.0.0/8", "2001:db8::/32", "192.168.1.1"])),
        st.tuples(st.sampled_from(["$host", "$prefix", "$contains", "$glob"]), strings),
        st.tuples(st.just("$bogus"), scalars),
    )


operator_objects = st.recursive(
    st.dictionaries(st.sampled_from(["$eq"]), scalars, min_size=1),
    lambda inner: st.lists(_op(inner), min_size=1, max_size=3).map(dict),
    max_leaves=6,
)


def conditions():
    leaf = st.dictionaries(st.sampled_from(PATHS), st.one_of(values, operator_objects), max_size=3)
    return st.recursive(
        leaf,
        lambda inner: st.one_of(
            st.dictionaries(st.sampled_from(["$and", "$or", "$nor"]), st.lists(inner, max_size=3), min_size=1, max_size=2),
            st.builds(lambda c: {"$not": c}, inner),
            st.builds(lambda a, b: {**a, **b}, leaf, inner),
        ),
        max_leaves=10,
    )


GROUPS = {"g1": [1, "2", "x", True, None], "nets": ["10.0.0.0/8", "2001:db8::/32", "x"]}


# ---- visits for enrichment: every field of every type, the edges of each check -------------------

class Text(str):
    """A str subclass: must answer as the plain string (and keep its type where the reference does)."""


class Blob(bytes):
    """A bytes subclass."""


# Any code point, lone surrogates included (st.text leaves them out).
any_text = st.text(st.characters(exclude_categories=()), max_size=40)

HOSTS = ["shop.example.ru", "www.example.ru", "blog.example.ru", "example.ru", "yandex.ru", "www.google.co.uk",
         "google.com.tr", "mail.yandex.ru", "yabs.yandex.ru", "l.facebook.com", "vk.com", "t.me", "partner.ru",
         "a.example.co.uk", "b.example.co.uk", "me.github.io", "you.github.io", "xn--e1afmkfd.xn--p1ai",
         "пример.рф", "EXAMPLE.RU", "127.0.0.1", "[::1]", "[2001:DB8::1]", "localhost", "com.google.android.gm",
         "google.evil.com", "x" * 64 + ".ru", "a..b", "-", "%D0%BF.ru"]
SCHEMES = ["https://", "http://", "//", "HTTPS:\\\\", "android-app://", "ftp:", "mailto:", "", "javascript:"]
UTM_VALUES = ["yandex", " YA ", "google_ads", "vk", "t.me", "yandex.ru", "l.facebook.com", "www.partner.ru",
              "partner", "", "cpc", "CPC", "cpc_yandex", "organic", "Organic", "email_march", "social", "smm",
              "referral", "banner-x", "unknown", "%D0%B4", "a+b"]
QUERY_KEYS = ["utm_source", "utm_medium", "utm_campaign", "yclid", "gclid", "msclkid", "li_fat_id", "fbclid",
              "ysclid", "srsltid", "UTM_SOURCE", "x", "", "%75tm_source"]


@st.composite
def urls(draw):
    """Landing pages and referrers: schemes, hosts of every kind, paths, utm tags and click ids."""
    scheme = draw(st.sampled_from(SCHEMES))
    host = draw(st.sampled_from(HOSTS))
    port = draw(st.sampled_from(["", "", ":443", ":8080", ":99999", ":x"]))
    path = draw(st.sampled_from(["", "/", "/p", "/catalog/%D0%B4", "/a\\b", "/%ZZ", "/\x00"]))
    params = draw(st.lists(st.tuples(st.sampled_from(QUERY_KEYS), st.sampled_from(UTM_VALUES)), max_size=4))
    query = ("?" + "&".join(f"{k}={v}" for k, v in params)) if params or draw(st.booleans()) else ""
    fragment = draw(st.sampled_from(["", "", "#top", "#?utm_source=vk"]))
    return scheme + host + port + path + query + fragment


def _sized(limit):
    """Text and bytes at the edge of a field's limit (the bytes of two-byte characters)."""
    return st.sampled_from(["a" * limit, "a" * (limit + 1), "я" * limit, "я" * (limit + 1),
                            ("я" * limit).encode(), ("я" * (limit + 1)).encode(), b"a" * (4 * limit + 1)])


def junk(limit):
    """Any value a client could put in a field whose limit is *limit*."""
    return st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(), any_text, st.binary(max_size=40),
        any_text.map(Text), st.binary(max_size=20).map(Blob), st.binary(max_size=10).map(bytearray),
        st.lists(st.text(max_size=3), max_size=2), _sized(limit),
        st.sampled_from(["\udcff", "a\ud800b", "é", b"\xff\xfe", b"\xc3\x28", b"\xed\xa0\x80", "\x00", " ", ""]),
    )


IPS = ["1.2.3.4", "5.101.68.156", "77.88.8.8", "2a02:6b8::feed:0ff", "::1", "::ffff:1.2.3.4", "01.2.3.4", "1.2.3",
       "256.1.1.1", "1.2.3.4%eth0", "fe80::1%eth0", "1.2.3.4\x00", " 1.2.3.4", "1.2.3.4 ", "[::1]", "١.٢.٣.٤",
       "::gggg", "1:2:3:4:5:6:7:8:9", "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255", "0:0:0:0:0:0:0:0:0:0:0:0:0:0"]
UAS = ["Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
       "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
       "Googlebot/2.1 (+http://www.google.com/bot.html)", "curl/8.0", ""]

ip_values = st.one_of(st.sampled_from(IPS), st.sampled_from(IPS).map(str.encode), st.sampled_from(IPS).map(Text),
                      junk(64))
url_values = st.one_of(urls(), urls().map(str.encode), urls().map(Text), junk(16384))
class Real(float):
    """A float subclass."""


class Whole(int):
    """An int subclass whose abs() lies: the reference asks it, so must the compiled build."""

    def __abs__(self):
        return 0


stamps = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.integers(-2**70, 2**70),
                   st.sampled_from([1e11, -1e11, 99_999_999_999, 100_000_000_000, 1e11 - 0.5, "5", b"5"]),
                   st.floats().map(Real), st.integers(-2**70, 2**70).map(Whole),
                   st.sampled_from([Decimal("1.5"), Decimal("NaN"), Fraction(7, 2), 10**400]))


class Proxy(dict):
    """A dict subclass (its own get must be asked, as the reference asks it)."""


def _mapping(pairs):
    from types import MappingProxyType

    return MappingProxyType(dict(pairs))


cookie_names = st.one_of(st.sampled_from(["k50_vid", " a ", "", "a;b", "x=y", "_ym_uid"]), any_text, any_text.map(Text),
                         st.binary(max_size=20), st.integers(), st.none(), _sized(256))
cookie_values = st.one_of(st.sampled_from(['"quoted"', " v ", "", "=", "\u00a0x\u2003"]), junk(4096))
cookies = st.one_of(
    st.dictionaries(cookie_names, cookie_values, max_size=4),
    st.lists(st.tuples(st.sampled_from(["a", " b", "k50_vid", "", "é", "\udcff"]),
                       st.sampled_from(["1", ' "2" ', "", "x=y", "\u00a0"])), max_size=5).map(
        lambda kv: "; ".join(f"{k}={v}" for k, v in kv)),
    st.just("; ".join(f"c{i}={i}" for i in range(150))),
    st.just({f"c{i}": str(i) for i in range(150)}),
    st.dictionaries(st.text(max_size=4), st.text(max_size=4), max_size=3).map(_mapping),
    junk(16384),
)

_fields = {
    "visitor_id": st.one_of(st.text(max_size=10), junk(256)),
    "ts": stamps,
    "ip": ip_values,
    "user_agent": st.one_of(st.sampled_from(UAS), st.sampled_from(UAS).map(Text), junk(4096)),
    "url": url_values,
    "referrer": st.one_of(urls(), url_values),
    "cookies": cookies,
}
enrich_visits = st.one_of(
    st.fixed_dictionaries({}, optional=_fields),
    st.fixed_dictionaries({}, optional=_fields).map(Proxy),
    st.fixed_dictionaries({}, optional=_fields).map(_mapping),
    st.none(), st.integers(), st.text(max_size=5), st.lists(st.integers(), max_size=2),
)
