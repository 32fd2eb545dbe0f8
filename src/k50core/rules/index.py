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

from collections import Counter, defaultdict
from typing import Dict, List, Optional, Sequence, Tuple

from .opcodes import Op

Anchor = Tuple[int, frozenset]  # (slot, strings the value must be one of)


def _string_set(node: tuple) -> Optional[frozenset]:
    """The strings a value test requires, when it requires one of a set of strings."""
    op, _slot, _nkids, _end, arg = node
    if op == Op.EQ_STR:
        return frozenset((arg,))
    if op == Op.IN:
        values, has_true, has_false = arg
        if values and not has_true and not has_false and all(type(v) is str for v in values):
            return values
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
            strings = _string_set(nodes[t])
            if strings:
                found.append((slot, strings))
    return found


def build(nodes: Sequence[tuple], roots: Sequence[int]) -> Tuple[List[Tuple[int, Dict[str, List[int]]]], List[int]]:
    """(anchors, always) for ``Matcher``: per slot {string: rules}, and unanchored rules."""
    per_rule = [_anchors_of(nodes, r) for r in roots]
    popularity = Counter(slot for options in per_rule for slot, _ in options)
    tables: Dict[int, Dict[str, List[int]]] = defaultdict(lambda: defaultdict(list))
    always: List[int] = []
    for rule, options in enumerate(per_rule):
        if not options:
            always.append(rule)
            continue
        # fewest strings first (most selective), then the most shared path (fewer probes)
        slot, strings = min(options, key=lambda o: (len(o[1]), -popularity[o[0]], o[0]))
        for s in strings:
            tables[slot][s].append(rule)
    anchors = [(slot, {k: v for k, v in table.items()}) for slot, table in sorted(tables.items())]
    return anchors, always
