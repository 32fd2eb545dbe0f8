"""Plain-Python reference of the compiled core (k50core._engine), same API.

Selected with ``K50CORE_NO_EXTENSIONS=1``; also the oracle the tests compare
the compiled build against.
"""
from .device import device_info, device_type, device_types
from .enrich import Classifier, Enricher
from .geoip import GeoIP
from .match import Matcher
from .pool import LAYOUT, SlotTable, _set_candidate_list_max, table_bytes  # noqa: F401 (the compiled core has it)
from .redis_local import RedisAssigner, RedisLease, RedisWindow
from .returning import Assigner, ReturnCache
from .summary import visit_combo, visit_summary

CPYTHON_TRICKS = False  # plain Python: nothing of CPython's internals (see _csrc/tricks.h)

__all__ = ["CPYTHON_TRICKS", "LAYOUT", "Assigner", "Classifier", "Enricher", "GeoIP", "Matcher", "RedisAssigner",
           "RedisLease", "RedisWindow", "ReturnCache", "SlotTable", "device_info", "device_type", "device_types",
           "table_bytes", "visit_combo", "visit_summary"]
