"""Conditions: compile once, evaluate many times."""
from __future__ import annotations

from types import ModuleType
from typing import Any, Mapping, Optional

from .. import _impl
from .compiler import Compiler, PathTable, compile_groups


def compile_condition(condition: Any, saved_groups: Optional[Mapping[str, Any]] = None, *,
                      strict: bool = False, core: Optional[ModuleType] = None) -> Any:
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


def evaluate(condition: Any, attributes: Any, saved_groups: Optional[Mapping[str, Any]] = None) -> bool:
    """GrowthBook's ``evalCondition``: whether ``attributes`` satisfy ``condition``.

    Compiles on every call; compile once with ``compile_condition`` (or load
    rules into an Engine) where speed matters.
    """
    return compile_condition(condition, saved_groups).matches(attributes)
