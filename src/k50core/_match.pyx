# cython: language_level=3
# Condition programs and the first-match rule matcher (compiled VM).
#
# The node list comes from k50core.rules.compiler (see rules/opcodes.py);
# here it is packed into a C array and run by a switch over opcodes. Paths
# are resolved lazily, once per evaluation, into a per-call slot cache. Rule
# sets carry a rule index (rules/index.py, probed in _rule_index.pxi), so
# first_match only evaluates the few candidates a visit can match, in
# priority order. The structs and classes are declared in _match.pxd.

cimport cython
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF, Py_XDECREF
from libc.stdlib cimport malloc, free
from libc.string cimport strlen, memset
from libc.stdint cimport uint32_t, int32_t

from k50core.rules.values import js_compare as _js_compare, version_compare as _version_compare
from k50core.rules.values import deep_equal as _deep_equal
from k50core.rules.compiler import LazyMatch as _LazyMatch
from k50core.rules.bulk import gc_paused as _gc_paused

from cpython.bool cimport PyBool_Check
from cpython.dict cimport PyDict_Check, PyDict_GetItemWithError
from cpython.float cimport PyFloat_AS_DOUBLE, PyFloat_Check, PyFloat_CheckExact
from cpython.list cimport PyList_Check, PyList_GET_SIZE
from cpython.long cimport PyLong_AsLongLongAndOverflow, PyLong_Check, PyLong_CheckExact
from cpython.object cimport Py_EQ, Py_GE, Py_GT, Py_LE, Py_LT, PyObject_RichCompareBool
from cpython.pyport cimport PY_SSIZE_T_MAX
from cpython.set cimport PySet_Contains
from cpython.tuple cimport PyTuple_Check, PyTuple_GET_SIZE
from cpython.unicode cimport (
    PyUnicode_AsUTF8AndSize, PyUnicode_Check, PyUnicode_CheckExact, PyUnicode_Contains, PyUnicode_GET_LENGTH,
    PyUnicode_Substring, PyUnicode_Tailmatch,
)

from k50core._csrc.capi cimport Py_False, Py_None, Py_True, PyList_GET_ITEM, PyTuple_GET_ITEM, PyUnicode_IS_ASCII
from k50core._csrc.net cimport AF_INET, AF_INET6, inet_pton
from k50core._csrc.u128 cimport k50_u128

# Mirrors k50core.rules.opcodes.Op (a test keeps them equal).
cdef enum:
    OP_TRUE = 0
    OP_FALSE = 1
    OP_AND = 2
    OP_OR = 3
    OP_NOR = 4
    OP_NOT = 5
    OP_FIELD_SLOT = 6
    OP_FIELD_PATH = 7
    OP_IS_NULL = 8
    OP_EQ_STR = 9
    OP_EQ_NUM = 10
    OP_EQ_BOOL = 11
    OP_EQ_DEEP = 12
    OP_EQ_STR_I = 13
    OP_CMP = 14
    OP_VCMP = 15
    OP_IN = 16
    OP_NIN = 17
    OP_INI = 18
    OP_NINI = 19
    OP_ALL = 20
    OP_ELEM = 21
    OP_SIZE = 22
    OP_EXISTS = 23
    OP_TYPE = 24
    OP_REGEX = 25
    OP_NREGEX = 26
    OP_GROUP = 27
    OP_NGROUP = 28
    OP_CIDR = 29
    OP_HOST = 30
    OP_PREFIX = 31
    OP_CONTAINS = 32

