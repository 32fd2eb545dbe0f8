# The probe side of the rule index (k50core.rules.index builds it).
#
# Everything a visit is looked up in lives in C arrays: one open-addressing
# hash table for the EXACT / LOWER / HOST keys (64-bit keys mixed from the
# signature and the values' hashes; two keys that collide share one rule
# list, which only adds candidates the program then rejects), a code-point
# trie per path for literal prefixes, and sorted disjoint ranges per path for
# networks. A probe pushes the matching rule lists (each sorted) onto Heads;
# the matcher merges them in rule order.

from cpython.object cimport PyObject_Hash
from cpython.unicode cimport PyUnicode_DATA, PyUnicode_KIND, PyUnicode_READ
from libc.stdint cimport uint64_t
from libc.string cimport memcpy

cdef enum:
    MAX_PROBE = 64      # values of one path a probe combines (more: the signature's every rule)

cdef enum:
    IX_EXACT = 0
    IX_LOWER = 1
    IX_HOST = 2
    IX_NOT_IN = 6  # k50core.rules.index's kind numbers


cdef void* _alloc(Py_ssize_t n, size_t size) except NULL:
    cdef void* p = malloc(max(1, n) * size)
    if p == NULL:
        raise MemoryError()
    memset(p, 0, max(1, n) * size)
    return p


cdef inline uint64_t _mix(uint64_t h, uint64_t x) noexcept nogil:
    h ^= x + <uint64_t>0x9E3779B97F4A7C15ULL + (h << 6) + (h >> 2)
    h *= <uint64_t>0xBF58476D1CE4E5B9ULL
    return h ^ (h >> 31)


cdef inline uint64_t _sig_seed(Py_ssize_t sig) noexcept nogil:
    return _mix(<uint64_t>0x243F6A8885A308D3ULL, <uint64_t>(sig + 1))


cdef uint64_t FNV_OFFSET = 0xCBF29CE484222325ULL
cdef uint64_t FNV_PRIME = 0x100000001B3ULL


cdef uint64_t _reversed_hash(str s):
    """FNV-1a over the code points of s from last to first (a host's labels reversed)."""
    cdef Py_ssize_t i
    cdef uint64_t h = FNV_OFFSET
    cdef int kind = PyUnicode_KIND(s)
    cdef void* data = PyUnicode_DATA(s)
    for i in range(PyUnicode_GET_LENGTH(s) - 1, -1, -1):
        h = (h ^ <uint64_t>PyUnicode_READ(kind, data, i)) * FNV_PRIME
    return h


cdef int _push(Heads* h, int32_t* start, int32_t length) except -1:
    cdef int32_t** nh
    cdef int32_t** ne
    if length <= 0:
        return 0
    if h.n == h.cap:  # a visit drawing very many lists (long list values): grow
        nh = <int32_t**>malloc(2 * h.cap * sizeof(int32_t*))
        ne = <int32_t**>malloc(2 * h.cap * sizeof(int32_t*))
        if nh == NULL or ne == NULL:
            free(nh)
            free(ne)
            raise MemoryError()
        memcpy(nh, h.head, h.n * sizeof(int32_t*))
        memcpy(ne, h.end, h.n * sizeof(int32_t*))
        if h.head != h.head0:
            free(h.head)
            free(h.end)
        h.head, h.end, h.cap = nh, ne, 2 * h.cap
    h.head[h.n] = start
    h.end[h.n] = start + length
    h.n += 1
    return 0


cdef inline void _heads_init(Heads* h) noexcept nogil:
    h.head = h.head0
    h.end = h.end0
    h.n = 0
    h.cap = HEADS_INLINE


cdef inline void _heads_free(Heads* h) noexcept nogil:
    if h.head != h.head0:
        free(h.head)
        free(h.end)


