"""Anchor index for first-match over many rules.

Most rules require one attribute to equal a string (``query.utm_campaign:
spring``) or to be one of a few (``geo.region: {$in: [...]}``). Such a clause
is the rule's *anchor*: a rule can only match a visit whose value at that
path is one of the anchor's strings. The index maps each anchor path to
{string: [rules]}; the matcher probes it with the visit's values and
evaluates only those candidates plus the rules without an anchor, in
priority order. The reference matcher ignores the index and tries every
rule, which is how the tests check it.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Dict, List, Optional, Sequence, Tuple

from .opcodes import Op

Anchor = Tuple[int, frozenset, bool]  # (slot, strings, True: prefixes of the value)


def _string_set(node: tuple) -> Optional[Tuple[frozenset, bool]]:
    """The strings a value test requires the value to equal (or, with True, start with)."""
    op, _slot, _nkids, _end, arg = node
    if op == Op.EQ_STR:
        return frozenset((arg,)), False
    if op == Op.IN:
        values, has_true, has_false = arg
        if values and not has_true and not has_false and all(type(v) is str for v in values):
            return values, False
    if op == Op.PREFIX and arg and all(arg):
        return frozenset(arg), True
    if op == Op.REGEX and arg[1]:  # a regex whose matches all start with known literals
        return frozenset(arg[1]), True
    return None


def _anchors_of(nodes: Sequence[tuple], root: int) -> List[Anchor]:
    """Candidate anchors of the rule at ``root``: FIELD_SLOT clauses ANDed at its top."""
    clauses = [root]
    if nodes[root][0] == Op.AND:
        clauses, c = [], root + 1
        for _ in range(nodes[root][2]):
            clauses.append(c)
            c = nodes[c][3]
    found = []
    for c in clauses:
        if nodes[c][0] != Op.FIELD_SLOT:
            continue
        slot, test = nodes[c][1], c + 1
        tests = [test]
        if nodes[test][0] == Op.AND:  # {path: {$in: [...], $ne: ...}}
            tests, t = [], test + 1
            for _ in range(nodes[test][2]):
                tests.append(t)
                t = nodes[t][3]
        for t in tests:
            found_set = _string_set(nodes[t])
            if found_set:
                found.append((slot, found_set[0], found_set[1]))
    return found


def build(nodes: Sequence[tuple], roots: Sequence[int]) -> Tuple[List[tuple], List[int]]:
    """(anchors, always) for ``Matcher``.

    An anchor is ``(slot, {string: rules}, prefix lengths)``: with no lengths
    the visit's value at the slot is looked up whole; with lengths, each of
    its prefixes of those lengths is (``landing.path`` starting "/promo/").
    ``always`` lists the rules without an anchor.
    """
    per_rule = [_anchors_of(nodes, r) for r in roots]
    distinct: Dict[Tuple[int, bool], set] = defaultdict(set)
    for options in per_rule:
        for slot, strings, prefix in options:
            distinct[slot, prefix].update(strings)
    tables: Dict[Tuple[int, bool], Dict[str, List[int]]] = defaultdict(lambda: defaultdict(list))
    always: List[int] = []
    for rule, options in enumerate(per_rule):
        if not options:
            always.append(rule)
            continue
        # fewest strings (most selective), then a whole-value probe over prefixes,
        # then the path whose rules ask for the most different strings
        slot, strings, prefix = min(options, key=lambda o: (len(o[1]), o[2], -len(distinct[o[0], o[2]]), o[0]))
        for s in strings:
            tables[slot, prefix][s].append(rule)
    anchors = []
    for (slot, prefix), table in sorted(tables.items()):
        lengths = tuple(sorted({len(k) for k in table})) if prefix else ()
        anchors.append((slot, {k: v for k, v in table.items()}, lengths))
    return anchors, always
