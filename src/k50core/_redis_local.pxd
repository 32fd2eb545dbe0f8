# Returning visitors of pools in Redis (k50core._redis_local): what a Cython module can cimport. The
# classes are documented in _redis_local.pyx and its reference, k50core._engine_py.redis_local.

cdef class RedisLease:
    cdef public object made, holder, key
    cdef public long long slot, gen, start, lu, first, last, fast
    cdef object _ps
    cdef long long _cu, hold
    cdef bint _gone

cdef class RedisWindow:
    cdef public long long floor, due, renewed

cdef class RedisAssigner:
    cdef object pools, full
    cdef dict visitors, marked
    cdef RedisWindow window
