"""k50core: call tracking with a compiled core.

Visit → attributes → rule → pool → lease → call → attribution: ``Engine``
does all of it; ``sizing`` and ``pricing`` size pools and estimate cost.
``IMPLEMENTATION`` says which build runs: "compiled" (the Cython core) or
"reference" (its plain-Python twin, ``K50CORE_NO_EXTENSIONS=1``).
"""
from ._impl import IMPLEMENTATION, core as _core
from .attribution import Attribution, CallError, Candidate
from .engine import Decision, Engine
from .errors import ConfigError, Error, SegmentError, StoreError
from .pools import Assignment, LeaseEvent
from .rules import compile_condition, evaluate
from .sizing import UnreachableTarget

GeoIP = _core.GeoIP
device_type = _core.device_type
device_types = _core.device_types
device_info = _core.device_info

__all__ = [
    "IMPLEMENTATION", "Assignment", "Attribution", "CallError", "Candidate", "ConfigError", "Decision", "Engine",
    "Error", "GeoIP", "LeaseEvent", "SegmentError", "StoreError", "UnreachableTarget", "compile_condition",
    "device_info", "device_type", "device_types", "evaluate",
]
__version__ = "0.1.0"
