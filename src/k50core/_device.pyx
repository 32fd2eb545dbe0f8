# cython: language_level=3
# Device type from a User-Agent: compiled twin of k50core._engine_py.device.
#
# Answers are exactly user_agents' (user-agents 2.x on ua-parser's legacy
# parsers). Two parts make that fast:
#  * a bounded dict cache with an identity fast path for the last string and
#    METH_O entry points, so a repeated UA costs one pointer compare;
#  * for a new UA, ua-parser's own legacy parser objects are run in their own
#    order, but a regex is only tried when every literal its pattern requires
#    is present in the UA (found with a 2/3-gram table in C). Skipping a regex
#    that cannot match changes nothing, so the first hit is the legacy one;
#    user_agents' own UserAgent properties then decide the type.
# The classes and _dev_lookup are declared in _device.pxd.
cimport cython
from cpython.dict cimport PyDict_GetItem
from cpython.list cimport PyList_New, PyList_SET_ITEM
from cpython.ref cimport Py_INCREF, PyObject
from cpython.unicode cimport (
    PyUnicode_DATA, PyUnicode_FromObject, PyUnicode_GET_LENGTH, PyUnicode_KIND, PyUnicode_READ,
)
from libc.stdint cimport uint64_t
from libc.stdlib cimport calloc, free, malloc

DEVICE_UA_MAX_LEN = 4096  # longer UAs are cut to this many code points (both builds)
DEVICE_CACHE_MAX = 100_000

cdef Py_ssize_t _DEV_CAP = DEVICE_UA_MAX_LEN
cdef dict _dev_cache = {}                 # exact str -> (type, os family, browser family)
cdef Py_ssize_t _dev_cache_max = DEVICE_CACHE_MAX
cdef object _DEV_NOKEY = object()
cdef object _dev_last_key = _DEV_NOKEY    # last exact str seen, held so its id stays unique
cdef tuple _dev_last_val = None
cdef tuple _DEV_EMPTY = None              # the answer for "" (and non-str input)
cdef object _dev_engine = None            # _DevEngine, built on the first new UA


@cython.binding(False)
@cython.always_allow_keywords(False)
def device_type(user_agent):
    """"bot", "tablet", "mobile", "desktop" or "other", as user_agents says."""
    if user_agent is _dev_last_key:
        return _dev_last_val[0]
    return _dev_lookup(user_agent)[0]


@cython.binding(False)
@cython.always_allow_keywords(False)
def device_info(user_agent):
    """(device type, OS family, browser family), as user_agents gives them."""
    if user_agent is _dev_last_key:
        return _dev_last_val
    return _dev_lookup(user_agent)


@cython.binding(False)
@cython.always_allow_keywords(False)
def device_types(user_agents):
    """device_type of each item, the loop in C."""
    cdef list uas = user_agents if type(user_agents) is list else list(user_agents)
    cdef Py_ssize_t i, n = len(uas)
    cdef list out = PyList_New(n)
    cdef object ua, t
    for i in range(n):
        ua = uas[i]
        t = _dev_last_val[0] if ua is _dev_last_key else _dev_lookup(ua)[0]
        Py_INCREF(t)  # PyList_SET_ITEM steals a reference
        PyList_SET_ITEM(out, i, t)
    return out


def _device_cache_info():
    """Cache size and bound (for tests and monitoring)."""
    return {"size": len(_dev_cache), "maxsize": _dev_cache_max}


def _device_cache_configure(maxsize=DEVICE_CACHE_MAX, memos=True):
    """Empty the answer cache and set its bound (tests use a small one);
    with memos, also the engine's parse memos (a cold start, for benchmarks)."""
    global _dev_cache_max, _dev_last_key, _dev_last_val
    if maxsize < 1:
        raise ValueError("maxsize must be >= 1")
    _dev_cache.clear()
    if memos and _dev_engine is not None:
        (<_DevEngine>_dev_engine).clear()
    _dev_cache_max = maxsize
    _dev_last_val = None
    _dev_last_key = _DEV_NOKEY


