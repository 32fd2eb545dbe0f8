"""Conditions: compile once, evaluate many times."""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from types import ModuleType
from typing import Any

from .. import _impl
from .compiler import Compiler, PathTable, compile_groups


def compile_condition(condition: Any, saved_groups: Mapping[str, Any] | None = None, *,
                      strict: bool = False, core: ModuleType | None = None) -> Any:
    """A compiled condition; call ``.matches(attributes)`` on it.

    ``strict=True`` raises ConfigError for anything suspicious (unknown
    operators, bad regexes or CIDRs, unknown lists); the default follows
    GrowthBook, where such a condition simply does not match.
    """
    groups, problems = compile_groups(saved_groups, strict)
    compiler = Compiler(PathTable(), groups, strict)
    compiler.problems.extend(problems)
    compiler.add(condition)
    compiler.raise_problems()
    core = core or _impl.core
    return core.Matcher(compiler.nodes, compiler.paths.paths, [0])


_CACHE: OrderedDict[tuple[str, str, str], Any] = OrderedDict()  # (condition, lists, build)
_CACHE_SIZE = 1024


def evaluate(condition: Any, attributes: Any, saved_groups: Mapping[str, Any] | None = None) -> bool:
    """GrowthBook's ``evalCondition``: whether ``attributes`` satisfy ``condition``.

    Compiled programs are kept in a small LRU keyed by the condition's repr
    (equal conditions print alike), so repeated calls skip compiling; with
    many distinct conditions, compile once with ``compile_condition``.
    """
    core = _impl.core
    key = (repr(condition), repr(saved_groups) if saved_groups else "", core.__name__)
    program = _CACHE.get(key)
    if program is None:
        program = compile_condition(condition, saved_groups, core=core)
        _CACHE[key] = program
        if len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    else:
        _CACHE.move_to_end(key)
    return program.matches(attributes)