@cython.final
cdef class RuleProbe:
    """The rule index of one Matcher in C arrays (see k50core.rules.index)."""

    def __cinit__(self):
        self.list_start = self.list_len = self.ids = NULL
        self.hkeys = NULL
        self.hvals = NULL
        self.sigs = NULL
        self.trie_slot = self.trie_root = self.trie_all = NULL
        self.tn_list = self.tn_first = self.tn_count = self.te_child = self.tn_whole = NULL
        self.te_char = NULL
        self.net_slot = self.net_off = self.l4 = self.l6 = NULL
        self.s4 = NULL
        self.s6 = NULL

    def __init__(self, index, always, Py_ssize_t nroots, Py_ssize_t nslots):
        self._lists = []
        self.always_list = self._list(always)
        if index:  # a RuleIndex; () or None: every rule is in ``always``
            signatures, hashed, prefixes, wholes, networks, defaults = index
            self._hash_table(signatures, hashed, defaults, nslots)
            self._tries(prefixes, wholes, nslots)
            self._networks(networks, nslots)
        self._pack_lists(nroots)

    def __dealloc__(self):
        free(self.list_start)
        free(self.list_len)
        free(self.ids)
        free(self.hkeys)
        free(self.hvals)
        free(self.sigs)
        free(self.trie_slot)
        free(self.trie_root)
        free(self.trie_all)
        free(self.tn_list)
        free(self.tn_whole)
        free(self.tn_first)
        free(self.tn_count)
        free(self.te_char)
        free(self.te_child)
        free(self.net_slot)
        free(self.net_off)
        free(self.s4)
        free(self.l4)
        free(self.s6)
        free(self.l6)

    # -- building -------------------------------------------------------------------
    cdef int32_t _list(self, rules) except -1:
        # one rule needs no sorting (most lists of a large rule set: a section's path, a host)
        self._lists.append(list(rules) if type(rules) is tuple and len(rules) < 2 else sorted(set(rules)))
        return len(self._lists) - 1

    cdef _pack_lists(self, Py_ssize_t nroots):
        cdef Py_ssize_t i, k = 0, n = len(self._lists)
        total = sum(len(x) for x in self._lists)
        self.list_start = <int32_t*>_alloc(n, sizeof(int32_t))
        self.list_len = <int32_t*>_alloc(n, sizeof(int32_t))
        self.ids = <int32_t*>_alloc(total, sizeof(int32_t))
        for i, rules in enumerate(self._lists):
            self.list_start[i] = k
            self.list_len[i] = len(rules)
            for r in rules:
                if not 0 <= r < nroots:
                    raise ValueError(f"rule {r} outside the rule set")
                self.ids[k] = r
                k += 1
        self._lists = None

    cdef _hash_table(self, signatures, hashed, defaults, Py_ssize_t nslots):
        cdef Py_ssize_t i, k
        cdef uint64_t key, at
        self.nsigs = len(signatures)
        self.sigs = <Sig*>_alloc(self.nsigs, sizeof(Sig))
        every = [set() for _ in range(self.nsigs)]
        self._not_in_values = [None] * self.nsigs
        by_key = {}
        for i, (kind, slots) in enumerate(signatures):
            if kind not in (IX_EXACT, IX_LOWER, IX_HOST, IX_NOT_IN) or not 1 <= len(slots) <= 3 \
                    or (kind in (IX_HOST, IX_NOT_IN) and len(slots) != 1):
                raise ValueError(f"bad index signature {(kind, slots)!r}")
            self.sigs[i].default_list = -1
            if kind == IX_NOT_IN:
                self.sigs[i].default_list = self._list(defaults[i])
                every[i].update(defaults[i])
                self._not_in_values[i] = frozenset(v[0] for (sig, v) in hashed if sig == i)
            self.sigs[i].kind = kind
            self.sigs[i].nslots = len(slots)
            for k, s in enumerate(slots):
                if not 0 <= s < nslots:
                    raise ValueError(f"index slot {s} outside the path table")
                self.sigs[i].slots[k] = s
        for (sig, values), rules in hashed.items():
            kind, slots = signatures[sig]
            if len(values) != len(slots) or not all(type(v) is str for v in values):
                raise ValueError(f"bad index key {values!r}")
            key = _sig_seed(sig)
            if kind == IX_HOST:
                key = _mix(key, _reversed_hash(values[0]))
            else:
                for v in values:
                    key = _mix(key, <uint64_t>PyObject_Hash(v))
            by_key.setdefault(key, set()).update(rules)  # a collision merges: more candidates, never fewer
            every[sig].update(rules)
        for i in range(self.nsigs):
            self.sigs[i].all_list = self._list(every[i])
        size = 8
        while size < 2 * len(by_key):
            size *= 2
        self.hmask = size - 1
        self.hkeys = <uint64_t*>_alloc(size, sizeof(uint64_t))
        self.hvals = <int32_t*>_alloc(size, sizeof(int32_t))
        for i in range(size):
            self.hvals[i] = -1
        for key, rules in by_key.items():
            at = (key ^ (key >> 32)) & self.hmask
            while self.hvals[at] >= 0:
                at = (at + 1) & self.hmask
            self.hkeys[at] = key
            self.hvals[at] = self._list(rules)

    cdef _tries(self, prefixes, wholes, Py_ssize_t nslots):
        """One code-point trie per path, flattened breadth-first; edges sorted by code point."""
        cdef Py_ssize_t i, t
        slots = sorted(set(prefixes) | set(wholes))
        self.ntries = len(slots)
        self.trie_slot = <int32_t*>_alloc(self.ntries, sizeof(int32_t))
        self.trie_root = <int32_t*>_alloc(self.ntries, sizeof(int32_t))
        self.trie_all = <int32_t*>_alloc(self.ntries, sizeof(int32_t))
        node_list, node_whole, node_edges = [], [], []   # per node: list ids (-1), [(code point, child)]
        for t, slot in enumerate(slots):
            if not 0 <= slot < nslots:
                raise ValueError(f"index slot {slot} outside the path table")
            self.trie_slot[t] = slot
            both = (prefixes.get(slot, {}), wholes.get(slot, {}))
            self.trie_all[t] = self._list([r for table in both for rules in table.values() for r in rules])
            root = {}
            for mark, table in zip((None, ""), both):  # None: prefix rules, "": whole-value rules
                for text, rules in table.items():
                    if not isinstance(text, str) or (mark is None and not text):
                        raise ValueError(f"bad index prefix {text!r}")
                    node = root
                    for ch in text:
                        child = node.get(ch)  # not setdefault(ch, {}): a new dict per character
                        if child is None:
                            child = node[ch] = {}
                        node = child
                    node[mark] = rules
            self.trie_root[t] = len(node_list)
            queue = [root]
            node_list.append(-1)
            node_whole.append(-1)
            node_edges.append(None)
            i = 0
            while i < len(queue):
                node = queue[i]
                me = self.trie_root[t] + i
                node_list[me] = self._list(node[None]) if None in node else -1
                node_whole[me] = self._list(node[""]) if "" in node else -1
                edges = []
                for ch in sorted(k for k in node if k):
                    edges.append((ord(ch), len(node_list)))
                    node_list.append(-1)
                    node_whole.append(-1)
                    node_edges.append(None)
                    queue.append(node[ch])
                node_edges[me] = edges
                i += 1
        n = len(node_list)
        total = sum(len(e) for e in node_edges)
        self.tn_list = <int32_t*>_alloc(n, sizeof(int32_t))
        self.tn_whole = <int32_t*>_alloc(n, sizeof(int32_t))
        self.tn_first = <int32_t*>_alloc(n, sizeof(int32_t))
        self.tn_count = <int32_t*>_alloc(n, sizeof(int32_t))
        self.te_char = <uint32_t*>_alloc(total, sizeof(uint32_t))
        self.te_child = <int32_t*>_alloc(total, sizeof(int32_t))
        k = 0
        for i in range(n):
            self.tn_list[i] = node_list[i]
            self.tn_whole[i] = node_whole[i]
            self.tn_first[i] = k
            self.tn_count[i] = len(node_edges[i])
            for ch, child in node_edges[i]:
                self.te_char[k] = ch
                self.te_child[k] = child
                k += 1

    cdef _networks(self, networks, Py_ssize_t nslots):
        cdef Py_ssize_t i, k4 = 0, k6 = 0
        self.nnets = len(networks)
        self.net_slot = <int32_t*>_alloc(self.nnets, sizeof(int32_t))
        self.net_off = <int32_t*>_alloc(4 * self.nnets, sizeof(int32_t))
        items = sorted(networks.items())
        n4 = sum(len(v4) for _, (v4, _v6) in items)
        n6 = sum(len(v6) for _, (_v4, v6) in items)
        self.s4 = <uint32_t*>_alloc(n4, sizeof(uint32_t))
        self.l4 = <int32_t*>_alloc(n4, sizeof(int32_t))
        self.s6 = <k50_u128*>_alloc(n6, sizeof(k50_u128))
        self.l6 = <int32_t*>_alloc(n6, sizeof(int32_t))
        for i, (slot, (v4, v6)) in enumerate(items):
            if not 0 <= slot < nslots:
                raise ValueError(f"index slot {slot} outside the path table")
            self.net_slot[i] = slot
            self.net_off[4 * i] = k4
            self.net_off[4 * i + 1] = len(v4)
            self.net_off[4 * i + 2] = k6
            self.net_off[4 * i + 3] = len(v6)
            for start, rules in v4:
                self.s4[k4] = start
                self.l4[k4] = self._list(rules) if rules else -1
                k4 += 1
            for start, rules in v6:
                self.s6[k6] = _u128(start)
                self.l6[k6] = self._list(rules) if rules else -1
                k6 += 1

    # -- probing --------------------------------------------------------------------
    cdef inline int _push_list(self, Heads* h, int32_t lid) except -1:
        if lid >= 0:
            return _push(h, self.ids + self.list_start[lid], self.list_len[lid])
        return 0

    cdef int collect(self, Ctx* ctx, Heads* h) except -1:
        """Pushes every rule list the visit's values hit, and the residual list."""
        cdef Py_ssize_t i
        for i in range(self.nsigs):
            if self.sigs[i].kind == IX_HOST:
                self._probe_host(i, _ctx_slot(ctx, self.sigs[i].slots[0]), h)
            elif self.sigs[i].kind == IX_NOT_IN:
                self._probe_not_in(i, _ctx_slot(ctx, self.sigs[i].slots[0]), h)
            else:
                self._probe_hash(i, ctx, h)
        for i in range(self.ntries):
            self._probe_trie(i, _ctx_slot(ctx, self.trie_slot[i]), h)
        for i in range(self.nnets):
            self._probe_net(i, _ctx_slot(ctx, self.net_slot[i]), h)
        return self._push_list(h, self.always_list)

    cdef inline int32_t _lookup(self, uint64_t key) noexcept nogil:
        cdef uint64_t at = (key ^ (key >> 32)) & self.hmask
        while self.hvals[at] >= 0:
            if self.hkeys[at] == key:
                return self.hvals[at]
            at = (at + 1) & self.hmask
        return -1

    cdef int _probe_hash(self, Py_ssize_t sig, Ctx* ctx, Heads* h) except -1:
        """EXACT / LOWER: the value's hash (a list's: each string element's), combined over the paths."""
        cdef Sig* s = &self.sigs[sig]
        cdef uint64_t hashes[3][MAX_PROBE]
        cdef int count[3]
        cdef int pos[3]
        cdef Py_ssize_t k, j, n, total = 1
        cdef uint64_t key
        cdef object v, x
        cdef bint lower = s.kind == IX_LOWER
        for k in range(s.nslots):
            v = _ctx_slot(ctx, s.slots[k])
            count[k] = 0
            if PyUnicode_CheckExact(v):
                hashes[k][0] = <uint64_t>PyObject_Hash(v.lower() if lower else v)
                count[k] = 1
            elif PyList_Check(v):
                n = PyList_GET_SIZE(v)
                for j in range(n):
                    x = <object>PyList_GET_ITEM(v, j)
                    if PyUnicode_CheckExact(x):
                        if count[k] == MAX_PROBE:
                            return self._push_list(h, s.all_list)
                        hashes[k][count[k]] = <uint64_t>PyObject_Hash(x.lower() if lower else x)
                        count[k] += 1
                    elif PyUnicode_Check(x):  # a str subclass may compare its own way
                        return self._push_list(h, s.all_list)
            elif PyUnicode_Check(v):
                return self._push_list(h, s.all_list)
            if count[k] == 0:
                return 0  # no string there: no rule of this signature can hold
            total *= count[k]
        if total > MAX_PROBE:
            return self._push_list(h, s.all_list)
        for k in range(s.nslots):
            pos[k] = 0
        while True:
            key = _sig_seed(sig)
            for k in range(s.nslots):
                key = _mix(key, hashes[k][pos[k]])
            self._push_list(h, self._lookup(key))
            k = s.nslots - 1  # next combination, like an odometer
            while k >= 0:
                pos[k] += 1
                if pos[k] < count[k]:
                    break
                pos[k] = 0
                k -= 1
            if k < 0:
                return 0

    cdef int _probe_not_in(self, Py_ssize_t sig, object v, Heads* h) except -1:
        """NOT_IN: a string some rule excludes draws the rules that do not; anything else, all.
        The string is looked up in the signature's own set first: a 64-bit key that merely
        collided with one of them must not stand for it (that would drop rules, not add)."""
        if PyUnicode_CheckExact(v) and v in <frozenset>self._not_in_values[sig]:
            return self._push_list(h, self._lookup(_mix(_sig_seed(sig), <uint64_t>PyObject_Hash(v))))
        return self._push_list(h, self.sigs[sig].default_list)

    cdef int _probe_host(self, Py_ssize_t sig, object v, Heads* h) except -1:
        """HOST: the lowercased host and each parent domain, hashed from the last label inwards."""
        cdef Py_ssize_t i, n
        cdef uint64_t hv = FNV_OFFSET, seed = _sig_seed(sig)
        cdef uint32_t c
        cdef bint ascii
        cdef int kind
        cdef void* data
        if not PyUnicode_CheckExact(v):
            if PyUnicode_Check(v):
                return self._push_list(h, self.sigs[sig].all_list)
            return 0
        ascii = PyUnicode_IS_ASCII(v)
        if not ascii:  # as the VM does; lower() may change the length of non-ASCII text
            v = v.lower().rstrip(".")
        kind = PyUnicode_KIND(v)
        data = PyUnicode_DATA(v)
        n = PyUnicode_GET_LENGTH(v)
        while ascii and n > 0 and PyUnicode_READ(kind, data, n - 1) == 46:  # rstrip(".")
            n -= 1
        if n == 0:
            return self._push_list(h, self._lookup(_mix(seed, hv)))
        for i in range(n - 1, -1, -1):
            c = PyUnicode_READ(kind, data, i)
            if ascii and 65 <= c <= 90:
                c += 32
            hv = (hv ^ <uint64_t>c) * FNV_PRIME
            if i == 0 or PyUnicode_READ(kind, data, i - 1) == 46:
                self._push_list(h, self._lookup(_mix(seed, hv)))
        return 0

    cdef int _probe_trie(self, Py_ssize_t t, object v, Heads* h) except -1:
        """PREFIX / WHOLE: walk the value's code points down the path's trie; each node passed may
        hold prefix rules, the node where the value ends whole-value rules."""
        cdef Py_ssize_t i, n, lo, hi, mid
        cdef int32_t node = self.trie_root[t]
        cdef uint32_t c
        cdef int kind
        cdef void* data
        if not PyUnicode_CheckExact(v):
            if PyUnicode_Check(v):
                return self._push_list(h, self.trie_all[t])
            return 0
        kind = PyUnicode_KIND(v)
        data = PyUnicode_DATA(v)
        n = PyUnicode_GET_LENGTH(v)
        for i in range(n):
            c = PyUnicode_READ(kind, data, i)
            if c == 10 and i == n - 1 and self.tn_whole[node] >= 0:  # "$" matches before a last newline
                self._push_list(h, self.tn_whole[node])
            lo = self.tn_first[node]
            hi = lo + self.tn_count[node]
            while lo < hi:
                mid = (lo + hi) >> 1
                if self.te_char[mid] < c:
                    lo = mid + 1
                else:
                    hi = mid
            if lo == self.tn_first[node] + self.tn_count[node] or self.te_char[lo] != c:
                return 0
            node = self.te_child[lo]
            if self.tn_list[node] >= 0:
                self._push_list(h, self.tn_list[node])
        return self._push_list(h, self.tn_whole[node])

    cdef int _probe_net(self, Py_ssize_t t, object v, Heads* h) except -1:
        """IP: the segment holding the address (the last starting at or below it)."""
        cdef uint32_t a4 = 0
        cdef k50_u128 a6 = 0
        cdef Py_ssize_t lo, hi, mid, base
        cdef int version = _parse_ip(v, &a4, &a6)
        if version == 4:
            lo = self.net_off[4 * t]
            hi = lo + self.net_off[4 * t + 1]
            base = lo
            while lo < hi:
                mid = (lo + hi) >> 1
                if self.s4[mid] <= a4:
                    lo = mid + 1
                else:
                    hi = mid
            if lo > base:
                self._push_list(h, self.l4[lo - 1])
        elif version == 6:
            lo = self.net_off[4 * t + 2]
            hi = lo + self.net_off[4 * t + 3]
            base = lo
            while lo < hi:
                mid = (lo + hi) >> 1
                if self.s6[mid] <= a6:
                    lo = mid + 1
                else:
                    hi = mid
            if lo > base:
                self._push_list(h, self.l6[lo - 1])
        return 0
