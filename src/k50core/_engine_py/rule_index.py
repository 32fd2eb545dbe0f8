"""Reference probe of the rule index (``k50core.rules.index``), in plain Python.

Reads the same ``RuleIndex`` the compiled ``RuleProbe`` packs into C arrays,
with dicts and ``bisect`` instead, so the two probes can be checked against
each other and both against trying every rule.
"""
from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable, Sequence
from typing import Any

from ..rules import ipranges
from ..rules.index import HOST, LOWER, NOT_IN, RuleIndex

MAX_PROBE = 64  # as the compiled probe: more values than this draw the signature's every rule


class Probe:
    """Candidate rules of a visit: the index's hits and the residual rules, in rule order."""

    def __init__(self, index: RuleIndex | None, always: Sequence[int]) -> None:
        self.index = index
        self.always = sorted(set(always))
        self.every: dict[int, set[int]] = {}   # per signature: all its rules (the fallback)
        self.lengths: dict[int, list[int]] = {}  # per prefix path: the prefix lengths to try
        self.wholes: dict[int, dict[str, tuple[int, ...]]] = {}
        self.starts: dict[tuple[int, int], list[int]] = {}
        if index:
            for (sig, _values), rules in index.hashed.items():
                self.every.setdefault(sig, set()).update(rules)
            for slot, table in index.prefixes.items():
                self.lengths[slot] = sorted({len(p) for p in table})
            self.wholes = dict(index.wholes)
            for slot, (v4, v6) in index.networks.items():
                self.starts[slot, 4] = [s for s, _ in v4]
                self.starts[slot, 6] = [s for s, _ in v6]

    def candidates(self, value_of: Callable[[int], Any]) -> list[int]:
        found = set(self.always)
        index = self.index
        if not index:
            return sorted(found)
        for sig, (kind, slots) in enumerate(index.signatures):
            if kind == NOT_IN:  # the rules that do not exclude this string; any other value: all
                v = value_of(slots[0])
                hit = index.hashed.get((sig, (v,))) if type(v) is str else None
                found.update(index.defaults[sig] if hit is None else hit)
                continue
            if kind == HOST:
                for key in _hosts(value_of(slots[0])):
                    if key is None:
                        found |= self.every.get(sig, set())
                    else:
                        found.update(index.hashed.get((sig, (key,)), ()))
                continue
            choices = [_strings(value_of(s), kind == LOWER) for s in slots]
            if any(c is None for c in choices) or _product(choices) > MAX_PROBE:
                if all(c is None or c for c in choices):
                    found |= self.every.get(sig, set())
                continue
            for combo in itertools.product(*choices):  # type: ignore[arg-type]
                found.update(index.hashed.get((sig, combo), ()))
        for slot, table in index.prefixes.items():
            v = value_of(slot)
            if type(v) is str:
                for n in self.lengths[slot]:
                    if n > len(v):
                        break
                    found.update(table.get(v[:n], ()))
            elif isinstance(v, str):  # a str subclass may compare its own way
                found.update(r for rules in table.values() for r in rules)
        for slot, table in self.wholes.items():
            v = value_of(slot)
            if type(v) is str:  # a regex alternative ending in $ also matches before a last "\n"
                found.update(table.get(v, ()))
                if v.endswith("\n"):
                    found.update(table.get(v[:-1], ()))
            elif isinstance(v, str):
                found.update(r for rules in table.values() for r in rules)
        for slot, segments in index.networks.items():
            parsed = ipranges.ip_to_int(value_of(slot))
            if parsed is None:
                continue
            version, n = parsed
            at = bisect.bisect_right(self.starts[slot, version], n)
            if at:
                found.update(segments[0 if version == 4 else 1][at - 1][1])
        return sorted(found)


def _strings(v: Any, lower: bool) -> list[str] | None:
    """The strings an EXACT / LOWER key may equal for value v; None: cannot tell (take every rule)."""
    if type(v) is str:
        return [v.lower() if lower else v]
    if isinstance(v, str):
        return None
    if isinstance(v, list):
        out = []
        for x in v:
            if type(x) is str:
                out.append(x.lower() if lower else x)
            elif isinstance(x, str):
                return None
        return out if len(out) <= MAX_PROBE else None
    return []


def _hosts(v: Any) -> list[str | None]:
    """A host and its parent domains, as ``$host`` compares them; [None]: cannot tell."""
    if type(v) is not str:
        return [None] if isinstance(v, str) else []
    h = v.lower().rstrip(".")
    hosts: list[str | None] = [h]
    return hosts + [h[i + 1:] for i, c in enumerate(h) if c == "."]


def _product(choices: list[list[str] | None]) -> int:
    n = 1
    for c in choices:
        n *= len(c or ())
    return n
