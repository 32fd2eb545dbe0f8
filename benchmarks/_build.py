"""Compiles a benchmark rule set into matchers of both builds."""
from __future__ import annotations

from typing import Any

from k50core import _impl
from k50core.rules import index
from k50core.rules.compiler import Compiler, PathTable, compile_groups


def matcher(conditions: list[dict[str, Any]], saved_groups: dict[str, list], build: str = "compiled") -> Any:
    groups, problems = compile_groups(saved_groups, strict=True)
    compiler = Compiler(PathTable(), groups, strict=True)
    roots = [compiler.add(c, f"rules[{i}].when") for i, c in enumerate(conditions)]
    compiler.problems.extend(problems)
    compiler.raise_problems()
    anchors, always = index.build(compiler.nodes, roots)
    return _impl.by_name(build).Matcher(compiler.nodes, compiler.paths.paths, roots, anchors, always)
