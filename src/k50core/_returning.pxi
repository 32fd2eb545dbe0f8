# Returning visitors (compiled): the assign fast path.
#
# Most page views come from visitors whose lease is alive. For them assign()
# needs no enrichment and no rules: one dict lookup by visitor id, one CAS
# renewal in the slot table, and the Assignment they were given, with the new
# expiry. ``Assigner`` does exactly that as a C-level callable and hands
# everything else to the engine's full path.

import sys
from time import time as _wall_clock

from cpython.dict cimport PyDict_CheckExact
from cpython.exc cimport PyErr_Clear, PyErr_Occurred
from cpython.float cimport PyFloat_AS_DOUBLE

from k50core._csrc.assignment cimport k50_assignment
from k50core._csrc.capi cimport PyLong_AsDouble
from k50core._csrc.return_table cimport (
    k50_ret, k50_ret_renewed, k50_rets, k50_rets_clear, k50_rets_find, k50_rets_put, k50_rets_remove, k50_str_hash,
)
from k50core._csrc.wall_clock cimport k50_wall_ms

cdef double _MAX_MS = <double>((1ULL << 43) - 1)


@cython.final
cdef class ReturnCache:
    """Returning visitors' live leases by visitor id: the assign fast path.

    Holds per visitor (slot, gen, hold, the Assignment last given); ``renew``
    extends the lease in the table and returns that Assignment with the new
    expiry, or None (dropping the entry) when the lease has ended.
    """

    def __cinit__(self):
        memset(&self.rets, 0, sizeof(k50_rets))

    def __dealloc__(self):
        k50_rets_clear(&self.rets)

    def __init__(self, SlotTable table, Py_ssize_t capacity=200_000):
        self.table = table
        self.capacity = capacity
        self.seen = None

    def put(self, visitor, Py_ssize_t slot, uint64_t gen, uint64_t hold, made, bint joined=False):
        """Remember ``made`` for ``visitor``; ``joined``: they joined someone else's shared lease, and
        ``self.seen(visitor, slot, gen, now)`` hears of each of their returns."""
        if not isinstance(visitor, str):
            raise TypeError("visitor: expected a str")
        if type(visitor) is not str:
            return  # a str subclass may hash its own way: not cached (a miss only costs the slow path)
        if not PyTuple_Check(made) or type(made) is tuple or len(made) != 7 \
                or type(made[5]) is not float or type(made[6]) is not bool:
            raise TypeError("expected an Assignment (a 7-field tuple subclass, expires_at a float, "
                            "shared a bool)")
        self.table._slot(slot)  # IndexError outside the table: renewals use it as an offset
        if self.rets.used >= self.capacity:  # bounded: a miss just costs the slow path
            k50_rets_clear(&self.rets)
        # a copy the collector does not track: a cache of many visitors adds nothing to its scans
        last = k50_assignment(type(made), made[0], made[1], made[2], made[3], made[4], made[5], made[6])
        k50_rets_put(&self.rets, <PyObject*>visitor, slot, gen, hold, <PyObject*>last, joined)

    def renew(self, visitor, uint64_t now):
        return self._renew(visitor, now)

    cdef inline object _renew(self, object visitor, uint64_t now):
        # The rare branches out of line (an ended lease, a joiner's return): the page view's path
        # stays short.
        cdef Py_ssize_t at, slot
        cdef uint64_t until, gen
        cdef k50_ret* e
        cdef bint joined
        if not PyUnicode_CheckExact(visitor):
            return None
        at = k50_rets_find(&self.rets, <PyObject*>visitor, k50_str_hash(<PyObject*>visitor))
        if at < 0:
            return None
        e = &self.rets.at[at]
        slot, gen, joined = e.slot, e.gen, e.joined
        until = self.table._renew(slot, gen, now, e.hold)
        if not until:
            return self._ended(at, now)
        # Assignment(number, display, pool, rule, token, expires_at, shared), reused when the caller
        # let go of it
        made = k50_ret_renewed(&self.rets, at, until / 1000.0,
                               (k50_load(self.table._state(slot)) & SHARED_BIT) != 0)
        self.table._check_log(now)
        if joined:
            self._joiner_back(visitor, slot, gen, now)
        return made

    cdef object _ended(self, Py_ssize_t at, uint64_t now):
        """The entry's lease has ended: forgotten; the full path decides what the visitor gets."""
        k50_rets_remove(&self.rets, at)
        self.table._check_log(now)
        return None

    cdef int _joiner_back(self, object visitor, Py_ssize_t slot, uint64_t gen, uint64_t now) except -1:
        if self.seen is not None:
            self.seen(visitor, slot, gen, now)
        return 0

    cdef inline object _renew_visit(self, object visit, uint64_t now):
        cdef PyObject* vid
        if not PyDict_CheckExact(visit):
            return None
        vid = PyDict_GetItemWithError(visit, "visitor_id")
        return self._renew(<object>vid, now) if vid != NULL else None

    def discard(self, visitor):
        cdef Py_ssize_t at
        if PyUnicode_CheckExact(visitor):
            at = k50_rets_find(&self.rets, <PyObject*>visitor, k50_str_hash(<PyObject*>visitor))
            if at >= 0:
                k50_rets_remove(&self.rets, at)

    def clear(self):
        k50_rets_clear(&self.rets)

    def rehold(self, holds):
        """A reload changed pools' holds: each entry renews with its pool's (``holds[i]``: the hold of
        pool registry entry i). Kept, not cleared: a visitor who joined a shared lease is found
        again only here."""
        cdef Py_ssize_t i, n = len(holds)
        cdef unsigned int pool
        cdef list held = [int(h) for h in holds]
        if self.rets.at == NULL:
            return
        for i in range(<Py_ssize_t>self.rets.mask + 1):
            if self.rets.at[i].key != NULL:
                pool = self.table._pool(self.rets.at[i].slot)[0]
                if pool < <unsigned int>n:
                    self.rets.at[i].hold = held[pool]

    def __len__(self):
        return self.rets.used


