"""Rule index: first match over many rules at the cost of the visit's true clauses.

After the boolean-expression indexes of the literature (the k-index of Whang
et al., "Indexing Boolean Expressions", VLDB 2009; BE-Tree, Sadoghi and
Jacobsen, SIGMOD 2011), reduced to what first-match needs: each rule gets a
set of *keys*, any one of which must hold for the rule to match (a
disjunction). A visit's values are looked up in one structure per key kind,
the rules found (plus the *residual*: rules without keys) are merged in
priority order, and only those candidates run their full program.

Key kinds, each a necessary condition the VM would also test:

* ``EXACT`` — the value (or, for a list value, an element) equals a string:
  ``path: s``, ``$in`` of strings, the strings of an ``$inGroup`` list. Several
  such clauses of one rule on different paths make one *composite* key (the
  tuple of their values; ``region in {a, b} and source in {c}`` gives
  (a, c), (b, c)), which is what keeps ``$in`` rules over a few regions,
  sources and devices from sharing long candidate lists.
* ``LOWER`` — the same for ``$ini`` and case-insensitive equality (the value
  lowercased).
* ``HOST`` — ``$host``: the lowercased host or one of its parent domains.
* ``PREFIX`` — ``$prefix``, and regexes / globs whose every match starts with
  one of a few literals: a code-point trie per path. A regex alternative that
  ends the match (the ``$`` of ``^/catalog/section7(/|$)``) is a ``WHOLE`` key
  in the same trie, drawn only where the value ends, so /catalog/section70
  does not draw section7's rule.
* ``IP`` — ``$cidr`` and the networks of an ``$inGroup`` list: disjoint sorted
  ranges per path, each with the rules whose networks cover it.
* ``NOT_IN`` — ``$ne`` / ``$nin`` of strings and ``$not`` of an equality or ``$in``
  (``{"$not": {"geo.country": {"$in": ["RU", "KZ"]}}}``): the rule cannot hold when the
  value is one of those strings. Per path, each such string draws the rules that do not
  exclude it, any other value all of them; kept only for rules with no other key (it is
  the weakest), and only while those lists stay small.

For an AND the cheapest key set is chosen (estimated by how many rules
share its keys); an ``$or`` is indexed only when each branch is. Everything
else — ``$not``, ``$nor``, ``$ne``, unanchored or case-insensitive regexes,
``$exists``, comparisons — is left to the program, and a rule with no
indexable clause is residual, a candidate for every visit.
"""
from __future__ import annotations

import bisect
import itertools
from collections import defaultdict
from collections.abc import Sequence
from typing import NamedTuple, cast

from .bulk import gc_paused
from .opcodes import Code

EXACT, LOWER, HOST, PREFIX, IP, WHOLE, NOT_IN = 0, 1, 2, 3, 4, 5, 6
KIND_NAMES = ("exact", "lower", "host", "prefix", "ip", "prefix", "not-in")

MAX_COMPOSITE_KEYS = 64   # a composite key set is the product of its clauses' sets
MAX_COMPOSITE_SLOTS = 3   # paths one composite key combines (the probe keeps their hashes on the stack)
MAX_IP_SEGMENTS = 64      # a rule whose networks span more segments stays out of the IP index
MAX_NOT_IN_ENTRIES = 1 << 16  # per path: excluded strings x NOT_IN rules; past it they stay residual
IP_END = {4: 1 << 32, 6: 1 << 128}

# A key: (EXACT | LOWER | HOST, slots, values), (PREFIX | WHOLE, slot, text), (IP, slot, (version, first, last))
# or (NOT_IN, slot, excluded strings).
# WHOLE is a regex alternative ending in ``$`` / ``\Z``: the value is the text, or the text and "\n".
Key = tuple[int, object, object]
Option = tuple[Key, ...]
Segments = tuple[tuple[int, tuple[int, ...]], ...]   # (range start, rules) sorted; a gap has no rules


class RuleIndex(NamedTuple):
    """What the matchers probe (both builds read this same structure)."""
    signatures: tuple[tuple[int, tuple[int, ...]], ...]          # by id: (EXACT | LOWER | HOST | NOT_IN, slots)
    hashed: dict[tuple[int, tuple[str, ...]], tuple[int, ...]]   # (signature id, values) -> rules
    prefixes: dict[int, dict[str, tuple[int, ...]]]               # slot -> {literal prefix: rules}
    wholes: dict[int, dict[str, tuple[int, ...]]]                 # slot -> {text the value is (+ "\n"): rules}
    networks: dict[int, tuple[Segments, Segments]]               # slot -> (IPv4, IPv6) segments
    defaults: dict[int, tuple[int, ...]] = {}                    # NOT_IN signature id -> rules (a value not hashed)


