# cython: language_level=3
"""The compiled core of k50core.

One extension module, its parts in include files so each stays small:
  _match.pxi   condition programs and the first-match rule matcher
  _rule_index.pxi  the rule index the matcher probes (included by _match.pxi)
  _geoip.pxi   MaxMind DB region lookups without decoding whole records
  _device.pxi  device type from User-Agent, cached
  _pool.pxi    lock-free number slots (leases) in process or shared memory
  _claims.pxi  each pool's free numbers, idle longest first, between scans
  _holders.pxi the index from a holder to their slot, in the slots' memory
  _returning.pxi  returning visitors' assign fast path
Their C lives in _csrc/*.h. The plain-Python twin with the same API is k50core._engine_py.
"""

include "_match.pxi"
include "_geoip.pxi"
include "_device.pxi"
include "_pool.pxi"
include "_claims.pxi"
include "_holders.pxi"
include "_returning.pxi"

cdef extern from "_csrc/tricks.h":
    int K50_CPYTHON_TRICKS

# whether this build uses CPython internals on its fast paths (see _csrc/tricks.h)
CPYTHON_TRICKS = bool(K50_CPYTHON_TRICKS)
