"""Picks the compiled core or its plain-Python reference.

``K50CORE_NO_EXTENSIONS=1`` selects the reference; without it the compiled
module is used when it was built (a source install without a C compiler
falls back to the reference, and ``k50core.IMPLEMENTATION`` says so).
"""
from __future__ import annotations

import os
from types import ModuleType

from . import _engine_py

core: ModuleType
if os.environ.get("K50CORE_NO_EXTENSIONS"):
    core = _engine_py
    IMPLEMENTATION = "reference"
else:
    try:
        from . import _engine as core

        IMPLEMENTATION = "compiled"
    except ImportError:  # built without a compiler
        core = _engine_py
        IMPLEMENTATION = "reference"


def available() -> dict[str, ModuleType]:
    """Every build importable here, by name ("compiled", "reference")."""
    found: dict[str, ModuleType] = {"reference": _engine_py}
    try:
        from . import _engine

        found["compiled"] = _engine
    except ImportError:
        pass
    return found


def by_name(name: str) -> ModuleType:
    """The core module of one build; ImportError when it is not built."""
    builds = available()
    if name not in builds:
        raise ImportError(f"the {name!r} build of k50core is not available (built without extensions?)")
    return builds[name]