def _string_keys(kind: int, slot: int, values: object) -> list[Key] | None:
    if not all(type(v) is str for v in values):  # type: ignore[attr-defined]
        return None
    slots = (slot,)  # one tuple shared by the keys (equal either way; fewer objects at 100,000 rules)
    return [(kind, slots, (v,)) for v in sorted(values)]  # type: ignore[call-overload]


def _ip_keys(slot: int, v4: Sequence[tuple[int, int]], v6: Sequence[tuple[int, int]]) -> list[Key]:
    keys: list[Key] = [(IP, slot, (4, a, b)) for a, b in v4]
    return keys + [(IP, slot, (6, a, b)) for a, b in v6]


def clause_keys(slot: int, node: tuple) -> list[Key] | None:
    """Keys of one value test at ``slot`` (one must hold if the test does), or None.

    An empty list means the test never holds (``$in: []``). Each rule here
    mirrors what the VM tests, so a key fails only where the VM's test fails.
    """
    op, _slot, _nkids, _end, arg = node
    if op == Code.EQ_STR:
        return [(EXACT, (slot,), (arg,))]
    if op == Code.EQ_STR_I:
        return [(LOWER, (slot,), (arg,))]
    if op in (Code.IN, Code.INI):
        values, has_true, has_false = arg
        if has_true or has_false:  # true / false values are no strings
            return None
        return _string_keys(EXACT if op == Code.IN else LOWER, slot, values)
    if op == Code.GROUP:
        values, has_true, has_false, v4, v6 = arg
        if has_true or has_false:
            return None
        keys = _string_keys(EXACT, slot, values)
        return None if keys is None else keys + _ip_keys(slot, v4, v6)
    if op == Code.CIDR:
        return _ip_keys(slot, arg[0], arg[1])
    if op == Code.HOST:
        return [(HOST, (slot,), (h,)) for h in sorted(set(arg))]
    if op == Code.NIN:
        return _not_in_key(slot, arg[0])
    if op == Code.PREFIX:
        if "" in arg:  # every string starts with ""
            return None
        return [(PREFIX, slot, p) for p in _shortest(arg)]
    if op == Code.REGEX:
        texts = arg[2] if len(arg) > 2 else ()  # (text, the match ends there), see compiler.regex_arg
        if texts:
            opens = _shortest([t for t, whole in texts if not whole])
            return [(PREFIX, slot, t) for t in opens] + [
                (WHOLE, slot, t) for t, whole in texts if whole and not t.startswith(tuple(opens))]
        if arg[1]:  # anchored, case-sensitive: every match starts with one of these
            return [(PREFIX, slot, p) for p in _shortest(arg[1])]
    return None


def _not_in_key(slot: int, values: object) -> list[Key] | None:
    """A NOT_IN key for a test that fails when a str value is one of ``values`` (None: no such str)."""
    excluded = tuple(sorted(v for v in values if type(v) is str))  # type: ignore[attr-defined]
    return [(NOT_IN, slot, excluded)] if excluded else None


def negated_keys(slot: int, nodes: Sequence[tuple], t: int) -> list[Key] | None:
    """NOT_IN keys of ``NOT(test)`` when the test is one equality or ``$in`` (node t the test)."""
    if nodes[t][3] != t + 1:  # more than one node: not a single test
        return None
    op, arg = nodes[t][0], nodes[t][4]
    if op == Code.EQ_STR:
        return _not_in_key(slot, (arg,))
    if op == Code.IN:
        return _not_in_key(slot, arg[0])
    return None


def _shortest(prefixes: Sequence[str]) -> list[str]:
    """The prefixes no other one of them starts ("/a" covers "/a/"): fewer lists to merge."""
    out: list[str] = []
    for p in sorted(set(prefixes)):  # a string sorts right after its prefixes
        if not out or not p.startswith(out[-1]):
            out.append(p)
    return out


def _kids(nodes: Sequence[tuple], i: int) -> list[int]:
    out, c = [], i + 1
    for _ in range(nodes[i][2]):
        out.append(c)
        c = nodes[c][3]
    return out


def _conjuncts(nodes: Sequence[tuple], i: int) -> list[int]:
    """The clauses ANDed at node i (nested ANDs flattened)."""
    if nodes[i][0] != Code.AND:
        return [i]
    return [c for k in _kids(nodes, i) for c in _conjuncts(nodes, k)]


_WEIGHT = {EXACT: 1.0, LOWER: 1.2, HOST: 1.5, IP: 2.0, PREFIX: 2.0, WHOLE: 1.0, NOT_IN: 1000.0}


def _local_cost(option: Option) -> float:
    """Cost of a key set without knowing the other rules (for ``$or`` branches)."""
    return sum(_key_weight(k) for k in option)