OPCODES = {name: value for name, value in (
    ("TRUE", OP_TRUE), ("FALSE", OP_FALSE), ("AND", OP_AND), ("OR", OP_OR), ("NOR", OP_NOR),
    ("NOT", OP_NOT), ("FIELD_SLOT", OP_FIELD_SLOT), ("FIELD_PATH", OP_FIELD_PATH),
    ("IS_NULL", OP_IS_NULL), ("EQ_STR", OP_EQ_STR), ("EQ_NUM", OP_EQ_NUM), ("EQ_BOOL", OP_EQ_BOOL),
    ("EQ_DEEP", OP_EQ_DEEP), ("EQ_STR_I", OP_EQ_STR_I), ("CMP", OP_CMP), ("VCMP", OP_VCMP),
    ("IN", OP_IN), ("NIN", OP_NIN), ("INI", OP_INI), ("NINI", OP_NINI), ("ALL", OP_ALL),
    ("ELEM", OP_ELEM), ("SIZE", OP_SIZE), ("EXISTS", OP_EXISTS), ("TYPE", OP_TYPE),
    ("REGEX", OP_REGEX), ("NREGEX", OP_NREGEX), ("GROUP", OP_GROUP), ("NGROUP", OP_NGROUP),
    ("CIDR", OP_CIDR), ("HOST", OP_HOST), ("PREFIX", OP_PREFIX), ("CONTAINS", OP_CONTAINS))}

# $type names by code; the code of a value is computed in _type_code.
_TYPE_NAMES = ("null", "boolean", "number", "string", "array", "object", "unknown")


cdef class _IpRanges:
    """Sorted, merged IPv4 and IPv6 ranges in C arrays."""

    def __cinit__(self, v4, v6):
        cdef Py_ssize_t i
        memset(&self.idx, 0, sizeof(IpIndex))
        self.idx.n4 = len(v4)
        self.idx.n6 = len(v6)
        self.idx.s4 = <uint32_t*>malloc(max(1, self.idx.n4) * sizeof(uint32_t))
        self.idx.e4 = <uint32_t*>malloc(max(1, self.idx.n4) * sizeof(uint32_t))
        self.idx.s6 = <k50_u128*>malloc(max(1, self.idx.n6) * sizeof(k50_u128))
        self.idx.e6 = <k50_u128*>malloc(max(1, self.idx.n6) * sizeof(k50_u128))
        if not (self.idx.s4 and self.idx.e4 and self.idx.s6 and self.idx.e6):
            raise MemoryError()
        for i, (s, e) in enumerate(v4):
            self.idx.s4[i] = s
            self.idx.e4[i] = e
        for i, (s, e) in enumerate(v6):
            self.idx.s6[i] = _u128(s)
            self.idx.e6[i] = _u128(e)

    def __dealloc__(self):
        free(self.idx.s4)
        free(self.idx.e4)
        free(self.idx.s6)
        free(self.idx.e6)


cdef k50_u128 _u128(object n):
    return ((<k50_u128>(<unsigned long long>(n >> 64))) << 64) | <k50_u128>(<unsigned long long>(n & 0xFFFFFFFFFFFFFFFF))


cdef int _parse_ip(object v, uint32_t* v4, k50_u128* v6):
    """4 or 6 with the address in v4 / v6, or 0 when v is not an IP string."""
    cdef Py_ssize_t n
    cdef const char* s
    cdef unsigned char buf[16]
    cdef int i
    cdef k50_u128 x = 0
    if not PyUnicode_Check(v) or not PyUnicode_IS_ASCII(v):
        return 0
    n = PyUnicode_GET_LENGTH(v)
    if n < 2 or n > 45:
        return 0
    s = PyUnicode_AsUTF8AndSize(v, &n)
    if <Py_ssize_t>strlen(s) != n:  # an embedded NUL would end the text early
        return 0
    if inet_pton(AF_INET, s, buf) == 1:
        v4[0] = (<uint32_t>buf[0] << 24) | (<uint32_t>buf[1] << 16) | (<uint32_t>buf[2] << 8) | buf[3]
        return 4
    if inet_pton(AF_INET6, s, buf) != 1:
        return 0
    for i in range(10):
        if buf[i]:
            break
    else:
        if buf[10] == 0xFF and buf[11] == 0xFF:  # IPv4-mapped: treat as IPv4
            v4[0] = (<uint32_t>buf[12] << 24) | (<uint32_t>buf[13] << 16) | (<uint32_t>buf[14] << 8) | buf[15]
            return 4
    for i in range(16):
        x = (x << 8) | buf[i]
    v6[0] = x
    return 6


