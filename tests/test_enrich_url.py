"""k50core.enrich.url: splitting page URLs and referrers."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from k50core.enrich.url import MAX_FIELD, MAX_PARAMS, host_of, normalize_host, split_url

ABSENT = (None, None, {})


# ------------------------------------------------------------------ hosts


@pytest.mark.parametrize(
    "url, host",
    [
        ("https://example.com/", "example.com"),
        ("HTTPS://WWW.Example.COM/Path", "www.example.com"),
        ("http://example.com:8080/x", "example.com"),
        ("http://user:secret@example.com/", "example.com"),
        ("http://a@b@example.com/", "example.com"),
        ("http://example.com./", "example.com"),
        ("http://example.com..:80/", "example.com"),
        ("http://xn--d1acufc.xn--p1ai/", "домен.рф"),
        ("http://XN--D1ACUFC.XN--P1AI/", "домен.рф"),
        ("http://xn--zzzz-.com/", "xn--zzzz-.com"),  # invalid punycode is kept
        ("http://xn--d1acufc99999https/", "xn--d1acufc99999https"),  # decodes to unassigned
        ("http://пример.РФ/", "пример.рф"),
        ("http://%65xample.com/", "example.com"),
        ("http://[::1]/", "[::1]"),
        ("http://[2001:DB8:0:0:0:0:0:1]:443/x", "[2001:db8::1]"),
        ("http://127.0.0.1:8000/", "127.0.0.1"),
        ("http://intranet/", "intranet"),
        ("example.com/path?x=1", "example.com"),
        ("www.example.com", "www.example.com"),
        ("example.com:8080/x", "example.com"),
        ("localhost:3000", "localhost"),
        ("//example.com/p", "example.com"),
        ("http:example.com/p", "example.com"),
        ("https:\\\\example.com\\p", "example.com"),
        ("http:///example.com/", "example.com"),
        ("android-app://com.google.android.gm/", "com.google.android.gm"),
        ("ftp://files.example.com/a", "files.example.com"),
        ("  https://example.com/\n", "example.com"),
        ("https://exa\tmple.com/", "example.com"),
        (b"https://example.com/", "example.com"),
        (bytearray(b"https://example.com/"), "example.com"),
    ],
)
def test_host(url, host):
    assert split_url(url)[0] == host
    assert host_of(url) == host


@pytest.mark.parametrize(
    "url",
    [
        None, 42, 4.2, ["http://example.com/"], object(),
        "", "   ", "hello", "index", "user@example.com",
        "http://[::1", "http://[::1]x/", "http://[zz::1]/", "http://a:b:c/", "http://a:99999/",
        "http://a:8o/", "http://exa mple.com/", "http://exa<mple.com/", "http://a..b/",
        "http://.a.com/", "http://%2F.com/", "http://\ufffd.com/", b"http://\xff.com/",
        "http://", "https:///", "http://@/",
        "mailto:a@example.com", "tel:+74951234567", "tel:84951234567", "javascript:alert(1)",
        "data:text/html,hi", "about:blank",
        "http://" + "a" * 64 + ".com/", "http://" + "a." * 130 + "com/",
        "x" * (MAX_FIELD + 1), "http://example.com/?" + "a" * MAX_FIELD,
        b"http://example.com/" + b"a" * MAX_FIELD,
    ],
)
def test_absent(url):
    assert split_url(url) == ABSENT
    assert host_of(url) is None


def test_no_host_but_a_path():
    assert split_url("/catalog/phones?utm_source=ya") == (None, "/catalog/phones", {"utm_source": "ya"})
    assert split_url("?a=1") == (None, "/", {"a": "1"})
    assert split_url("#top") == (None, "/", {})
    assert split_url("file:///etc/hosts") == (None, "/etc/hosts", {})
    assert host_of("/catalog") is None


# ------------------------------------------------------------------ path


@pytest.mark.parametrize(
    "url, path",
    [
        ("https://example.com", "/"),
        ("https://example.com?x=1", "/"),
        ("https://example.com#frag", "/"),
        ("https://example.com/a/b/", "/a/b/"),
        ("https://example.com/a%20b", "/a b"),
        ("https://example.com/a+b", "/a+b"),
        ("https://example.com/%D0%BA%D0%B0%D1%82%D0%B0%D0%BB%D0%BE%D0%B3", "/каталог"),
        ("https://example.com/%D0", "/\ufffd"),
        ("https://example.com/%ZZ", "/%ZZ"),
        ("https://example.com/a%00b", "/ab"),
        ("https://example.com/a\\b", "/a/b"),
        ("https://example.com/каталог", "/каталог"),
        ("https://example.com/p#x?y", "/p"),
    ],
)
def test_path(url, path):
    assert split_url(url)[1] == path


# ------------------------------------------------------------------ query


def test_query_basics():
    _, _, q = split_url(
        "https://example.com/?utm_source=yandex&utm_medium=cpc&utm_term=%D0%BE%D0%BA%D0%BD%D0%B0+"
        "%D0%BF%D0%B2%D1%85&empty=&flag&x=1&x=2#utm_content=frag"
    )
    assert q == {
        "utm_source": "yandex",
        "utm_medium": "cpc",
        "utm_term": "окна пвх",
        "empty": "",
        "flag": "",
        "x": "1",
    }


@pytest.mark.parametrize(
    "qs, expected",
    [
        ("a=1&a=2", {"a": "1"}),
        ("a+b=c+d", {"a b": "c d"}),
        ("a%2Bb=c%2Bd", {"a+b": "c+d"}),
        ("a=%D0", {"a": "\ufffd"}),
        ("a=%", {"a": "%"}),
        ("a=1=2", {"a": "1=2"}),
        ("=v&&&b=2", {"b": "2"}),
        ("a%00b=c%00d&%00=x", {"ab": "cd"}),
        ("k\x00=v", {"k": "v"}),
        ("UTM_SOURCE=x", {"UTM_SOURCE": "x"}),
        ("a=1;b=2", {"a": "1;b=2"}),
        ("a=%E2%82%AC", {"a": "€"}),
    ],
)
def test_query(qs, expected):
    assert split_url("https://example.com/?" + qs)[2] == expected


def test_query_is_capped():
    qs = "&".join(f"k{i}={i}" for i in range(MAX_PARAMS + 50))
    q = split_url("https://example.com/?" + qs)[2]
    assert len(q) == MAX_PARAMS
    assert q["k0"] == "0" and f"k{MAX_PARAMS - 1}" in q and f"k{MAX_PARAMS}" not in q
    # repeated keys do not count twice
    q = split_url("https://example.com/?" + "a=1&" * 500 + "b=2")[2]
    assert q == {"a": "1", "b": "2"}


def test_each_call_gets_its_own_dict():
    a = split_url("nonsense")
    a[2]["x"] = "y"
    assert split_url("nonsense") == ABSENT


# ------------------------------------------------------------------ hygiene


def test_bytes_and_surrogates():
    assert split_url(b"https://example.com/\xd0\xba?q=\xff") == ("example.com", "/к", {"q": "\ufffd"})
    assert split_url("https://example.com/a\ud800b?q=\udfff") == ("example.com", "/a\ufffdb", {"q": "\ufffd"})
    # a valid surrogate pair written as two code points is joined
    assert split_url("https://example.com/\ud83d\ude00")[1] == "/\U0001F600"


def test_max_field_boundary():
    url = "https://example.com/?q=" + "a" * (MAX_FIELD - len("https://example.com/?q="))
    assert len(url) == MAX_FIELD
    assert split_url(url)[0] == "example.com"
    assert split_url(url + "a") == ABSENT


@pytest.mark.parametrize(
    "text, host",
    [
        ("example.com", "example.com"),
        ("WWW.Example.COM.", "www.example.com"),
        ("localhost", "localhost"),
        ("example.com:8080", "example.com"),
        ("https://example.com/p", "example.com"),
        ("xn--d1acufc.xn--p1ai", "домен.рф"),
        ("::1", "[::1]"),
        ("[::1]", "[::1]"),
        ("", None),
        ("exa mple.com", None),
        (None, None),
        (5, None),
    ],
)
def test_normalize_host(text, host):
    assert normalize_host(text) == host


# ------------------------------------------------------------------ fuzzing

_pieces = st.sampled_from(
    ["http", "https", "HTTP", ":", "//", "/", "\\", "@", "[", "]", "?", "#", "&", "=", "+", "%",
     "%D0", "%ZZ", "%00", "%2F", ".", "..", "xn--", "xn--d1acufc", "example", "com", "ru", "::1",
     "8080", "99999", " ", "\t", "\x00", "\ud800", "\ufffd", "рф", "utm_source", "a", "1"]
)
url_like = st.lists(_pieces, max_size=25).map("".join)
anything = st.one_of(
    st.none(), st.text(max_size=300), url_like, st.binary(max_size=300),
    st.integers(), st.floats(), st.lists(st.text(max_size=5), max_size=3),
)


def _check_split(result):
    assert isinstance(result, tuple) and len(result) == 3
    host, path, query = result
    assert host is None or (isinstance(host, str) and host)
    assert path is None or (isinstance(path, str) and path.startswith("/"))
    if path is None:
        assert host is None and query == {}
    assert isinstance(query, dict) and len(query) <= MAX_PARAMS
    for k, v in query.items():
        assert isinstance(k, str) and isinstance(v, str) and k
        assert "\x00" not in k and "\x00" not in v
        k.encode("utf-8")  # no lone surrogates anywhere
        v.encode("utf-8")
    if path is not None:
        path.encode("utf-8")
        assert "\x00" not in path
    if host is not None:
        host.encode("utf-8")
        assert not host.endswith(".") and host == host.strip()
        assert not any(c in host for c in "/?#@\\ ")
        # a host is a fixed point of the host functions
        assert normalize_host(host) == host
        if "." in host or host.startswith("[") or host == "localhost":
            assert host_of(host) == host


@settings(max_examples=1500, deadline=None)
@given(anything)
def test_fuzz_never_raises(value):
    result = split_url(value)
    _check_split(result)
    host = host_of(value)
    assert host == result[0]
    normalize_host(value)


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=40), st.text(max_size=40), st.text(max_size=60))
def test_fuzz_structured(host, path, query):
    for url in (f"http://{host}/{path}?{query}", f"{host}/{path}?{query}", f"//{host}:{path}"):
        _check_split(split_url(url))
        _check_split(split_url(url.encode("utf-8", "surrogatepass")))


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=10), st.text(max_size=20), max_size=8))
def test_fuzz_query_round_trip(params):
    from urllib.parse import quote

    qs = "&".join(f"{quote(k, safe='', errors='replace')}={quote(v, safe='', errors='replace')}"
                  for k, v in params.items())
    got = split_url("https://example.com/?" + qs)[2]
    want = {}
    for k, v in params.items():
        k2 = k.encode("utf-8", "replace").decode("utf-8").replace("\x00", "")
        v2 = v.encode("utf-8", "replace").decode("utf-8").replace("\x00", "")
        if k2 and k2 not in want:
            want[k2] = v2
    assert got == want


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(["%", "%D0", "%d0%be", "%ZZ", "%e2%82", "%Ac", "%0", "%%41", "%FF"]),
                          st.text(max_size=5)), max_size=12).map("".join))
def test_fuzz_percent_decoding_matches_urllib(text):
    from urllib.parse import unquote

    from k50core.enrich.url import _unquote

    text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    assert _unquote(text) == unquote(text, errors="replace")
