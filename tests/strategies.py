"""Hypothesis strategies: random conditions and attribute documents."""
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
