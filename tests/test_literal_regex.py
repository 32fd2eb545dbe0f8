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


# -- one $glob is read without sre and compiled at its first candidate value ----------------------
GLOB_PIECES = ["a", "/", "é", ".", "\\", "\n", "*", "**", "?", "(", "[", "$"]
GLOB_VALUES = ["", "a", "/a", "/a/b", "a\n", "a\nb", "é/", ".a", "/(", "a/a/a", "\\a", "[$"]


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.sampled_from(GLOB_PIECES), max_size=6).map("".join),
       st.lists(st.sampled_from(GLOB_VALUES), min_size=1, max_size=4))
def test_one_glob_agrees_with_its_compiled_regex(glob, tails):
    from k50core.rules import compile_condition
    from k50core.rules.compiler import glob_arg, glob_regex, regex_arg

    from .conftest import both_cores

    pattern = re.compile(glob_regex(glob))
    assert glob_arg(glob)[1:] == regex_arg(pattern)[1:]
    literal = re.split(r"[*?]", glob)[0]
    values = [literal + t for t in tails] + tails  # with its prefix (sre runs) and without
    for core in both_cores():
        program = compile_condition({"p": {"$glob": glob}}, core=core)
        for _ in range(2):  # before and after the lazy pattern is compiled
            for v in values:
                assert program.matches({"p": v}) is (pattern.match(v) is not None), (core.__name__, glob, v)