cdef bint _ip_in(IpIndex* idx, object v):
    cdef uint32_t a4 = 0
    cdef k50_u128 a6 = 0
    cdef Py_ssize_t lo = 0, hi, mid
    cdef int version = _parse_ip(v, &a4, &a6)
    if version == 4:
        hi = idx.n4
        while lo < hi:  # first range starting above the address
            mid = (lo + hi) >> 1
            if idx.s4[mid] <= a4:
                lo = mid + 1
            else:
                hi = mid
        return lo > 0 and a4 <= idx.e4[lo - 1]
    if version == 6:
        hi = idx.n6
        while lo < hi:
            mid = (lo + hi) >> 1
            if idx.s6[mid] <= a6:
                lo = mid + 1
            else:
                hi = mid
        return lo > 0 and a6 <= idx.e6[lo - 1]
    return False


cdef inline int _type_code(object v):
    if v is None:
        return 0
    if PyBool_Check(v):
        return 1
    if PyLong_Check(v) or PyFloat_Check(v):
        return 2
    if PyUnicode_Check(v):
        return 3
    if PyList_Check(v) or PyTuple_Check(v):
        return 4
    if PyDict_Check(v):
        return 5
    return 6


cdef object _resolve(object segments, object doc):
    """A dotted path inside nested dicts (lists: index or ``length``); None if absent."""
    cdef Py_ssize_t k, n = PyTuple_GET_SIZE(segments)
    cdef PyObject* found
    cdef object cur = doc
    cdef object seg
    for k in range(n):
        seg = <object>PyTuple_GET_ITEM(segments, k)
        if PyDict_Check(cur):
            found = PyDict_GetItemWithError(cur, seg)
            if found == NULL:
                return None
            cur = <object>found
        elif PyList_Check(cur):
            cur = _list_step(cur, seg)
            if cur is None:
                return None
        else:
            return None
    return cur


cdef object _list_step(object lst, str seg):
    if seg == "length":
        return len(lst)
    if seg.isdigit() and seg.isascii() and (seg == "0" or seg[0] != "0") and len(seg) <= 18:
        if int(seg) < len(lst):
            return lst[int(seg)]
    return None


cdef inline object _ctx_slot(Ctx* ctx, Py_ssize_t s):
    """The attribute at path slot s, resolved once per evaluation."""
    cdef object x
    if not ctx.have[s]:
        x = _resolve(<object>PyTuple_GET_ITEM(<object>ctx.paths, s), <object>ctx.doc)
        Py_INCREF(x)
        ctx.vals[s] = <PyObject*>x
        ctx.have[s] = 1
        ctx.done[ctx.ndone] = <int32_t>s
        ctx.ndone += 1
    return <object>ctx.vals[s]


include "_rule_index.pxi"


cdef int _literal_regex(tuple texts, object v) except -1:
    """An anchored regex that is only literals: (prefixes, texts then "$", texts then "\\Z")."""
    cdef Py_ssize_t k, n = PyUnicode_GET_LENGTH(v)
    cdef object t
    for t in <tuple>texts[0]:
        if PyUnicode_Tailmatch(v, t, 0, PY_SSIZE_T_MAX, -1):
            return 1
    for t in <tuple>texts[2]:
        if PyObject_RichCompareBool(v, t, Py_EQ):
            return 1
    for t in <tuple>texts[1]:  # "$" also matches before a newline that ends the value
        k = PyUnicode_GET_LENGTH(t)
        if (k == n or (k == n - 1 and v[n - 1] == "\n")) and PyUnicode_Tailmatch(v, t, 0, k, -1):
            return 1
    return 0