cdef tuple _dev_lookup(object ua):
    global _dev_last_key, _dev_last_val
    cdef object key
    cdef PyObject* hit
    cdef tuple val
    if type(ua) is str:
        key = ua if PyUnicode_GET_LENGTH(ua) <= _DEV_CAP else ua[:_DEV_CAP]
    elif isinstance(ua, str):
        key = PyUnicode_FromObject(ua)[:_DEV_CAP]  # exact copy: a subclass answers by content
    else:
        return _dev_empty()
    hit = PyDict_GetItem(_dev_cache, key)
    if hit is not NULL:
        val = <tuple>hit
    else:
        val = _dev_parse(key)
        if len(_dev_cache) >= _dev_cache_max:
            _dev_cache.clear()  # bounded: cheaper than LRU, refills from hot UAs
        _dev_cache[key] = val
    if type(ua) is str:
        # no other thread runs between these two stores: the GIL is only
        # dropped while Python code runs, and neither decref runs any (the
        # old objects are an exact str and a tuple of str)
        _dev_last_val = val
        _dev_last_key = ua
    return val


cdef tuple _dev_empty():
    global _DEV_EMPTY
    if _DEV_EMPTY is None:
        _DEV_EMPTY = _dev_parse("")
    return _DEV_EMPTY


cdef tuple _dev_parse(str ua):
    cdef tuple val = (<_DevEngine>_device_engine()).info(ua)
    if val is None:
        # user_agents itself raises on a few pathological strings (e.g. a
        # version of non-ASCII digits such as "²"): answer as for ""
        return _dev_empty() if ua else ("other", "Other", "Other")
    return val


# ---- prefilter: literals each regex needs -----------------------------------

# Common UAs, only to prefer rare literals and grams (speed, not correctness).
_DEV_SAMPLE = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.0 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (Linux; U; Android 4.0.4; en-gb; GT-I9300 Build/IMM76D) AppleWebKit/534.30 "
    "(KHTML, like Gecko) Version/4.0 Mobile Safari/534.30",
)
_DEV_SAMPLE_LOW = tuple(s.lower() for s in _DEV_SAMPLE)


# An analysis is (exact, clauses): exact is a frozenset of (folded, text),
# the node matching exactly one of these texts (folded: text is lower case
# and is looked for in ua.lower()), or None when unknown; clauses is then a
# CNF: a match needs, for every clause, one of its literals in the UA.
# Whatever is not understood gives no information, so the filter can only
# be too lenient, never reject a string the regex could match.
_DEV_EXACT_MAX = 64
_DEV_EMPTY_TEXT = (frozenset([(False, "")]), ())
_DEV_NOINFO = (None, ())
try:  # the regex parser's own modules (private, stable in meaning)
    from re import _constants as _DEV_C, _parser as _DEV_PARSER  # Python >= 3.11
except ImportError:
    import sre_constants as _DEV_C, sre_parse as _DEV_PARSER      # Python 3.10