def _key_weight(key: Key) -> float:
    if key[0] == PREFIX:  # a short prefix ("/") is true for most visits
        return _WEIGHT[PREFIX] + 8.0 / len(key[2])  # type: ignore[arg-type]
    if key[0] == EXACT and len(key[1]) > 1:  # type: ignore[arg-type]
        return 0.3 ** (len(key[1]) - 1)  # type: ignore[arg-type]  # a visit hits a combination rarely
    return _WEIGHT[key[0]]


def options(nodes: Sequence[tuple], i: int) -> list[Option]:
    """Every key set that indexes the condition at node i (one must hold for it to)."""
    found: list[Option] = []
    exact_by_slot: dict[int, Option] = {}
    for c in _conjuncts(nodes, i):
        op = nodes[c][0]
        if op == Code.FALSE:
            return [()]  # never holds: no key at all
        if op == Code.FIELD_SLOT:
            slot = nodes[c][1]
            for t in _conjuncts(nodes, c + 1) if nodes[c + 1][0] == Code.AND else (c + 1,):
                if nodes[t][0] == Code.NOT:  # $ne, $not of $in / an equality
                    keys = negated_keys(slot, nodes, t + 1)
                else:
                    keys = clause_keys(slot, nodes[t])
                if keys is None:
                    continue
                option = tuple(keys)
                found.append(option)
                if option and all(k[0] == EXACT for k in option):
                    best = exact_by_slot.get(slot)
                    if best is None or len(option) < len(best):
                        exact_by_slot[slot] = option
        elif op == Code.NOT and nodes[c + 1][0] == Code.FIELD_SLOT and nodes[c + 1][3] == nodes[c][3]:
            keys = negated_keys(nodes[c + 1][1], nodes, c + 2)  # {"$not": {"path": test}}
            if keys is not None:
                found.append(tuple(keys))
        elif op == Code.OR:
            branches = [options(nodes, k) for k in _kids(nodes, c)]
            if all(branches):
                union = {key for b in branches for key in min(b, key=_local_cost)}
                found.append(tuple(sorted(union, key=repr)))
    composite = _composite(exact_by_slot)
    if composite is not None:
        found.append(composite)
    return found


def _composite(exact_by_slot: dict[int, Option]) -> Option | None:
    """One key per combination of values of up to three EXACT clauses on different paths."""
    if len(exact_by_slot) < 2:  # one path or none: nothing to combine
        return None
    chosen: list[tuple[int, Option]] = []
    size = 1
    for slot, keys in sorted(exact_by_slot.items(), key=lambda kv: (len(kv[1]), kv[0])):
        if len(chosen) == MAX_COMPOSITE_SLOTS or size * len(keys) > MAX_COMPOSITE_KEYS:
            break
        chosen.append((slot, keys))
        size *= len(keys)
    if len(chosen) < 2:
        return None
    chosen.sort()
    slots = tuple(s for s, _ in chosen)
    combos = itertools.product(*[[k[2][0] for k in keys] for _, keys in chosen])  # type: ignore[index]
    return tuple((EXACT, slots, values) for values in combos)


def _choose(per_rule: list[list[Option]]) -> list[Option | None]:
    """Each rule's cheapest option: the fewest other rules sharing its keys, weighted by kind."""
    share: dict[Key, int] = defaultdict(int)
    for opts in per_rule:
        if len(opts) == 1:
            for key in set(opts[0]):
                share[key] += 1
        elif opts:
            for key in {k for o in opts for k in o}:
                share[key] += 1

    price: dict[Key, float] = {}  # per key, once: composite keys recur in many rules' options

    def cost(option: Option) -> float:
        total = 0.0  # the same additions in the same order as sum(): the same choice
        for k in option:
            p = price.get(k)
            if p is None:
                p = price[k] = share[k] * _key_weight(k)
            total += p
        return total

    # a rule with one option has no choice to make (most rules of a large set: a path regex, a host)
    return [opts[0] if len(opts) == 1 else min(opts, key=cost) if opts else None for opts in per_rule]


def _segments(ranges: list[tuple[int, int, int]], end: int, demoted: set[int]) -> Segments:
    """Disjoint segments covering the ranges (first, last, rule), each with its rules."""
    points = sorted({a for a, _, _ in ranges} | {b + 1 for _, b, _ in ranges if b + 1 < end})
    covering: list[set[int]] = [set() for _ in points]
    for first, last, rule in ranges:
        k0 = bisect.bisect_left(points, first)
        k1 = bisect.bisect_left(points, last + 1) if last + 1 < end else len(points)
        if k1 - k0 > MAX_IP_SEGMENTS:
            demoted.add(rule)
            continue
        for k in range(k0, k1):
            covering[k].add(rule)
    return tuple((p, tuple(sorted(rs))) for p, rs in zip(points, covering))


