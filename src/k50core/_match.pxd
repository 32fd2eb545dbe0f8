# Condition programs and the rule matcher (k50core._match): what a Cython module can cimport. The
# classes are documented in _match.pyx and _rule_index.pxi.
cimport cython
from cpython.object cimport PyObject
from libc.stdint cimport int32_t, uint32_t, uint64_t

from k50core._csrc.u128 cimport k50_u128

cdef enum:
    HEADS_INLINE = 48   # rule lists one visit draws without a malloc

# Sorted, merged network ranges ($cidr, the networks of a list).
cdef struct IpIndex:
    uint32_t* s4
    uint32_t* e4
    Py_ssize_t n4
    k50_u128* s6
    k50_u128* e6
    Py_ssize_t n6

# One node of a condition program (k50core.rules.compiler's node list, packed).
cdef struct Node:
    int op
    int slot
    int nkids
    int end
    int flag          # CMP/VCMP operator, IN flags (1: True, 2: False), $type code, $exists
    int ascii         # CMP: the literal is an ASCII str (fast string compare)
    double num        # CMP: the literal as a number (NaN when a string)
    PyObject* arg     # the compiler's arg (borrowed; self._keep holds it)
    PyObject* arg2    # a derived object: the frozenset, the literal, dotted hosts
    IpIndex* ips

# One evaluation's visit and its attribute paths, each resolved at most once.
cdef struct Ctx:
    PyObject* doc
    PyObject* paths   # the matcher's tuple of segment tuples, by slot
    PyObject** vals   # resolved slot values (owned references), valid where have[s]
    unsigned char* have
    int32_t* done     # the slots resolved so far, to release just those
    Py_ssize_t ndone

# The rule lists a visit draws from the index, merged in rule order by the matcher.
cdef struct Heads:
    int32_t** head
    int32_t** end
    Py_ssize_t n
    Py_ssize_t cap
    int32_t* head0[HEADS_INLINE]
    int32_t* end0[HEADS_INLINE]

# One indexed signature: the paths whose values make its keys.
cdef struct Sig:
    int kind
    int nslots
    int32_t slots[3]
    int32_t all_list
    int32_t default_list  # NOT_IN: the rules a value not hashed draws (all of them); else -1


cdef class _IpRanges:
    cdef IpIndex idx


@cython.final
cdef class RuleProbe:
    cdef int32_t* list_start
    cdef int32_t* list_len
    cdef int32_t* ids
    cdef int32_t always_list
    cdef uint64_t* hkeys
    cdef int32_t* hvals
    cdef uint64_t hmask
    cdef Sig* sigs
    cdef Py_ssize_t nsigs
    cdef Py_ssize_t ntries
    cdef int32_t* trie_slot
    cdef int32_t* trie_root
    cdef int32_t* trie_all
    cdef int32_t* tn_list
    cdef int32_t* tn_whole   # rules whose value must end at this node (or be followed by one "\n")
    cdef int32_t* tn_first
    cdef int32_t* tn_count
    cdef uint32_t* te_char
    cdef int32_t* te_child
    cdef Py_ssize_t nnets
    cdef int32_t* net_slot
    cdef int32_t* net_off    # per net: offset of its v4 segments, count, then the same for v6
    cdef uint32_t* s4
    cdef int32_t* l4
    cdef k50_u128* s6
    cdef int32_t* l6
    cdef list _lists
    cdef list _not_in_values  # per signature: the strings a NOT_IN signature hashed (else None)

    cdef int32_t _list(self, rules) except -1
    cdef _pack_lists(self, Py_ssize_t nroots)
    cdef _hash_table(self, signatures, hashed, defaults, Py_ssize_t nslots)
    cdef _tries(self, prefixes, wholes, Py_ssize_t nslots)
    cdef _networks(self, networks, Py_ssize_t nslots)
    cdef inline int _push_list(self, Heads* h, int32_t lid) except -1
    cdef int collect(self, Ctx* ctx, Heads* h) except -1
    cdef inline int32_t _lookup(self, uint64_t key) noexcept nogil
    cdef int _probe_hash(self, Py_ssize_t sig, Ctx* ctx, Heads* h) except -1
    cdef int _probe_not_in(self, Py_ssize_t sig, object v, Heads* h) except -1
    cdef int _probe_host(self, Py_ssize_t sig, object v, Heads* h) except -1
    cdef int _probe_trie(self, Py_ssize_t t, object v, Heads* h) except -1
    cdef int _probe_net(self, Py_ssize_t t, object v, Heads* h) except -1


@cython.final
cdef class Matcher:
    cdef Node* nodes
    cdef Py_ssize_t nnodes
    cdef int32_t* roots
    cdef Py_ssize_t nroots
    cdef object _paths          # tuple of segment tuples, by slot
    cdef Py_ssize_t nslots
    cdef list _keep             # keeps every object the nodes point to alive
    cdef RuleProbe probe        # the rule index (rules/index.py, _rule_index.pxi)

    cdef _pack(self, Node* n, object arg)
    cdef IpIndex* _ranges(self, v4, v6)
    cdef int _ev(self, Py_ssize_t i, object v, Ctx* ctx) except -1
    cdef int _cmp(self, Node* n, object v) except -1
    cdef int _regex(self, Node* n, object v) except -1
    cdef int _in(self, Node* n, object v, bint insensitive) except -1
    cdef int _scalar_in(self, Node* n, object v, bint insensitive) except -1
    cdef int _host(self, Node* n, object v) except -1
    cdef Py_ssize_t _run(self, object attributes, Py_ssize_t only, list collect=*) except -2
    cdef Py_ssize_t _first(self, Ctx* ctx, list collect) except -2