_DEV_BRANCH = _DEV_C.BRANCH
_DEV_REPEATS = tuple(getattr(_DEV_C, n) for n in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT") if hasattr(_DEV_C, n))
_DEV_ATOMIC = getattr(_DEV_C, "ATOMIC_GROUP", object())  # 3.11+


def _dev_clauses(pattern):
    """(CNF of literals a search of this compiled pattern needs, IGNORECASE)."""
    from re import IGNORECASE
    icase = bool(pattern.flags & IGNORECASE)
    return _dev_cnf(_dev_seq(_DEV_PARSER.parse(pattern.pattern, pattern.flags), icase)), icase


def _dev_cnf(info):
    exact, clauses = info
    if exact is None:
        return list(clauses)
    # a 1-char (or empty) text is in nearly every UA: no use as a filter
    return [exact] if min(len(t) for _, t in exact) >= 2 else []


def _dev_seq(items, icase, run=_DEV_EMPTY_TEXT[0]):
    """A sequence: the exact texts of the current run of exact items, and
    the clauses of everything before (runs cut where products grow big).
    run: exact texts known to come just before items."""
    clauses, whole = [], True  # whole: run is all so far
    for op, av in items:
        if op is _DEV_BRANCH and run != _DEV_EMPTY_TEXT[0]:
            # sre factors common prefixes out of alternatives ("L-|LGL" is
            # "L(-|GL)"): put the run back in front of each alternative
            exact, more = _dev_alt([_dev_seq(alt, icase, run) for alt in av[1]])
            if exact is None:
                clauses += _dev_cnf((run, ())) + list(more)  # the run itself is needed too
                run, whole = _DEV_EMPTY_TEXT[0], False
            else:
                run = exact
            continue
        exact, more = _dev_node(op, av, icase)
        if exact is None:
            clauses += _dev_cnf((run, ())) + list(more)
            run, whole = _DEV_EMPTY_TEXT[0], False
            continue
        joined = _dev_product(run, exact)
        if joined is None:
            clauses += _dev_cnf((run, ()))
            joined, whole = exact, False
        run = joined
    if whole:
        return run, ()
    return None, tuple(clauses + _dev_cnf((run, ())))


def _dev_product(a, b):
    """Texts of a followed by texts of b, or None when too many or unfoldable."""
    if len(a) * len(b) > _DEV_EXACT_MAX:
        return None
    out = set()
    for fa, ta in a:
        for fb, tb in b:
            if fa == fb:
                out.add((fa, ta + tb))
            elif (tb if fa else ta).isascii():  # lower() of ASCII is per char
                out.add((True, (ta + tb).lower()))
            else:
                return None
    return frozenset(out)


def _dev_alt(infos):
    if all(e is not None for e, _ in infos):
        union = frozenset().union(*(e for e, _ in infos))
        if len(union) <= _DEV_EXACT_MAX:
            return union, ()
    cnfs = [_dev_cnf(i) for i in infos]
    if not all(cnfs):
        return _DEV_NOINFO  # an alternative that needs nothing
    combos = 1
    for c in cnfs:
        combos *= len(c)
    if combos <= 8:  # (a1 & a2) | (b1 & b2) == (a1|b1) & (a1|b2) & ...
        out = [frozenset()]
        for c in cnfs:
            out = [x | y for x in out for y in c]
        return None, tuple(out)
    return None, (frozenset().union(*(min(c, key=_dev_clause_cost) for c in cnfs)),)


def _dev_node(op, av, icase):
    C = _DEV_C
    if op is C.LITERAL:
        return _dev_chars([chr(av)], icase)
    if op is C.IN:  # a small set of literals and ranges ([;:], [0-9]; not \d: Unicode)
        chars = []
        for o, v in av:
            if o is C.LITERAL:
                chars.append(chr(v))
            elif o is C.RANGE and v[1] - v[0] < 10:
                chars.extend(map(chr, range(v[0], v[1] + 1)))
            else:
                return _DEV_NOINFO
        return _dev_chars(chars, icase) if len(chars) <= 10 else _DEV_NOINFO
    if op is C.AT:
        return _DEV_EMPTY_TEXT  # an anchor consumes nothing
    if op is C.SUBPATTERN:
        return _DEV_NOINFO if (av[1] or av[2]) else _dev_seq(av[3], icase)
    if op is _DEV_ATOMIC:
        return _dev_seq(av, icase)
    if op is C.BRANCH:
        return _dev_alt([_dev_seq(alt, icase) for alt in av[1]])
    if op in _DEV_REPEATS:
        lo, hi, sub = av
        x = _dev_seq(sub, icase)
        if lo == hi == 1:
            return x
        if lo == 0 and hi == 1 and x[0] is not None:
            return _dev_alt([x, _DEV_EMPTY_TEXT])
        return (None, tuple(_dev_cnf(x))) if lo >= 1 else _DEV_NOINFO
    return _DEV_NOINFO


def _dev_chars(chars, icase):
    """One of these characters: exact texts, a letter in both cases folded."""
    if icase:
        if not all(c.isascii() for c in chars):
            return _DEV_NOINFO  # IGNORECASE may match it to an ASCII letter
        return frozenset((True, c.lower()) for c in chars), ()
    out = set()
    for c in chars:
        other = c.swapcase()
        if c.isascii() and c != other and other in chars:
            out.add((True, c.lower()))  # [Ss]
        else:
            out.add((False, c))
    return frozenset(out), ()


def _dev_clause_cost(clause):
    hits = sum(
        any(t in (low if folded else raw) for folded, t in clause)
        for raw, low in zip(_DEV_SAMPLE, _DEV_SAMPLE_LOW)
    )
    return hits, -min(len(t) for _, t in clause)


cdef inline uint64_t _dev_gram(Py_UCS4 a, Py_UCS4 b, Py_UCS4 c) nogil:
    return (<uint64_t>a << 42) | (<uint64_t>b << 21) | <uint64_t>c


# Keys: 3 code points x 21 bits; 2-grams carry the top bit; all ones is free.
cdef uint64_t _DEV_FREE = 0xFFFFFFFFFFFFFFFF
cdef uint64_t _DEV_KEY3 = 0x7FFFFFFFFFFFFFFF
cdef uint64_t _DEV_KEY2 = 0x3FFFFFFFFFF
cdef uint64_t _DEV_TAG2 = 0x8000000000000000


cdef class _DevGrams:
    """Gram -> literals table for one space (the raw UA or ua.lower()):
    each literal is filed under one of its grams (a rare one), so a scan of
    the UA only compares the few literals whose gram occurs."""

    def __cinit__(self, list lits, list ids, int nlits):
        cdef Py_ssize_t i, j, k = 0, total = sum(len(t) for t in lits)
        self.bits = 4
        while (1 << self.bits) < 2 * len(lits) + 16:
            self.bits += 1
        self.mask = (1 << self.bits) - 1
        self.keys = <uint64_t*>malloc((self.mask + 1) * sizeof(uint64_t))
        self.head = <int*>malloc((self.mask + 1) * sizeof(int))
        self.nxt = <int*>malloc((nlits + 1) * sizeof(int))
        self.goff = <int*>malloc((nlits + 1) * sizeof(int))
        self.chars = <Py_UCS4*>malloc((total + 1) * sizeof(Py_UCS4))
        self.start = <Py_ssize_t*>malloc((nlits + 1) * sizeof(Py_ssize_t))
        self.length = <Py_ssize_t*>malloc((nlits + 1) * sizeof(Py_ssize_t))
        if not (self.keys and self.head and self.nxt and self.goff and self.chars
                and self.start and self.length):
            raise MemoryError()
        for i in range(self.mask + 1):
            self.keys[i] = _DEV_FREE
        for i in range(1024):
            self.bloom[i] = 0
        self.has2 = False
        for t, lit in zip(lits, ids):
            self.start[lit] = k
            self.length[lit] = len(t)
            for j in range(len(t)):
                self.chars[k] = ord(t[j])
                k += 1
            if len(t) == 2:
                self.has2 = True
                self.goff[lit] = 0
                self._add(_DEV_TAG2 | _dev_gram(0, ord(t[0]), ord(t[1])), lit)
            else:
                self.goff[lit] = j = _dev_rare_gram(t)
                self._add(_dev_gram(ord(t[j]), ord(t[j + 1]), ord(t[j + 2])), lit)

    def __dealloc__(self):
        free(self.keys); free(self.head); free(self.nxt); free(self.goff)
        free(self.chars); free(self.start); free(self.length)

    cdef inline uint64_t _slot(self, uint64_t key) noexcept nogil:
        return (key * <uint64_t>0x9E3779B97F4A7C15) >> (64 - self.bits)

    cdef void _add(self, uint64_t key, int lit) noexcept:
        cdef uint64_t s = self._slot(key)
        cdef uint64_t b = (key * <uint64_t>0x9E3779B97F4A7C15) >> 48
        self.bloom[b >> 6] |= (<uint64_t>1) << (b & 63)
        while self.keys[s] != _DEV_FREE and self.keys[s] != key:
            s = (s + 1) & self.mask
        if self.keys[s] == _DEV_FREE:
            self.keys[s], self.head[s], self.nxt[lit] = key, lit, -1
        else:
            self.nxt[lit], self.head[s] = self.head[s], lit

    cdef void scan(self, str text, unsigned char* found, int* hits, Py_ssize_t* nhits) noexcept:
        """Sets found[lit] for every literal of this table present in text,
        and lists it in hits."""
        cdef int kind = PyUnicode_KIND(text)
        cdef void* data = PyUnicode_DATA(text)
        cdef Py_ssize_t n = PyUnicode_GET_LENGTH(text), i
        cdef uint64_t key = 0
        for i in range(n):
            key = ((key << 21) | <uint64_t>PyUnicode_READ(kind, data, i)) & _DEV_KEY3
            if self.has2 and i >= 1:
                self._probe(_DEV_TAG2 | (key & _DEV_KEY2), i - 1, kind, data, n, found, hits, nhits)
            if i >= 2:
                self._probe(key, i - 2, kind, data, n, found, hits, nhits)

    cdef inline void _probe(self, uint64_t key, Py_ssize_t pos, int kind, void* data,
                            Py_ssize_t n, unsigned char* found, int* hits, Py_ssize_t* nhits) noexcept:
        """Confirms the literals filed under the gram at text[pos:]."""
        cdef uint64_t h = key * <uint64_t>0x9E3779B97F4A7C15
        cdef uint64_t b = h >> 48, s = h >> (64 - self.bits)
        cdef Py_ssize_t at, j
        cdef int lit
        if not (self.bloom[b >> 6] >> (b & 63)) & 1:
            return
        while self.keys[s] != _DEV_FREE:
            if self.keys[s] == key:
                lit = self.head[s]
                while lit >= 0:
                    at = pos - self.goff[lit]
                    if not found[lit] and at >= 0 and at + self.length[lit] <= n:
                        for j in range(self.length[lit]):
                            if PyUnicode_READ(kind, data, at + j) != self.chars[self.start[lit] + j]:
                                break
                        else:
                            found[lit] = 1
                            hits[nhits[0]] = lit
                            nhits[0] += 1
                    lit = self.nxt[lit]
                return
            s = (s + 1) & self.mask


def _dev_rare_gram(t):
    """Offset of the 3-gram of t least seen in common UAs."""
    sample = _DEV_SAMPLE + _DEV_SAMPLE_LOW
    return min(range(len(t) - 2), key=lambda i: sum(x.count(t[i:i + 3]) for x in sample))


cdef class _DevFilter:
    """Which legacy regexes could match a UA: those whose every clause has a
    literal in it. Found literals mark their clauses, clauses count towards
    their parser: the work follows what is in the UA, not the 1,300 regexes."""

    def __cinit__(self, list patterns):
        cdef dict ids = {}
        cdef list uses = [], c_parser = [], need = [], icase = []
        for p, pat in enumerate(patterns):
            clauses, ic = _dev_clauses(pat)
            icase.append(ic)
            need.append(len(clauses))
            for clause in clauses:
                for lit in sorted(clause):
                    uses.append((ids.setdefault(lit, len(ids)), len(c_parser)))
                c_parser.append(p)
        if max(need) > 255:
            raise ValueError("a regex with more than 255 clauses")
        self.nlits, self.nclauses, self.nparsers = len(ids), len(c_parser), len(patterns)
        uses.sort()
        starts = [0] * (self.nlits + 1)
        for lit, _ in uses:
            starts[lit + 1] += 1
        for i in range(self.nlits):
            starts[i + 1] += starts[i]
        self.raw = _DevGrams([t for (f, t) in ids if not f], [i for (f, t), i in ids.items() if not f], self.nlits)
        self.low = _DevGrams([t for (f, t) in ids if f], [i for (f, t), i in ids.items() if f], self.nlits)
        self.l_start = _dev_ints(starts)
        self.l_clauses = _dev_ints([c for _, c in uses])
        self.c_parser = _dev_ints(c_parser)
        self.p_need = _dev_bytes(need)
        always = [p for p, n in enumerate(need) if n == 0]
        icase = [p for p, ic in enumerate(icase) if ic]
        self.nalways, self.nicase = len(always), len(icase)
        self.always, self.icase = _dev_ints(always), _dev_ints(icase)

    def __dealloc__(self):
        free(self.l_start); free(self.l_clauses); free(self.c_parser); free(self.p_need)
        free(self.always); free(self.icase)

    cdef unsigned char* scan(self, str ua) except NULL:
        """A fresh candidate flag per parser for ua (the caller frees it): per
        call, not shared, as the regexes run later may let another thread in."""
        cdef Py_ssize_t nl = self.nlits, np = self.nparsers, nhits = 0, h, k
        # one zeroed block: cand[np] | found[nl] | clause ok[nclauses] | parser's ok clauses[np]
        cdef unsigned char* cand = <unsigned char*>calloc(2 * np + nl + self.nclauses + 1, 1)
        cdef int* hits = <int*>malloc((nl + 1) * sizeof(int))
        cdef unsigned char* found
        cdef unsigned char* ok
        cdef unsigned char* count
        cdef int c, p
        if not cand or not hits:
            free(cand); free(hits)
            raise MemoryError()
        found, ok, count = cand + np, cand + np + nl, cand + np + nl + self.nclauses
        self.raw.scan(ua, found, hits, &nhits)
        self.low.scan(ua.lower(), found, hits, &nhits)
        for h in range(nhits):
            for k in range(self.l_start[hits[h]], self.l_start[hits[h] + 1]):
                c = self.l_clauses[k]
                if not ok[c]:
                    ok[c] = 1
                    p = self.c_parser[c]
                    count[p] += 1
                    if count[p] == self.p_need[p]:
                        cand[p] = 1
        free(hits)
        for k in range(self.nalways):
            cand[self.always[k]] = 1
        if not ua.isascii():  # IGNORECASE on non-ASCII text folds beyond lower()
            for k in range(self.nicase):
                cand[self.icase[k]] = 1
        return cand

    def accepts(self, int p, str ua):
        """Whether parser p's regex is tried on ua (tests check soundness)."""
        cdef unsigned char* cand = self.scan(ua)
        try:
            return bool(cand[p])
        finally:
            free(cand)


cdef unsigned char* _dev_bytes(list xs) except NULL:
    cdef unsigned char* out = <unsigned char*>malloc(len(xs) + 1)
    if not out:
        raise MemoryError()
    for i, x in enumerate(xs):
        out[i] = x
    return out


cdef int* _dev_ints(list xs) except NULL:
    cdef int* out = <int*>malloc((len(xs) + 1) * sizeof(int))
    if not out:
        raise MemoryError()
    for i, x in enumerate(xs):
        out[i] = x
    return out


# ---- the engine: legacy parsers, filtered, then user_agents' properties -----

cdef class _DevEngine:

    def __cinit__(self):
        from ua_parser import user_agent_parser as uap
        from user_agents import parsers as uaps
        # the very lists user_agents.parse walks (UA_PARSER_YAML included)
        ua, os, dev = list(uap.USER_AGENT_PARSERS), list(uap.OS_PARSERS), list(uap.DEVICE_PARSERS)
        self.nua, self.nos, self.ndev = len(ua), len(os), len(dev)
        self.parsers = ua + os + dev
        self.searches = [p.user_agent_re.search for p in self.parsers]
        self.filter = _DevFilter([p.user_agent_re for p in self.parsers])
        self.parses = {}
        self.UserAgent = uaps.UserAgent
        self.parse_browser = uaps.parse_browser
        self.parse_os = uaps.parse_operating_system
        self.parse_device = uaps.parse_device
        self.browsers, self.oses = {}, {}

    cdef void clear(self) noexcept:
        self.parses.clear()
        self.browsers.clear()
        self.oses.clear()

    cdef tuple _parse_one(self, int i, str ua):
        """parsers[i].Parse(ua). Parse reads its match only through groups()
        and lastindex, so its result is memoised under them: the costly
        part, the re.sub replacements, then runs once per distinct match."""
        m = self.searches[i](ua)
        if m is None:
            return None
        key = (i, m.groups(), m.lastindex)
        cdef PyObject* hit = PyDict_GetItem(self.parses, key)
        if hit is not NULL:
            return <tuple>hit
        r = self.parsers[i].Parse(ua)
        if len(self.parses) >= 50_000:
            self.parses.clear()
        self.parses[key] = r
        return r

    cdef tuple _first(self, int base, int n, unsigned char* cand, str ua, tuple none):
        """ua-parser's legacy loop: first parser with a truthy family; when
        none, the values of the last parser are what the loop leaves."""
        cdef int i
        cdef tuple r
        for i in range(base, base + n):
            if cand[i]:
                r = self._parse_one(i, ua)
                if r is not None and r[0]:
                    return r
                if r is not None and i == base + n - 1:
                    return r
        return none

    cdef tuple info(self, str ua):
        """The answer, or None where user_agents.parse would raise."""
        cdef unsigned char* cand = self.filter.scan(ua)
        try:
            return self._info(ua, cand)
        except Exception:  # only what ua-parser / user_agents code raised
            return None
        finally:
            free(cand)

    cdef tuple _info(self, str ua, unsigned char* cand):
        b = self._first(0, self.nua, cand, ua, (None,) * 4)
        o = self._first(self.nua, self.nos, cand, ua, (None,) * 5)
        d = self._first(self.nua + self.nos, self.ndev, cand, ua, (None,) * 3)
        # the dicts ua_parser.user_agent_parser.Parse builds, positionally
        b = (b[0] or "Other", b[1] or None, b[2] or None, b[3] or None)
        o = (o[0] or "Other",) + o[1:]
        d = ("Other" if d[0] is None else d[0],) + d[1:]
        # a UserAgent as user_agents.UserAgent.__init__ builds it
        u = self.UserAgent.__new__(self.UserAgent)
        u.ua_string = ua
        u.os = _dev_memo(self.oses, self.parse_os, o)
        u.browser = _dev_memo(self.browsers, self.parse_browser, b)
        u.device = self.parse_device(*d)
        if u.is_bot:
            kind = "bot"
        elif u.is_tablet:
            kind = "tablet"
        elif u.is_mobile:
            kind = "mobile"
        elif u.is_pc:
            kind = "desktop"
        else:
            kind = "other"
        return (kind, u.os.family, u.browser.family)


cdef object _dev_memo(dict memo, object fn, tuple args):
    cdef PyObject* hit = PyDict_GetItem(memo, args)
    if hit is not NULL:
        return <object>hit
    v = fn(*args)  # may raise (user_agents' int() of odd digits): not memoised
    if len(memo) >= 10_000:
        memo.clear()
    memo[args] = v
    return v


def _device_engine():
    """The engine (built on demand); tests reach the prefilter through it."""
    global _dev_engine
    if _dev_engine is None:
        _dev_engine = _DevEngine()
    return _dev_engine