@cython.final
cdef class Matcher:
    """Evaluates the conditions (roots) of one compiled rule set.

    Same API as k50core._engine_py.match.Matcher.
    """

    def __cinit__(self):
        self.nodes = NULL
        self.roots = NULL

    def __init__(self, nodes, paths, roots, index=None, always=None):
        cdef Py_ssize_t i
        cdef Node* n
        with _gc_paused():  # what a large rule set packs all lives on (see rules/bulk.py)
            self._keep = []
            self._paths = tuple(tuple(p) for p in paths)
            self.nslots = len(self._paths)
            self.nnodes = len(nodes)
            self.nodes = <Node*>malloc(max(1, self.nnodes) * sizeof(Node))
            if self.nodes == NULL:
                raise MemoryError()
            memset(self.nodes, 0, max(1, self.nnodes) * sizeof(Node))
            for i, (op, slot, nkids, end, arg) in enumerate(nodes):
                n = &self.nodes[i]
                n.op, n.slot, n.nkids, n.end = op, slot, nkids, end
                self._pack(n, arg)
            self.nroots = len(roots)
            self.roots = <int32_t*>malloc(max(1, self.nroots) * sizeof(int32_t))
            if self.roots == NULL:
                raise MemoryError()
            for i, r in enumerate(roots):
                if not 0 <= r < self.nnodes:
                    raise ValueError(f"root {r} outside the program")
                self.roots[i] = r
            # without an index every rule is a candidate for every visit
            self.probe = RuleProbe(index, range(self.nroots) if always is None else always, self.nroots, self.nslots)

    cdef _pack(self, Node* n, object arg):
        """Derives what the VM needs from a node's arg, once."""
        self._keep.append(arg)
        n.arg = <PyObject*>arg
        n.arg2 = <PyObject*>arg
        if n.op == OP_FIELD_SLOT and not 0 <= n.slot < self.nslots:
            raise ValueError(f"slot {n.slot} outside the path table")
        if n.op == OP_CMP:
            literal, n.flag = arg
            n.arg2 = <PyObject*>literal
            n.ascii = isinstance(literal, str) and literal.isascii()
            # the fast numeric path is for plain number literals; the rest takes the shared rules
            n.num = float(literal) if type(literal) in (int, float) and abs(literal) < 1e300 else float("nan")
        elif n.op == OP_VCMP:
            n.flag = arg[1]
        elif n.op in (OP_IN, OP_NIN, OP_INI, OP_NINI, OP_GROUP, OP_NGROUP):
            n.arg2 = <PyObject*>arg[0]
            n.flag = (1 if arg[1] else 0) | (2 if arg[2] else 0)
            if n.op in (OP_GROUP, OP_NGROUP) and (arg[3] or arg[4]):
                n.ips = self._ranges(arg[3], arg[4])
        elif n.op == OP_CIDR:
            n.ips = self._ranges(arg[0], arg[1])
        elif n.op == OP_TYPE:
            n.flag = _TYPE_NAMES.index(arg) if arg in _TYPE_NAMES else -1
        elif n.op == OP_EXISTS:
            n.flag = 1 if arg else 0
        elif n.op == OP_REGEX or n.op == OP_NREGEX:
            test, prefixes = arg[0], arg[1]
            if len(arg) > 3 and arg[3]:  # the texts are the whole regex: decide without sre
                prefixes = tuple(tuple(t for t, end in arg[2] if end == k) for k in range(3))
                n.flag = 1
            elif type(test) is _LazyMatch:  # compiled by sre at its first use (see _regex)
                n.flag = 2
            self._keep.append(test)
            self._keep.append(prefixes)
            n.arg = <PyObject*>test
            n.arg2 = <PyObject*>prefixes
        elif n.op == OP_HOST:
            dotted = tuple("." + h for h in arg)
            self._keep.append(dotted)
            n.arg2 = <PyObject*>dotted

    cdef IpIndex* _ranges(self, v4, v6):
        cdef _IpRanges r = _IpRanges(v4, v6)
        self._keep.append(r)
        return &r.idx

    def __dealloc__(self):
        free(self.nodes)
        free(self.roots)

    def __len__(self):
        return self.nroots

    # -- evaluation -------------------------------------------------------------
    cdef int _ev(self, Py_ssize_t i, object v, Ctx* ctx) except -1:
        cdef Node* n = &self.nodes[i]
        cdef Py_ssize_t c, k, m, j
        cdef int r, op = n.op
        cdef object x
        if op == OP_FIELD_SLOT:
            return self._ev(i + 1, _ctx_slot(ctx, n.slot), ctx)
        elif op == OP_EQ_STR:
            return PyUnicode_Check(v) and PyObject_RichCompareBool(v, <object>n.arg, Py_EQ)
        elif op == OP_AND:
            c = i + 1
            for k in range(n.nkids):
                if not self._ev(c, v, ctx):
                    return 0
                c = self.nodes[c].end
            return 1
        elif op == OP_OR or op == OP_NOR:
            c = i + 1
            for k in range(n.nkids):
                if self._ev(c, v, ctx):
                    return op == OP_OR
                c = self.nodes[c].end
            return op == OP_NOR
        elif op == OP_NOT:
            return not self._ev(i + 1, v, ctx)
        elif op == OP_TRUE:
            return 1
        elif op == OP_FALSE:
            return 0
        elif op == OP_FIELD_PATH:
            return self._ev(i + 1, _resolve(<object>n.arg, v), ctx)
        elif op == OP_IS_NULL:
            return v is None
        elif op == OP_EQ_NUM:
            return (PyLong_CheckExact(v) or PyFloat_CheckExact(v)) and PyObject_RichCompareBool(v, <object>n.arg, Py_EQ)
        elif op == OP_EQ_BOOL:
            return <PyObject*>v == n.arg
        elif op == OP_EQ_DEEP:
            return _deep_equal(<object>n.arg, v)
        elif op == OP_EQ_STR_I:
            return PyUnicode_Check(v) and PyObject_RichCompareBool(v.lower(), <object>n.arg, Py_EQ)
        elif op == OP_CMP:
            return self._cmp(n, v)
        elif op == OP_VCMP:
            return _version_compare(v, (<object>n.arg)[0], n.flag, (<object>n.arg)[2])
        elif op == OP_IN or op == OP_INI:
            return self._in(n, v, op == OP_INI)
        elif op == OP_NIN or op == OP_NINI:
            return not self._in(n, v, op == OP_NINI)
        elif op == OP_ALL:
            if not PyList_Check(v):
                return 0
            m = PyList_GET_SIZE(v)
            c = i + 1
            for k in range(n.nkids):
                r = 0
                for j in range(m):
                    if self._ev(c, <object>PyList_GET_ITEM(v, j), ctx):
                        r = 1
                        break
                if not r:
                    return 0
                c = self.nodes[c].end
            return 1
        elif op == OP_ELEM:
            if not PyList_Check(v):
                return 0
            for k in range(PyList_GET_SIZE(v)):
                x = <object>PyList_GET_ITEM(v, k)
                if x is not None and self._ev(i + 1, x, ctx):
                    return 1
            return 0
        elif op == OP_SIZE:
            return PyList_Check(v) and self._ev(i + 1, PyList_GET_SIZE(v), ctx)
        elif op == OP_EXISTS:
            return (v is not None) == n.flag
        elif op == OP_TYPE:
            return _type_code(v) == n.flag
        elif op == OP_REGEX:
            return self._regex(n, v)
        elif op == OP_NREGEX:
            return not self._regex(n, v)
        elif op == OP_GROUP or op == OP_NGROUP:
            r = self._in(n, v, False) or (n.ips != NULL and _ip_in(n.ips, v))
            return r if op == OP_GROUP else not r
        elif op == OP_CIDR:
            return _ip_in(n.ips, v)
        elif op == OP_HOST:
            return self._host(n, v)
        elif op == OP_PREFIX or op == OP_CONTAINS:
            if not PyUnicode_Check(v):
                return 0
            for k in range(PyTuple_GET_SIZE(<object>n.arg)):
                x = <object>PyTuple_GET_ITEM(<object>n.arg, k)
                if op == OP_PREFIX:
                    if PyUnicode_Tailmatch(v, x, 0, PY_SSIZE_T_MAX, -1):
                        return 1
                elif PyUnicode_Contains(v, x):
                    return 1
            return 0
        raise ValueError(f"unknown opcode {op}")

    cdef int _cmp(self, Node* n, object v) except -1:
        cdef double a
        cdef long long whole
        cdef int f = n.flag, overflow = 0
        cdef bint fast = False
        if n.ascii and PyUnicode_Check(v) and PyUnicode_IS_ASCII(v):
            return PyObject_RichCompareBool(v, <object>n.arg2, Py_LT if f == 0 else Py_LE if f == 1 else Py_GT if f == 2 else Py_GE)
        if n.num == n.num:  # a numeric literal: compare doubles when v is a plain number
            if PyFloat_CheckExact(v):
                a = PyFloat_AS_DOUBLE(v)
                fast = True
            elif PyLong_CheckExact(v):
                whole = PyLong_AsLongLongAndOverflow(v, &overflow)
                if not overflow and -(1LL << 53) <= whole <= (1LL << 53):
                    a = <double>whole
                    fast = True
        if fast:
            if a != a:
                return 0
            if f == 0:
                return a < n.num
            if f == 1:
                return a <= n.num
            if f == 2:
                return a > n.num
            return a >= n.num
        return _js_compare(v, <object>n.arg2, f)  # mixed types, non-ASCII strings: the shared rules

    cdef int _regex(self, Node* n, object v) except -1:
        """Required literal prefixes first (cheap), then sre."""
        cdef Py_ssize_t k, m
        if not PyUnicode_Check(v):
            return 0
        if n.flag == 1:
            if PyUnicode_CheckExact(v):
                return _literal_regex(<object>n.arg2, v)
            return (<object>n.arg)(v) is not None
        m = PyTuple_GET_SIZE(<object>n.arg2)
        if m:
            for k in range(m):
                if PyUnicode_Tailmatch(v, <object>PyTuple_GET_ITEM(<object>n.arg2, k), 0, PY_SSIZE_T_MAX, -1):
                    break
            else:
                return 0
        if n.flag == 2:  # a lazy test (a glob): the pattern's own match from now on, no wrapper call
            test = (<object>n.arg).compiled()
            self._keep.append(test)
            n.arg = <PyObject*>test
            n.flag = 0
        return (<object>n.arg)(v) is not None

    cdef int _in(self, Node* n, object v, bint insensitive) except -1:
        cdef Py_ssize_t k
        if PyList_Check(v):
            for k in range(PyList_GET_SIZE(v)):
                if self._scalar_in(n, <object>PyList_GET_ITEM(v, k), insensitive):
                    return 1
            return 0
        return self._scalar_in(n, v, insensitive)

    cdef int _scalar_in(self, Node* n, object v, bint insensitive) except -1:
        if PyUnicode_Check(v):
            return PySet_Contains(<object>n.arg2, v.lower() if insensitive else v)
        if <PyObject*>v == Py_True:
            return n.flag & 1
        if <PyObject*>v == Py_False:
            return (n.flag & 2) >> 1
        if v is None or PyLong_CheckExact(v) or PyFloat_CheckExact(v):
            return PySet_Contains(<object>n.arg2, v)
        return 0

    cdef int _host(self, Node* n, object v) except -1:
        cdef Py_ssize_t k
        if not PyUnicode_Check(v):
            return 0
        h = v.lower().rstrip(".")
        for k in range(PyTuple_GET_SIZE(<object>n.arg)):
            if PyObject_RichCompareBool(h, <object>PyTuple_GET_ITEM(<object>n.arg, k), Py_EQ):
                return 1
            if PyUnicode_Tailmatch(h, <object>PyTuple_GET_ITEM(<object>n.arg2, k), 0, PY_SSIZE_T_MAX, 1):
                return 1
        return 0

    # -- public API ---------------------------------------------------------------
    def matches(self, attributes):
        """The first condition (the only one of a single compiled condition)."""
        if self.nroots == 0:
            raise IndexError(0)
        return self._run(attributes, 0) == 0

    def eval(self, Py_ssize_t rule, attributes):
        if not 0 <= rule < self.nroots:
            raise IndexError(rule)
        return self._run(attributes, rule) == rule

    def first_match(self, attributes):
        """Index of the first rule whose condition holds, or -1."""
        return self._run(attributes, -1)

    def candidates(self, attributes):
        """The rules the index gives for these attributes, in order (each is then evaluated)."""
        out = []
        self._run(attributes, -1, out)
        return out

    def first_match_many(self, batch):
        cdef list out = []
        for attributes in batch:
            out.append(self._run(attributes, -1))
        return out

    def pick_many(self, batch, outcomes, default):
        """``outcomes[first_match(a)]`` (``default`` for -1) for each a in batch."""
        cdef list out = []
        cdef Py_ssize_t r
        outcomes = tuple(outcomes)
        if len(outcomes) != self.nroots:
            raise ValueError("one outcome per rule expected")
        for attributes in batch:
            r = self._run(attributes, -1)
            out.append(default if r < 0 else <object>PyTuple_GET_ITEM(outcomes, r))
        return out

    cdef Py_ssize_t _run(self, object attributes, Py_ssize_t only, list collect=None) except -2:
        """Evaluates rule ``only`` (returns it if it holds, else -1), or finds the first match."""
        cdef PyObject* vals_buf[64]
        cdef unsigned char have_buf[64]
        cdef int32_t done_buf[64]
        cdef Ctx ctx
        cdef Py_ssize_t s, result = -1
        ctx.doc = <PyObject*>attributes
        ctx.paths = <PyObject*>self._paths
        ctx.ndone = 0
        if self.nslots <= 64:
            ctx.vals = vals_buf
            ctx.have = have_buf
            ctx.done = done_buf
        else:
            ctx.vals = <PyObject**>malloc(self.nslots * sizeof(PyObject*))
            ctx.have = <unsigned char*>malloc(self.nslots)
            ctx.done = <int32_t*>malloc(self.nslots * sizeof(int32_t))
            if ctx.vals == NULL or ctx.have == NULL or ctx.done == NULL:
                free(ctx.vals)
                free(ctx.have)
                free(ctx.done)
                raise MemoryError()
        memset(ctx.have, 0, self.nslots)
        try:
            if only >= 0:
                result = only if self._ev(self.roots[only], attributes, &ctx) else -1
            else:
                result = self._first(&ctx, collect)
        finally:
            for s in range(ctx.ndone):
                Py_XDECREF(ctx.vals[ctx.done[s]])
            if self.nslots > 64:
                free(ctx.vals)
                free(ctx.have)
                free(ctx.done)
        return result

    cdef Py_ssize_t _first(self, Ctx* ctx, list collect) except -2:
        """Merges the candidate lists in rule order and evaluates until one holds."""
        cdef Heads h
        cdef Py_ssize_t j, best_j
        cdef int32_t best, last = -1
        cdef int32_t* p
        cdef int32_t* e
        _heads_init(&h)
        try:
            self.probe.collect(ctx, &h)
            if h.n == 1 and collect is None:  # one list (often): no merge
                p, e = h.head[0], h.end[0]
                while p < e:
                    if self._ev(self.roots[p[0]], <object>ctx.doc, ctx):
                        return p[0]
                    p += 1
                return -1
            while True:
                best = 0x7FFFFFFF
                best_j = -1
                j = 0
                while j < h.n:
                    if h.head[j] == h.end[j]:  # spent: drop it
                        h.n -= 1
                        h.head[j], h.end[j] = h.head[h.n], h.end[h.n]
                        continue
                    if h.head[j][0] < best:
                        best = h.head[j][0]
                        best_j = j
                    j += 1
                if best_j < 0:
                    return -1
                h.head[best_j] += 1
                if best == last:  # a rule in two lists the visit hit: tried once
                    continue
                last = best
                if collect is not None:
                    collect.append(best)
                elif self._ev(self.roots[best], <object>ctx.doc, ctx):
                    return best
        finally:
            _heads_free(&h)