def build(nodes: Sequence[tuple], roots: Sequence[int]) -> tuple[RuleIndex, list[int]]:
    """(index, residual rules) for ``Matcher``; compiled once when a rule set loads."""
    with gc_paused():  # all it allocates lives on (see bulk.py)
        return _build(nodes, roots)


def _build(nodes: Sequence[tuple], roots: Sequence[int]) -> tuple[RuleIndex, list[int]]:
    chosen = _choose([options(nodes, r) for r in roots])
    always = [rule for rule, option in enumerate(chosen) if option is None]
    sig_ids: dict[tuple[int, tuple[int, ...]], int] = {}
    hashed: dict[tuple[int, tuple[str, ...]], list[int]] = defaultdict(list)
    prefixes: dict[int, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    wholes: dict[int, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    ranges: dict[tuple[int, int], list[tuple[int, int, int]]] = defaultdict(list)
    excluding: dict[int, dict[int, list[tuple[str, ...]]]] = defaultdict(lambda: defaultdict(list))
    prev: tuple[int, object, int] = (-1, None, -1)  # (kind, slots, signature id) of the key before
    for rule, option in enumerate(chosen):
        for kind, where, what in option or ():
            if kind == NOT_IN:
                excluding[where][rule].append(what)  # type: ignore[index,arg-type]
            elif kind == PREFIX:
                prefixes[where][what].append(rule)  # type: ignore[index]
            elif kind == WHOLE:
                wholes[where][what].append(rule)  # type: ignore[index]
            elif kind == IP:
                version, first, last = cast(tuple[int, int, int], what)
                ranges[where, version].append((first, last, rule))  # type: ignore[index]
            else:
                if kind != prev[0] or where != prev[1]:  # an option's keys mostly share their slots
                    prev = (kind, where, sig_ids.setdefault((kind, where), len(sig_ids)))  # type: ignore[arg-type]
                hashed[prev[2], what].append(rule)  # type: ignore[index]
    demoted: set[int] = set()
    defaults: dict[int, tuple[int, ...]] = {}
    for slot, by_rule in sorted(excluding.items()):
        # a value draws the rules one of whose NOT_IN keys on this path does not exclude it
        values = sorted({x for sets in by_rule.values() for excluded in sets for x in excluded})
        if len(values) * len(by_rule) > MAX_NOT_IN_ENTRIES:
            demoted.update(by_rule)
            continue
        sig = sig_ids.setdefault((NOT_IN, (slot,)), len(sig_ids))
        defaults[sig] = tuple(sorted(by_rule))
        for x in values:
            hashed[sig, (x,)] = [r for r, sets in by_rule.items() if any(x not in e for e in sets)]
    networks: dict[int, tuple[Segments, Segments]] = {}
    for slot in sorted({s for s, _ in ranges}):
        networks[slot] = (_segments(ranges.get((slot, 4), []), IP_END[4], demoted),
                          _segments(ranges.get((slot, 6), []), IP_END[6], demoted))
    if demoted:  # too wide for the IP index: such rules are tried for every visit instead
        always = sorted(set(always) | demoted)
    index = RuleIndex(
        signatures=tuple(sorted(sig_ids, key=sig_ids.__getitem__)),
        hashed={k: _unique(v) for k, v in hashed.items()},
        prefixes={s: {p: _unique(v) for p, v in t.items()} for s, t in prefixes.items()},
        wholes={s: {p: _unique(v) for p, v in t.items()} for s, t in wholes.items()},
        networks=networks,
        defaults=defaults,
    )
    return index, always


def _unique(rules: list[int]) -> tuple[int, ...]:
    if len(rules) < 2:  # most keys of a large rule set draw one rule
        return tuple(rules)
    return tuple(sorted(set(rules)))


def describe(index: RuleIndex, always: Sequence[int], nrules: int) -> dict[str, int]:
    """How many rules each kind of index holds, and how many are residual (for reports)."""
    kinds: dict[str, set[int]] = defaultdict(set)
    for (sig, _values), rules in list(index.hashed.items()) + [((s, ()), r) for s, r in index.defaults.items()]:
        kind, slots = index.signatures[sig]
        name = "composite" if len(slots) > 1 else KIND_NAMES[kind]
        kinds[name].update(rules)
    for table in list(index.prefixes.values()) + list(index.wholes.values()):
        for rules in table.values():
            kinds["prefix"].update(rules)
    for v4, v6 in index.networks.values():
        for _, rules in v4 + v6:
            kinds["ip"].update(rules)
    out = {name: len(rules - set(always)) for name, rules in sorted(kinds.items())}
    out["residual"] = len(always)
    out["rules"] = nrules
    return out
