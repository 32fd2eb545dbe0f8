"""Bad visits never raise on the visitor path; bad fields are simply absent."""
from hypothesis import HealthCheck, given, settings, strategies as st

from k50core import Engine
from k50core.cli import demo_config_path

ENGINES = {}


def engine(build):
    if build not in ENGINES:
        ENGINES[build] = Engine.from_config(demo_config_path(), implementation=build)
    return ENGINES[build]


junk = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=200), st.binary(max_size=200),
    st.lists(st.text(max_size=5), max_size=3), st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
    st.sampled_from(["\udcff", "http://[::1", "http://a:b:c/", "1.2.3", "999.1.1.1", "::gggg", "\x00", "a" * 100_000,
                     b"\xff\xfe", "http://" + "x" * 100_000, "https://ex.com/?" + "&".join(f"k{i}=v" for i in range(5000))]),
)
visits = st.one_of(
    junk,
    st.fixed_dictionaries({}, optional={k: junk for k in ("visitor_id", "ts", "ip", "user_agent", "url", "referrer", "cookies")}),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(visits)
def test_bad_visits_never_raise_and_builds_agree(visit):
    a = engine("compiled").attributes(visit, now=5.0)
    b = engine("reference").attributes(visit, now=5.0)
    assert a == b
    assert engine("compiled").match(a) == engine("reference").match(b)
    for value in a.values():
        assert value is not None
        if isinstance(value, str):
            assert len(value) <= 16384
            value.encode("utf-8")  # no lone surrogates leak into attributes


def test_oversized_fields_are_absent(build):
    attrs = engine(build).attributes({"url": "https://ex.com/" + "a" * 100_000, "referrer": "x" * 100_000,
                                      "ip": "1" * 100_000, "visitor_id": "v" * 100_000, "cookies": "a=" + "b" * 100_000})
    assert "landing" not in attrs and "referrer" not in attrs and "ip" not in attrs
    assert "visitor_id" not in attrs and "cookie" not in attrs
    assert attrs["traffic_type"] == "direct"


def test_invalid_utf8_is_absent(build):
    attrs = engine(build).attributes({"url": b"https://ex.com/\xff", "user_agent": b"\xc3\x28", "ip": b"1.2.3.4"})
    assert "landing" not in attrs
    assert attrs["ip"] == "1.2.3.4"