@cython.final
cdef class Assigner:
    """``.assign(visit, now=None, token=None)``: returning visitors here, the rest via ``full``.

    ``full`` is the engine's whole path (enrichment, rules, pools); it sees
    every call this one cannot answer from ``cache``, with the same arguments.
    A method rather than ``__call__``: methods take keywords without a dict.
    """

    def __init__(self, ReturnCache cache, full):
        self.cache = cache
        self.full = full

    @cython.binding(False)  # a builtin method: called without the bound-method wrapper
    def assign(self, visit, now=None, token=None):
        return self._assign(visit, now, token)

    cdef inline object _assign(self, object visit, object now, object token):
        cdef double ms
        cdef object back
        if token is None:
            ms = _clock_ms(now)
            if ms >= 0.0:
                back = self.cache._renew_visit(visit, <uint64_t>ms)
                if back is not None:
                    return back
        return self.full(visit, now, token)

    @cython.binding(False)
    def assign_many(self, visits, now=None):
        """assign() for each visit, one clock reading for all."""
        cdef double ms
        cdef list out = []
        cdef object back
        if now is None:
            now = _wall_clock()
        ms = _clock_ms(now)
        for visit in visits:
            back = self.cache._renew_visit(visit, <uint64_t>ms) if ms >= 0.0 else None
            out.append(back if back is not None else self.full(visit, now, None))
        return out


cdef inline double _clock_ms(object now) noexcept:
    """Seconds (None: the wall clock) as milliseconds, or -1 for what the full path must judge
    (an int too large for a float included)."""
    cdef double ms
    if now is None:
        ms = k50_wall_ms()
    elif PyFloat_CheckExact(now):
        ms = PyFloat_AS_DOUBLE(now) * 1000.0
    elif PyLong_CheckExact(now):
        ms = PyLong_AsDouble(now)
        if ms == -1.0 and PyErr_Occurred():
            PyErr_Clear()
            return -1.0
        ms *= 1000.0
    else:
        return -1.0
    return ms if 0.0 <= ms <= _MAX_MS else -1.0
