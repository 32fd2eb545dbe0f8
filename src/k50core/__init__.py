"""k50core: call tracking with a compiled core.

Visit → attributes → rule → decision (pools, attribution and reports build
on these). ``IMPLEMENTATION`` says which build runs: "compiled" (the Cython
core) or "reference" (its plain-Python twin, ``K50CORE_NO_EXTENSIONS=1``).
"""
from ._impl import IMPLEMENTATION, core as _core
from .engine import Decision, Engine
from .errors import ConfigError
from .rules import compile_condition, evaluate

GeoIP = _core.GeoIP
device_type = _core.device_type
device_types = _core.device_types
device_info = _core.device_info

__all__ = [
    "IMPLEMENTATION", "ConfigError", "Decision", "Engine", "GeoIP", "compile_condition",
    "device_info", "device_type", "device_types", "evaluate",
]
__version__ = "0.1.0"
