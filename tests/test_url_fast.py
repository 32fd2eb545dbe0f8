"""The compiled split of the usual landing URL (src/k50core/_url_fast.pxi) against the reference,
k50core.enrich.url.split_url: for any text, the same (host, path, query), key order included.

The strategies aim at the fast path's edges: escapes that decode to bad UTF-8 or NUL, ``+`` and
``%2B``, repeated and empty keys, ports at their limits, hosts one step from what it takes
(upper case, ``xn--``, a trailing dot, ``..``, labels of 63 and 64), and characters it leaves to the
Python function (spaces, controls, backslashes, non-ASCII)."""
import pytest
from hypothesis import given, settings, strategies as st
from strategies import urls

from k50core._impl import available
from k50core.enrich.url import MAX_PARAMS, split_url

pytestmark = pytest.mark.skipif("compiled" not in available(), reason="the compiled build's split")

HOSTS = ["shop.example.com", "a.b", "1.2.3.4", "x_y.example.ru", "a-b.c", "Shop.com", "xn--p1ai.xn--e1afmkfd",
         "axn--b.com", "a.b.", ".a.b", "a..b", "localhost", "a" * 63 + ".ru", "a" * 64 + ".ru",
         ".".join(["abcdefgh"] * 28) + ".ru", "a%2Eb.ru", "[::1]", "u@a.b", "a.b:c"]
PORTS = ["", ":", ":0", ":443", ":65535", ":65536", ":99999", ":123456", ":8x"]
PIECES = ["", "a", "A", "%", "%2", "%zz", "%41", "%2B", "+", "%00", "%C3", "%C3%A9", "%C3%00%A9", "%FF", "%E2%82",
          "=", "&", "&&", "==", "?", "#", "/", "//", "\\", " ", "\t", "я", "\x7f", "utm_source", "yclid"]


@st.composite
def edge_urls(draw):
    scheme = draw(st.sampled_from(["https://", "http://", "https:///", "HTTP://", "https:/", "http://\\", "ftp://"]))
    host = draw(st.sampled_from(HOSTS))
    port = draw(st.sampled_from(PORTS))
    path = "".join(draw(st.lists(st.sampled_from(PIECES), max_size=6)))
    query = "".join(draw(st.lists(st.sampled_from(PIECES), max_size=12)))
    lead = draw(st.sampled_from(["", "", " ", "\x00"]))
    return lead + scheme + host + port + "/" * draw(st.booleans()) + path + ("?" + query if draw(st.booleans()) else "")


def fast():
    from k50core import _enrich
    return _enrich.split_url


@settings(max_examples=600, deadline=None)
@given(url=st.one_of(edge_urls(), urls(), st.text(max_size=60)))
def test_the_fast_split_is_the_reference_split(url):
    got, want = fast()(url), split_url(url)
    assert got == want
    assert list(got[2]) == list(want[2])  # the parameters in the same order


def test_every_host_port_and_scheme_against_the_reference():
    """Each edge of the fast path's host, port and scheme, every combination, not left to chance."""
    split = fast()
    for scheme in ["https://", "http://", "https:///", "HTTP://", "https:/", "http://\\", "ftp://", "https:"]:
        for host in HOSTS:
            for port in PORTS:
                for rest in ["", "/", "/p%C3%A9?utm_source=a+b&yclid=1#x", "?%00=1&a=%zz"]:
                    url = scheme + host + port + rest
                    assert split(url) == split_url(url), url


def test_many_parameters_stop_where_the_reference_stops():
    url = "https://a.b/?" + "&".join(f"k{i}={i}" for i in range(MAX_PARAMS + 50))
    assert fast()(url) == split_url(url) and len(fast()(url)[2]) == MAX_PARAMS


def test_the_usual_landing_url_takes_the_fast_path():
    """The shape the fast path is for (a paid click with its id) is read in C: a URL the Python
    function would fail on is never asked of it."""
    import k50core._enrich as compiled

    url = "https://shop.example.com/catalog/s3?utm_source=yandex&utm_medium=cpc&utm_campaign=c%D0%B0&yclid=1234567"
    seen = []
    real = compiled._split_url
    compiled._split_url = lambda u: seen.append(u) or real(u)
    try:
        assert compiled.split_url(url) == split_url(url)
        assert compiled.split_url("https://Shop.example.com/") == split_url("https://Shop.example.com/")
    finally:
        compiled._split_url = real
    assert seen == ["https://Shop.example.com/"]  # only the one the fast path leaves to Python
