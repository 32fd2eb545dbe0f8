"""Reference VM for condition programs: a plain recursive interpreter.

Same API as the compiled ``Matcher`` in ``_match.pyx``. ``first_match``
evaluates the candidates of the rule index (``rule_index.Probe``, a plain
reading of the structure the compiled build packs into C arrays); the tests
check both builds against trying every rule with ``eval``.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ..rules import ipranges
from ..rules.index import RuleIndex
from ..rules.opcodes import Op
from ..rules.values import deep_equal, js_compare, js_type, version_compare
from .rule_index import Probe

_MISSING = object()


def resolve(segments: tuple[str, ...], doc: Any) -> Any:
    """A dotted path inside nested dicts (lists: index or ``length``); None if absent."""
    cur = doc
    for seg in segments:
        if isinstance(cur, dict):
            cur = cur.get(seg, _MISSING)
            if cur is _MISSING:
                return None
        elif isinstance(cur, list):
            if seg == "length":
                cur = len(cur)
            elif seg.isdigit() and seg.isascii() and (seg == "0" or seg[0] != "0") and int(seg) < len(cur):
                cur = cur[int(seg)]
            else:
                return None
        else:
            return None
    return cur


def _in_set(arg: tuple, v: Any, insensitive: bool) -> bool:
    """``$in``: v is one of the values; a list v shares an element with them."""
    if isinstance(v, list):
        return any(_scalar_in(arg, x, insensitive) for x in v)
    return _scalar_in(arg, v, insensitive)


def _scalar_in(arg: tuple, v: Any, insensitive: bool) -> bool:
    values, has_true, has_false = arg[0], arg[1], arg[2]
    if v is True:
        return has_true
    if v is False:
        return has_false
    if isinstance(v, str):
        return (v.lower() if insensitive else v) in values
    if v is None or type(v) in (int, float):
        return v in values
    return False


def _regex(arg: tuple, v: Any) -> bool:
    test, prefixes = arg[0], arg[1]
    return isinstance(v, str) and (not prefixes or v.startswith(prefixes)) and test(v) is not None


class Matcher:
    """Evaluates the conditions (roots) of one compiled rule set."""

    def __init__(self, nodes: Sequence[tuple], paths: Sequence[tuple[str, ...]], roots: Sequence[int],
                 index: RuleIndex | None = None, always: Sequence[int] | None = None) -> None:
        self.nodes = [tuple(n) for n in nodes]
        self.paths = [tuple(p) for p in paths]
        self.roots = list(roots)
        # without an index every rule is a candidate for every visit
        self.probe = Probe(index or None, range(len(self.roots)) if always is None else always)

    def __len__(self) -> int:
        return len(self.roots)

    def matches(self, attributes: Any) -> bool:
        """The first condition (the only one of a single compiled condition)."""
        return self.eval(0, attributes)

    def eval(self, rule: int, attributes: Any) -> bool:
        return self._ev(self.roots[rule], attributes, attributes, {})

    def candidates(self, attributes: Any) -> list[int]:
        """The rules the index gives for these attributes, in order (each is then evaluated)."""
        return self.probe.candidates(self._values(attributes, {}))

    def first_match(self, attributes: Any) -> int:
        cache: dict[int, Any] = {}
        for i in self.probe.candidates(self._values(attributes, cache)):
            if self._ev(self.roots[i], attributes, attributes, cache):
                return i
        return -1

    def _values(self, doc: Any, cache: dict[int, Any]) -> Any:
        def value_of(slot: int) -> Any:
            value = cache.get(slot, _MISSING)
            if value is _MISSING:
                value = cache[slot] = resolve(self.paths[slot], doc)
            return value
        return value_of

    def first_match_many(self, batch: Iterable[Any]) -> list[int]:
        return [self.first_match(a) for a in batch]

    def pick_many(self, batch: Iterable[Any], outcomes: Sequence[Any], default: Any) -> list[Any]:
        """``outcomes[first_match(a)]`` (``default`` for -1) for each a in batch."""
        outcomes = tuple(outcomes)
        if len(outcomes) != len(self.roots):
            raise ValueError("one outcome per rule expected")
        return [default if r < 0 else outcomes[r] for r in map(self.first_match, batch)]

    # -- interpreter ------------------------------------------------------------
    def _ev(self, i: int, v: Any, doc: Any, cache: dict[int, Any]) -> bool:
        op, slot, nkids, end, arg = self.nodes[i]
        if op == Op.TRUE:
            return True
        if op == Op.FALSE:
            return False
        if op in (Op.AND, Op.OR, Op.NOR):
            c, hit = i + 1, False
            for _ in range(nkids):
                r = self._ev(c, v, doc, cache)
                if r != (op == Op.AND):
                    hit = True
                    break
                c = self.nodes[c][3]
            if op == Op.AND:
                return not hit
            return hit if op == Op.OR else not hit
        if op == Op.NOT:
            return not self._ev(i + 1, v, doc, cache)
        if op == Op.FIELD_SLOT:
            value = cache.get(slot, _MISSING)
            if value is _MISSING:
                value = cache[slot] = resolve(self.paths[slot], doc)
            return self._ev(i + 1, value, doc, cache)
        if op == Op.FIELD_PATH:
            return self._ev(i + 1, resolve(arg, v), doc, cache)
        if op == Op.IS_NULL:
            return v is None
        if op == Op.EQ_STR:
            return isinstance(v, str) and v == arg
        if op == Op.EQ_STR_I:
            return isinstance(v, str) and v.lower() == arg
        if op == Op.EQ_NUM:
            return type(v) in (int, float) and v == arg
        if op == Op.EQ_BOOL:
            return isinstance(v, bool) and v is arg
        if op == Op.EQ_DEEP:
            return deep_equal(arg, v)
        if op == Op.CMP:
            return js_compare(v, arg[0], arg[1])
        if op == Op.VCMP:
            return version_compare(v, arg[0], arg[1], arg[2])
        if op in (Op.IN, Op.INI):
            return _in_set(arg, v, op == Op.INI)
        if op in (Op.NIN, Op.NINI):
            return not _in_set(arg, v, op == Op.NINI)
        if op == Op.ALL:
            if not isinstance(v, list):
                return False
            c = i + 1
            for _ in range(nkids):
                if not any(self._ev(c, x, doc, cache) for x in v):
                    return False
                c = self.nodes[c][3]
            return True
        if op == Op.ELEM:
            return isinstance(v, list) and any(x is not None and self._ev(i + 1, x, doc, cache) for x in v)
        if op == Op.SIZE:
            return isinstance(v, list) and self._ev(i + 1, len(v), doc, cache)
        if op == Op.EXISTS:
            return (v is not None) == arg
        if op == Op.TYPE:
            return js_type(v) == arg
        if op == Op.REGEX:
            return _regex(arg, v)
        if op == Op.NREGEX:
            return not _regex(arg, v)
        if op in (Op.GROUP, Op.NGROUP):
            hit = _in_set(arg, v, False) or (bool(arg[3] or arg[4]) and ipranges.contains((arg[3], arg[4]), v))
            return hit if op == Op.GROUP else not hit
        if op == Op.CIDR:
            return ipranges.contains(arg, v)
        if op == Op.HOST:
            if not isinstance(v, str):
                return False
            h = v.lower().rstrip(".")
            return any(h == x or h.endswith("." + x) for x in arg)
        if op == Op.PREFIX:
            return isinstance(v, str) and v.startswith(arg)
        if op == Op.CONTAINS:
            return isinstance(v, str) and any(x in v for x in arg)
        raise ValueError(f"unknown opcode {op}")  # pragma: no cover - compiler emits only known ones
