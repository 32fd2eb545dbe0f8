# cython: language_level=3
"""Returning visitors of pools in Redis, answered from the leases this host knows (compiled).

Same API as k50core._engine_py.redis_local, which documents the design. Here a lease is a C
struct behind its Python attributes, so the common case (the holder of a lease Redis confirmed
well past now, back within the write window) reads and writes fields, not attribute dicts; the
Assignment with its new expiry is made in C.
"""
cimport cython
from cpython.dict cimport PyDict_CheckExact, PyDict_GetItem, PyDict_SetItem
from cpython.float cimport PyFloat_AS_DOUBLE
from cpython.object cimport PyObject
from cpython.tuple cimport PyTuple_CheckExact
from cpython.unicode cimport PyUnicode_CheckExact

from k50core._csrc.assignment cimport k50_renewed
from k50core._csrc.capi cimport PyTuple_GET_ITEM
from k50core._csrc.wall_clock cimport k50_wall_ms

cdef long long _MARGIN = 2_000
MARGIN_MS = _MARGIN  # answered locally only while Redis's end of the lease is further off than this
cdef double _MAX_MS = <double>((1ULL << 43) - 1)
cdef long long _MAX_MS_INT = (1LL << 43) - 1


@cython.final
cdef class RedisLease:
    """A lease this host knows (see k50core._engine_py.redis_local.RedisLease)."""

    def __init__(self, ps, long long slot, long long gen, long long start, long long until, made, holder):
        self.ps = ps
        self.slot, self.gen, self.start = slot, gen, start
        self._gone = False
        self._cu = self.lu = until
        self.fast = until - _MARGIN
        self.first = 0
        self.last = 0
        self.made = made
        self.holder = holder
        self.key = (ps.index, slot)

    @property
    def ps(self):
        """The lease's pool (its keys and hold); a reload gives it the pool as configured now."""
        return self._ps

    @ps.setter
    def ps(self, ps):
        self.hold = ps.hold_ms  # kept with it: the fast path reads the hold as a field
        self._ps = ps

    @property
    def cu(self):
        """The lease's end as Redis last confirmed it (ms)."""
        return self._cu

    @cu.setter
    def cu(self, long long until):
        self._cu = until
        self.fast = -1 if self._gone else until - _MARGIN

    @property
    def gone(self):
        """Ended or replaced, as far as this host knows: never answered from memory again."""
        return self._gone

    @gone.setter
    def gone(self, bint gone):
        self._gone = gone
        self.fast = -1 if gone else self._cu - _MARGIN


@cython.final
cdef class RedisWindow:
    """A host's window for renewals (see k50core._engine_py.redis_local.RedisWindow)."""


cdef inline long long _ms(object now) except? -2:
    """``now`` in seconds (None: the clock) as ms; -1 for anything the full path must judge."""
    cdef double ms
    if type(now) is float:
        ms = PyFloat_AS_DOUBLE(now) * 1000.0
        return <long long>ms if 0.0 <= ms <= _MAX_MS else -1  # NaN: -1
    if now is None:
        return <long long>k50_wall_ms()
    if type(now) is int:
        if -1 < now < _MAX_MS_INT:
            ms = <double>(<long long>now) * 1000.0
            return <long long>ms if ms <= _MAX_MS else -1
    return -1


@cython.final
cdef class RedisAssigner:
    """``assign`` and ``assign_many`` of an engine whose pools are in Redis (see the reference)."""

    def __init__(self, pools, full):
        self.pools = pools
        self.full = full
        self.visitors = pools._visitors  # never replaced (cleared in place)
        self.marked = pools._marked      # never replaced (emptied in place)
        self.window = pools.window

    @cython.binding(False)
    def assign(self, visit, now=None, token=None):
        cdef PyObject* visitor
        cdef PyObject* entry
        cdef RedisLease lease
        cdef long long ms, until
        if token is None and PyDict_CheckExact(visit):
            visitor = PyDict_GetItem(visit, "visitor_id")
            if visitor != NULL and PyUnicode_CheckExact(<object>visitor):
                entry = PyDict_GetItem(self.visitors, <object>visitor)
                if entry != NULL and PyTuple_CheckExact(<object>entry) \
                        and type(<object>PyTuple_GET_ITEM(<object>entry, 0)) is RedisLease:
                    ms = _ms(now)
                    if ms >= 0:
                        lease = <RedisLease>PyTuple_GET_ITEM(<object>entry, 0)
                        if lease.fast > ms and lease.first and not <object>PyTuple_GET_ITEM(<object>entry, 1) \
                                and self.window.floor <= ms < self.window.due:
                            until = ms + lease.hold
                            if until > lease.lu:
                                lease.lu = until
                                made = lease.made
                                lease.made = None  # the local the only holder: reused in place if the caller let it go
                                lease.made = k50_renewed(made, until / 1000.0, <object>PyTuple_GET_ITEM(made, 6))
                            if ms > lease.last:
                                lease.last = ms
                            PyDict_SetItem(self.marked, lease.key, lease._ps)
                            self.window.renewed += 1
                            return lease.made
                        back = self.pools.local(<object>visitor, ms)
                        if back is not None:
                            return back
        return self.full(visit, now, token)

    def assign_many(self, visits, now=None):
        if now is None:
            now = k50_wall_ms() / 1000.0
        return [self.assign(v, now) for v in visits]
