# cython: language_level=3
"""The compiled core of k50core: one import for the engine, its parts in their own modules.

  k50core._match   condition programs and the first-match rule matcher, with the rule index
                   it probes (_rule_index.pxi, included: they share the per-visit helpers)
  k50core._geoip   MaxMind DB region lookups without decoding whole records
  k50core._device  device type from User-Agent, cached
  k50core._enrich  a visit's attribute dict: its fields checked, URLs and referrers parsed once,
                   source and traffic type, GeoIP and device through the two modules above;
                   and what a new visitor's attributes become: its stored summary and its report
                   dimensions (_summary.pxi, included)
  k50core._pool    lock-free number slots (leases) in process or shared memory, with each pool's
                   free numbers (_claims.pxi), the holder index (_holders.pxi) and the returning
                   visitors' assign fast path (_returning.pxi), included: they inline SlotTable's
                   methods on the hottest paths
  k50core._redis_local  with pools in Redis: the leases a host knows and the returning
                   visitors answered from them
Each module's .pxd declares its cdef classes, structs and inline helpers, so another Cython
module can cimport them (``from k50core._pool cimport SlotTable``). Their C lives in _csrc/*.h,
each header declared for Cython in the .pxd beside it (``from k50core._csrc.atomics cimport
k50_cas``); capi.pxd and net.pxd declare what they need of Python.h and the C library. The
plain-Python twin with the same API is k50core._engine_py.
"""
from k50core._device import (  # noqa: F401 (re-exported)
    DEVICE_CACHE_MAX, DEVICE_UA_MAX_LEN, _device_cache_configure, _device_cache_info, _device_engine, device_info,
    device_type, device_types,
)
from k50core._enrich import Classifier, Enricher, visit_combo, visit_summary  # noqa: F401
from k50core._geoip import GeoIP  # noqa: F401
from k50core._match import OPCODES, Matcher  # noqa: F401
from k50core._pool import (  # noqa: F401
    LAYOUT, Assigner, ReturnCache, SlotTable, _set_candidate_list_max, table_bytes,
)
from k50core._redis_local import RedisAssigner, RedisLease, RedisWindow  # noqa: F401

from k50core._csrc.tricks cimport K50_CPYTHON_TRICKS

# whether this build uses CPython internals on its fast paths (see _csrc/tricks.h)
CPYTHON_TRICKS = bool(K50_CPYTHON_TRICKS)
