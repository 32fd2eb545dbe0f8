"""The rule index: first match through it equals trying every rule, and GrowthBook's loop.

Both builds probe the same ``RuleIndex`` (the compiled one from C arrays, the
reference with dicts), so each is checked against a plain loop over ``eval``
(the program alone, no index) and, where every operator is one GrowthBook
knows, against its ``evalCondition`` first-match loop. The unit tests pin
which rules each kind of index takes and what a visit draws from it.
"""
from typing import Any

import pytest
from growthbook.core import evalCondition
from hypothesis import given, settings, strategies as st

from k50core import Engine
from k50core.rules import index
from k50core.rules.compiler import Compiler, PathTable, compile_groups

from .conftest import both_cores

GROUPS = {"words": ["x", "yandex", "RU-MOW"], "nets": ["10.0.0.0/8", "2001:db8::/32", "x"], "mixed": ["x", 1, None]}
K50_ONLY = {"$prefix", "$glob", "$host", "$cidr", "$contains"}


class Text(str):
    """A str subclass: the index must not trust its hash or comparisons."""


def compile_rules(rules: list[dict[str, Any]], groups: dict[str, list] = GROUPS):
    compiled_groups, _ = compile_groups(groups, strict=False)
    compiler = Compiler(PathTable(), compiled_groups, strict=False)
    roots = [compiler.add(r) for r in rules]
    ix, always = index.build(compiler.nodes, roots)
    return compiler, roots, ix, always


def matchers(rules, groups=GROUPS):
    compiler, roots, ix, always = compile_rules(rules, groups)
    args = (compiler.nodes, compiler.paths.paths, roots, ix, always)
    return [core.Matcher(*args) for core in both_cores()]


def every_rule(m, n: int, doc) -> int:
    return next((i for i in range(n) if m.eval(i, doc)), -1)


def growthbook_first(rules, doc, groups=GROUPS) -> int:
    return next((i for i, r in enumerate(rules) if evalCondition(doc, r, groups)), -1)


def growthbook_knows(cond: Any) -> bool:
    """No k50core-only operator, and $inGroup only with lists GrowthBook reads alike."""
    if isinstance(cond, dict):
        for k, v in cond.items():
            if k in K50_ONLY or (k in ("$inGroup", "$notInGroup") and v != "words"):
                return False
            if not growthbook_knows(v):
                return False
    elif isinstance(cond, list):
        return all(growthbook_knows(c) for c in cond)
    return True


# -- random rule sets of every shape ------------------------------------------------------
WORDS = ["x", "y", "X", "yandex", "RU-MOW", "RU-SPE", "é", ""]
PATHS_ = ["/", "/cat", "/cat/", "/cat/a", "/cat/a/b", "/cat/12", "/CAT/a", "/dog/x", "/promo/7", "é/x", "/cat/ab"]
HOSTS = ["example.com", "sub.example.com", "SUB.Example.COM.", "xexample.com", "com", "", ".", "é.рф", "a.é.рф",
         "yandex.ru", "www.yandex.ru"]
IPS = ["10.1.2.3", "10.200.0.1", "11.0.0.1", "::ffff:10.0.0.9", "2001:db8::1", "2001:db9::1", "192.168.1.1",
       "0.0.0.0", "255.255.255.255", "x", "010.1.2.3"]

