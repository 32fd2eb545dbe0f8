"""The literal-regex reader (rules.compiler.literal_texts) agrees with sre's parser.

A rule set's many anchored path regexes (``^/catalog/section7(/|$)``) are read without sre's
parser; for every pattern it accepts, the texts must be what the parse-based walk finds, and a
pattern outside its grammar must fall back (None)."""
import re
from re import _parser

from hypothesis import given, settings, strategies as st

from k50core.rules.compiler import _regex_arg, compile_regex, literal_texts

PIECES = ["a", "b", "/", "-", "7", "\\.", "\\/", "\\-", "$", "\\Z", "(", "(?:", "|", ")", ".", "*", "?",
          "[a]", "\\d", "\\n", " ", "#", "é", "{2}", "(?i)", "\\A", "^"]


def by_sre(source):
    """(prefixes, texts, exact) as the general path finds them from sre's parse."""
    _match, prefixes, texts, exact = _regex_arg(_parser.parse(source, 0), 0, source, None)
    return prefixes, texts, exact


@settings(max_examples=3000, deadline=None)
@given(anchor=st.sampled_from(["^", "\\A", ""]), body=st.lists(st.sampled_from(PIECES), max_size=12))
def test_literal_texts_agree_with_the_parse(anchor, body):
    source = anchor + "".join(body)
    try:
        re.compile(source)
    except re.error:
        assert literal_texts(source) is None  # never accepts what sre refuses
        return
    texts = literal_texts(source)
    if texts is None:
        return  # the general way decides; nothing to compare
    assert by_sre(source) == (tuple(sorted({t for t, _ in texts})), texts, True)
    assert compile_regex(source, 0)[1:] == by_sre(source)


def test_the_rule_sets_shapes_take_the_fast_way():
    for source in ["^/catalog/section7(/|$)", "^/(sale|offer)1/", "\\A/promo\\-1/x\\Z", "^/a(?:b|c(d|$))"]:
        assert literal_texts(source) is not None, source
        assert compile_regex(source, 0)[1:] == by_sre(source)
    for source in ["^a|b", "^(|a)", "^/a$b", "^/a.", "^/(?i)a", "^/a\\d", "/a", "^/a(b"]:
        assert literal_texts(source) is None, source
