"""Property tests: the compiled build answers exactly as the reference."""
from hypothesis import given, settings, strategies as st

from k50core.rules import compile_condition, index
from k50core.rules.compiler import Compiler, PathTable, compile_groups

from .conftest import both_cores
from .strategies import GROUPS, conditions, documents

COMPILED, REFERENCE = both_cores()


@settings(max_examples=600)  # within the suite's ~20 s a test
@given(conditions(), st.lists(documents(), min_size=1, max_size=4))
def test_compiled_equals_reference(condition, docs):
    fast = compile_condition(condition, GROUPS, core=COMPILED)
    slow = compile_condition(condition, GROUPS, core=REFERENCE)
    for doc in docs:
        assert fast.matches(doc) == slow.matches(doc), (condition, doc)


# Rule sets shaped like call-tracking configs, so the anchor index is exercised.
anchor_paths = st.sampled_from(["a", "b", "c.d"])
anchor_values = st.sampled_from(["x", "y", "abc", "1", "é"])
anchored = st.one_of(
    st.builds(lambda p, v: {p: v}, anchor_paths, anchor_values),
    st.builds(lambda p, vs: {p: {"$in": vs}}, anchor_paths, st.lists(anchor_values, min_size=1, max_size=3)),
    st.builds(lambda p, v, q, w: {p: v, q: {"$ne": w}}, anchor_paths, anchor_values, anchor_paths, anchor_values),
    st.builds(lambda p, vs, q: {p: {"$in": vs, "$exists": True}, q: {"$exists": False}}, anchor_paths,
              st.lists(anchor_values, min_size=1, max_size=2), anchor_paths),
    # prefix anchors: $prefix, and regexes whose matches start with known literals
    st.builds(lambda p, vs: {p: {"$prefix": vs}}, anchor_paths, st.lists(st.sampled_from(["a", "ab", "x", "é", "abc"]), min_size=1, max_size=3)),
    st.builds(lambda p, r, q, v: {p: {"$regex": r}, q: v}, anchor_paths,
              st.sampled_from(["^(ab|x)", "^a[bc]", "^abc$", "^(?:é|y)+", "\\Ax"]), anchor_paths, anchor_values),
)
rule_sets = st.lists(st.one_of(anchored, anchored, conditions()), min_size=1, max_size=12)
anchor_docs = st.one_of(
    documents(),
    st.fixed_dictionaries({}, optional={"a": st.one_of(anchor_values, st.lists(anchor_values, max_size=3), st.integers(0, 2)),
                                        "b": anchor_values, "c": st.fixed_dictionaries({"d": anchor_values})}),
)


def _matchers(rules):
    groups, _ = compile_groups(GROUPS, strict=False)
    compiler = Compiler(PathTable(), groups, strict=False)
    roots = [compiler.add(r) for r in rules]
    anchors, always = index.build(compiler.nodes, roots)
    args = (compiler.nodes, compiler.paths.paths, roots, anchors, always)
    return COMPILED.Matcher(*args), REFERENCE.Matcher(*args)


@settings(max_examples=800)
@given(rule_sets, st.lists(anchor_docs, min_size=1, max_size=5))
def test_first_match_with_index_equals_naive_loop(rules, docs):
    fast, slow = _matchers(rules)
    assert fast.first_match_many(docs) == slow.first_match_many(docs)
    for doc in docs:
        assert fast.first_match(doc) == slow.first_match(doc)
        for i in range(len(rules)):
            assert fast.eval(i, doc) == slow.eval(i, doc)