word = st.sampled_from(WORDS)
key_path = st.sampled_from(["r", "s", "d", "c.e"])
leaf = st.one_of(
    st.builds(lambda p, w: {p: w}, key_path, word),
    st.builds(lambda p, ws: {p: {"$in": ws}}, key_path, st.lists(word, max_size=3)),
    st.builds(lambda p, ws: {p: {"$ini": ws}}, key_path, st.lists(word, max_size=3)),
    st.builds(lambda p, ws: {p: {"$in": ws}}, key_path, st.lists(st.sampled_from(["x", 1, None, True]), min_size=1, max_size=3)),
    st.builds(lambda p, w: {p: {"$ne": w}}, key_path, word),
    st.builds(lambda p, ws: {p: {"$nin": ws}}, key_path, st.lists(st.one_of(word, st.sampled_from([1, None])), max_size=3)),
    st.builds(lambda p, ws: {"$not": {p: {"$in": ws}}}, key_path, st.lists(word, max_size=3)),
    st.builds(lambda p, g: {p: {"$inGroup": g}}, st.sampled_from(["r", "ip"]), st.sampled_from(["words", "nets", "mixed", "nope"])),
    st.builds(lambda ps: {"p": {"$prefix": ps}}, st.lists(st.sampled_from(["/cat", "/cat/", "/dog", "é", ""]), max_size=2)),
    st.builds(lambda gs: {"p": {"$glob": gs}}, st.lists(st.sampled_from(["/cat/*", "/cat/**", "/dog/?", "**"]), min_size=1, max_size=2)),
    st.builds(lambda r: {"p": {"$regex": r}}, st.sampled_from(
        ["^/cat/a(/|$)", "^/(cat|dog)/", "^/cat/[0-9]+$", "^/x|^/cat", "^/CAT", "(?i)^/cat", "cat", "a[0-9]?$", "^/cat",
         "^(?:/cat|/dog)/a", "\\A/promo/[0-9]\\Z", "(?m)^/cat", "^", "^.*", "^/cat/a|b"])),
    st.builds(lambda r: {"p": {"$regexi": r}}, st.sampled_from(["^/cat", "^/CAT/a"])),
    st.builds(lambda hs: {"h": {"$host": hs}}, st.lists(st.sampled_from(HOSTS), max_size=2)),
    st.builds(lambda ns: {"ip": {"$cidr": ns}}, st.lists(st.sampled_from(
        ["10.0.0.0/8", "10.1.0.0/16", "10.1.2.3", "2001:db8::/32", "::ffff:10.0.0.0/104", "0.0.0.0/0", "::/0"]), max_size=2)),
    st.builds(lambda p, b: {p: {"$exists": b}}, st.sampled_from(["r", "p", "c.e"]), st.booleans()),
    st.builds(lambda w: {"tags": {"$elemMatch": {"$eq": w}}}, word),
    st.builds(lambda w: {"tags": w}, word),
    st.builds(lambda n: {"n": n}, st.sampled_from([1, 1.0, 0, True])),
    st.just({}),
)
rules_strategy = st.recursive(
    leaf,
    lambda inner: st.one_of(
        st.builds(lambda cs: {"$or": cs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda cs: {"$and": cs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda cs: {"$nor": cs}, st.lists(inner, min_size=1, max_size=2)),
        st.builds(lambda c: {"$not": c}, inner),
        st.builds(lambda a, b: {**a, **b}, inner, inner),
    ),
    max_leaves=5,
)
scalar = st.one_of(word, st.sampled_from([None, 1, 1.0, True, False, 2.5]), st.sampled_from([Text("x"), Text("/cat/a")]))
visit = st.fixed_dictionaries({}, optional={
    "r": st.one_of(scalar, st.lists(word, max_size=3)),
    "s": st.one_of(word, st.lists(st.one_of(word, st.just(Text("x"))), max_size=2)),
    "d": word,
    "c": st.one_of(st.fixed_dictionaries({}, optional={"e": st.one_of(word, st.lists(word, max_size=2))}), word),
    "p": st.one_of(st.sampled_from(PATHS_), scalar, st.lists(st.sampled_from(PATHS_), max_size=2)),
    "h": st.one_of(st.sampled_from(HOSTS), scalar, st.lists(st.sampled_from(HOSTS), max_size=2)),
    "ip": st.one_of(st.sampled_from(IPS), scalar, st.lists(st.sampled_from(IPS), max_size=2)),
    "tags": st.lists(word, max_size=3),
    "n": st.sampled_from([1, 1.0, 0, True, "1"]),
})


@settings(max_examples=800)  # within the suite's ~20 s a test
@given(st.lists(rules_strategy, min_size=1, max_size=14), st.lists(visit, min_size=1, max_size=6))
def test_first_match_through_the_index_equals_every_rule(rules, docs):
    for m in matchers(rules):
        for doc in docs:
            expected = every_rule(m, len(rules), doc)
            assert m.first_match(doc) == expected, (type(m).__module__, rules, doc)
            if expected >= 0:
                assert expected in m.candidates(doc)
        assert m.first_match_many(docs) == [every_rule(m, len(rules), d) for d in docs]


gb_leaf = leaf.filter(growthbook_knows)
gb_rules = st.recursive(
    gb_leaf,
    lambda inner: st.one_of(
        st.builds(lambda cs: {"$or": cs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda cs: {"$and": cs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda c: {"$not": c}, inner),
        st.builds(lambda a, b: {**a, **b}, inner, inner),
    ),
    max_leaves=5,
)


# Python's GrowthBook compares with Python's == (True == 1); k50core, like the JS SDK and the
# cross-SDK suite, does not: the visits compared with it hold strings, lists of them and null.
gb_scalar = st.one_of(word, st.none(), st.sampled_from([Text("x"), Text("/cat/a")]))
gb_visit = st.fixed_dictionaries({}, optional={
    "r": st.one_of(gb_scalar, st.lists(word, max_size=3)),
    "s": st.one_of(word, st.lists(word, max_size=2)),
    "d": word,
    "c": st.fixed_dictionaries({}, optional={"e": st.one_of(word, st.lists(word, max_size=2))}),
    "p": st.one_of(st.sampled_from(PATHS_), gb_scalar, st.lists(st.sampled_from(PATHS_), max_size=2)),
    "h": st.one_of(st.sampled_from(HOSTS), gb_scalar),
    "ip": st.one_of(st.sampled_from(IPS), gb_scalar),
    "tags": st.lists(word, max_size=3),
})


@settings(max_examples=600)
@given(st.lists(gb_rules, min_size=1, max_size=12), st.lists(gb_visit, min_size=1, max_size=5))
def test_first_match_equals_growthbook_loop(rules, docs):
    for m in matchers(rules):
        for doc in docs:
            assert m.first_match(doc) == growthbook_first(rules, doc), (type(m).__module__, rules, doc)


# -- each index kind ------------------------------------------------------------------------
def cores():
    return pytest.mark.parametrize("which", [0, 1], ids=["compiled", "reference"])


def kinds_of(rules, groups=GROUPS) -> dict[str, int]:
    _c, _r, ix, always = compile_rules(rules, groups)
    return index.describe(ix, always, len(rules))


@cores()
def test_equality_and_in_are_hashed(which):
    rules = [{"q.utm_campaign": f"c{i}"} for i in range(300)] + [{"r": {"$in": ["a", "b"]}}, {"r": {"$in": []}}]
    m = matchers(rules)[which]
    assert kinds_of(rules)["exact"] == 301 and kinds_of(rules)["residual"] == 0
    assert m.candidates({"q": {"utm_campaign": "c250"}}) == [250]
    assert m.candidates({"q": {"utm_campaign": "c250"}, "r": ["z", "b"]}) == [250, 300]
    assert m.candidates({"q": {"utm_campaign": 250}, "r": None}) == []
    assert m.first_match({"r": "a"}) == 300


@cores()
def test_in_over_several_paths_makes_composite_keys(which):
    rules = [{"r": {"$in": ["R1", "R2"]}, "s": {"$in": ["S1"]}, "d": "mobile"},
             {"r": {"$in": ["R2", "R3"]}, "s": {"$in": ["S1", "S2"]}},
             {"r": "R1"}]
    m = matchers(rules)[which]
    assert kinds_of(rules)["composite"] == 2
    assert m.candidates({"r": "R2", "s": "S1", "d": "mobile"}) == [0, 1]
    assert m.candidates({"r": "R2", "s": "S1", "d": "desktop"}) == [1]  # rule 0's key takes all three paths
    assert m.candidates({"r": "R1", "s": "S2", "d": "mobile"}) == [2]
    assert m.candidates({"r": ["R3", "R1"], "s": ["S2"]}) == [1, 2]
    assert m.first_match({"r": "R2", "s": "S1", "d": "desktop"}) == 1


@cores()
def test_case_insensitive_in_is_hashed_lowercased(which):
    rules = [{"s": {"$ini": ["YANDEX", "Google"]}}, {"s": {"$regexi": "^yandex"}}]
    m = matchers(rules)[which]
    assert kinds_of(rules) == {"lower": 1, "residual": 1, "rules": 2}
    assert m.candidates({"s": "GooGLE"}) == [0, 1]
    assert m.first_match({"s": "YaNdex"}) == 0 and m.first_match({"s": "yandexx"}) == 1


@cores()
def test_prefixes_regexes_and_globs_share_a_trie(which):
    rules = [{"p": {"$regex": f"^/catalog/section{i}(/|$)"}} for i in range(200)]
    rules += [{"p": {"$glob": "/promo/**"}}, {"p": {"$prefix": ["/cat", "/dog"]}}, {"p": {"$regex": "^/(a|b)/[0-9]+$"}}]
    m = matchers(rules)[which]
    assert kinds_of(rules) == {"prefix": 203, "residual": 0, "rules": 203}
    assert m.candidates({"p": "/catalog/section17/sofas"}) == [17, 201]
    assert m.first_match({"p": "/catalog/section17/sofas"}) == 17
    # section1, 17, 170 end there ("(/|$)"): none is drawn for a longer value
    assert m.candidates({"p": "/catalog/section1700"}) == [201]
    assert m.first_match({"p": "/catalog/section170"}) == 170
    assert m.first_match({"p": "/catalog/section5\n"}) == 5  # "$" also matches before a last newline
    assert m.candidates({"p": "/promo/x/y"}) == [200] and m.candidates({"p": "/b/12"}) == [202]
    assert m.candidates({"p": ["/catalog/section1"]}) == []  # a regex never matches a list


@cores()
def test_what_cannot_be_indexed_is_residual(which):
    rules = [{"p": {"$regex": "(?i)^/cat"}}, {"p": {"$regex": "cat"}}, {"$not": {"r": {"$gt": "x"}}}, {"r": {"$exists": False}},
             {"$or": [{"r": "x"}, {"r": {"$exists": False}}]}, {"$nor": [{"r": "x"}]}, {"tags": {"$elemMatch": {"$eq": "x"}}},
             {"p": {"$prefix": ""}}, {"r": {"$in": ["x", None]}}, {"r": {"$nin": [1, None]}}, {}]
    m = matchers(rules)[which]
    assert kinds_of(rules) == {"residual": len(rules), "rules": len(rules)}
    assert m.candidates({}) == list(range(len(rules)))


@cores()
def test_exclusions_are_indexed_by_the_strings_they_exclude(which):
    """$ne, $nin and $not of an equality or $in: a value a rule excludes does not draw it, any
    other value (a list, a str subclass, nothing) does."""
    rules = [{"$not": {"c.e": {"$in": ["RU", "KZ"]}}, "d": {"$ne": "bot"}},  # foreign, not bots
             {"r": {"$ne": "x"}}, {"r": {"$nin": ["x", "y", 1]}}, {"$not": {"r": "y"}}, {"r": "x"},
             {"$or": [{"r": "z"}, {"r": {"$ne": "y"}}]}]
    m = matchers(rules)[which]
    assert kinds_of(rules) == {"exact": 2, "not-in": 5, "residual": 0, "rules": 6}
    assert m.candidates({"c": {"e": "RU"}, "r": "x"}) == [3, 4, 5]
    assert m.candidates({"c": {"e": "RU"}, "r": "y"}) == [1]
    assert m.candidates({"c": {"e": "DE"}, "r": "q"}) == [0, 1, 2, 3, 5]
    assert m.candidates({"c": {"e": "RU"}, "r": ["x"]}) == [1, 2, 3, 4, 5]  # a list: every rule, the program decides
    assert m.candidates({"c": {"e": Text("RU")}}) == [0, 1, 2, 3, 5]
    assert m.first_match({"c": {"e": "RU"}, "r": ["x"]}) == 1  # a list is not "x": $ne holds, as in GrowthBook
    assert m.first_match({"c": {"e": "DE"}, "d": "bot", "r": "x"}) == 3


def test_too_many_exclusions_stay_residual():
    rules = [{"r": {"$ne": f"v{i}"}} for i in range(300)]  # 300 strings x 300 rules: past the bound
    assert kinds_of(rules) == {"residual": 300, "rules": 300}


@cores()
def test_an_or_is_indexed_by_each_branch(which):
    rules = [{"$or": [{"r": "x"}, {"p": {"$prefix": "/cat"}}, {"h": {"$host": "example.com"}}]}, {"r": "y"}]
    m = matchers(rules)[which]
    assert kinds_of(rules)["residual"] == 0
    assert m.candidates({"h": "a.example.com"}) == [0]
    assert m.candidates({"p": "/cat/x", "r": "y"}) == [0, 1]
    assert m.candidates({"p": "/dog"}) == []


@cores()
def test_hosts_by_parent_domain(which):
    rules = [{"h": {"$host": "yandex.ru"}}, {"h": {"$host": ["google.com", "mail.ru"]}}, {"h": {"$host": "é.рф"}}]
    m = matchers(rules)[which]
    assert kinds_of(rules)["host"] == 3
    assert m.candidates({"h": "WWW.Yandex.RU."}) == [0]
    assert m.candidates({"h": "notyandex.ru"}) == []
    assert m.candidates({"h": "Ä.É.РФ"}) == [2] and m.first_match({"h": "Ä.É.РФ"}) == 2
    assert m.candidates({"h": "e.mail.ru"}) == [1]
    assert m.candidates({"h": Text("yandex.ru")}) == [0, 1, 2]  # a str subclass: every host rule of the path


@cores()
def test_networks_by_sorted_ranges(which):
    rules = [{"ip": {"$cidr": ["10.1.0.0/16"]}}, {"ip": {"$cidr": ["10.0.0.0/8", "2001:db8::/32"]}},
             {"ip": {"$inGroup": "nets"}}, {"ip": {"$cidr": "192.168.1.1"}}]
    m = matchers(rules)[which]
    assert kinds_of(rules)["ip"] == 4
    assert m.candidates({"ip": "10.1.2.3"}) == [0, 1, 2]
    assert m.candidates({"ip": "::ffff:10.9.0.1"}) == [1, 2]
    assert m.candidates({"ip": "2001:db8::7"}) == [1, 2]
    assert m.candidates({"ip": "192.168.1.1"}) == [3] and m.candidates({"ip": "192.168.1.2"}) == []
    assert m.candidates({"ip": "x"}) == [2]  # the list's string "x"
    assert m.first_match({"ip": "::ffff:10.1.0.1"}) == 0


def test_networks_spanning_too_many_segments_are_residual():
    rules = [{"ip": {"$cidr": [f"10.{i}.0.0/16"]}} for i in range(index.MAX_IP_SEGMENTS + 10)]
    rules.append({"ip": {"$cidr": "10.0.0.0/8"}})
    _c, _r, ix, always = compile_rules(rules)
    assert always == [len(rules) - 1]
    for m in matchers(rules):
        assert m.first_match({"ip": "10.70.1.1"}) == 70 and m.first_match({"ip": "10.200.1.1"}) == len(rules) - 1


def test_priority_is_kept_across_kinds():
    rules = [{"r": {"$not": {"$eq": "x"}}, "s": "yes"}, {"p": {"$prefix": "/cat"}}, {"r": "x"},
             {"ip": {"$cidr": "10.0.0.0/8"}}, {"h": {"$host": "example.com"}}]
    doc = {"r": "x", "p": "/cat", "ip": "10.0.0.1", "h": "example.com", "s": "yes"}
    for m in matchers(rules):
        assert m.candidates(doc) == [0, 1, 2, 3, 4]
        assert m.first_match(doc) == 1


def test_engine_decisions_go_through_the_index(build):
    rules = [{"name": f"s{i}", "when": {"landing.path": {"$regex": f"^/catalog/section{i}(/|$)"}}, "pool": "p"}
             for i in range(500)]
    cfg = {"pools": {"p": {"type": "static", "numbers": ["+74950000100"]}}, "rules": rules}
    engine = Engine.from_config(cfg, implementation=build)
    attrs = {"landing": {"path": "/catalog/section321/x"}, "device": {"type": "desktop"}}
    assert engine.match(attrs).rule == "s321"
    assert len(engine.matcher.candidates(attrs)) <= 2  # the bots rule and section321's


# -- regexes that are only literals are decided without sre; the same answer as sre ----------
piece = st.sampled_from(["a", "b", "/", "é", "[ab]", "(a|b)", "(/|$)", "(?:x|$)", "(a|)", "$", "\\Z", "(a\\Z|b)", ".", "a*"])
literal_regexes = st.builds(lambda start, ps: start + "".join(ps), st.sampled_from(["^", "\\A"]), st.lists(piece, max_size=4))
texts = st.lists(st.sampled_from(["a", "b", "/", "é", "x", "\n", "ab"]), max_size=5).map("".join)


@settings(max_examples=800)
@given(literal_regexes, st.lists(texts, min_size=1, max_size=6), st.data())
def test_literal_regexes_answer_as_sre(pattern, values, data):
    import re

    compiled, reference = (compile_condition_in(core, {"v": {"$regex": pattern}}) for core in both_cores())
    values = values + data.draw(st.lists(st.from_regex(pattern), max_size=3))  # values it matches, too
    values = values + [v + "\n" for v in values] + [v[:-1] for v in values if v]  # around the end
    for value in values + [Text(v) for v in values[:1]]:
        expected = re.match(pattern, value) is not None
        assert compiled.matches({"v": value}) is expected, (pattern, value)
        assert reference.matches({"v": value}) is expected, (pattern, value)


def compile_condition_in(core, condition):
    from k50core.rules import compile_condition

    return compile_condition(condition, core=core)
