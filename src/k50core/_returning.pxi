# Returning visitors (compiled): the assign fast path.
#
# Most page views come from visitors whose lease is alive. For them assign()
# needs no enrichment and no rules: one dict lookup by visitor id, one CAS
# renewal in the slot table, and the Assignment they were given, with the new
# expiry. ``Assigner`` does exactly that as a C-level callable and hands
# everything else to the engine's full path.

import sys
from time import time as _wall_clock

cdef extern from "Python.h":
    bint PyDict_CheckExact(object o)
    double PyLong_AsDouble(object o) noexcept
    PyObject* PyErr_Occurred() noexcept
    void PyErr_Clear() noexcept

cdef extern from *:
    """
    /* An Assignment (a tuple subclass without __dict__) from its seven fields. Its
       fields are strings, floats, bools and None, which cannot form cycles, so the
       collector need not track it (CPython untracks such tuples too, only later). */
    static PyObject* k50_assignment(PyObject* cls, PyObject* a, PyObject* b, PyObject* c, PyObject* d,
                                    PyObject* e, PyObject* f, PyObject* g) {
        PyObject* items[7] = {a, b, c, d, e, f, g};
        PyObject* made = ((PyTypeObject*)cls)->tp_alloc((PyTypeObject*)cls, 7);
        if (made == NULL) return NULL;
        for (int i = 0; i < 7; i++) {
            Py_INCREF(items[i]);
            PyTuple_SET_ITEM(made, i, items[i]);
        }
        PyObject_GC_UnTrack(made);
        return made;
    }
    /* The visitor's last Assignment with a new expiry, reused in place when nothing but the
       cache refers to it (as zip() reuses its result tuple), else a fresh one with the same first
       five fields. A tuple (or a float inside it) that no one else can see may change: no one
       can observe it. Everything comes from ``last``: the cache entry stays one cache line. */
    static inline PyObject* k50_renewed(PyObject* last, double expires, PyObject* g) {
        if (Py_REFCNT(last) == 1) {
            PyObject* old_f = PyTuple_GET_ITEM(last, 5);
            PyObject* old_g = PyTuple_GET_ITEM(last, 6);
            if (Py_REFCNT(old_f) == 1 && PyFloat_CheckExact(old_f)) {
                ((PyFloatObject*)old_f)->ob_fval = expires;
            } else {
                PyObject* f = PyFloat_FromDouble(expires);
                if (f == NULL) return NULL;
                PyTuple_SET_ITEM(last, 5, f);
                Py_DECREF(old_f);
            }
            if (old_g != g) {
                Py_INCREF(g);
                PyTuple_SET_ITEM(last, 6, g);
                Py_DECREF(old_g);
            }
            Py_INCREF(last);
            return last;
        }
        PyObject* f = PyFloat_FromDouble(expires);
        if (f == NULL) return NULL;
        PyObject* made = k50_assignment((PyObject*)Py_TYPE(last), PyTuple_GET_ITEM(last, 0), PyTuple_GET_ITEM(last, 1),
                                        PyTuple_GET_ITEM(last, 2), PyTuple_GET_ITEM(last, 3),
                                        PyTuple_GET_ITEM(last, 4), f, g);
        Py_DECREF(f);
        return made;
    }
    """
    object k50_assignment(object cls, object a, object b, object c, object d, object e, object f, object g)

cdef extern from *:
    """
    /* visit["visitor_id"] for an exact dict, or NULL (an error set if there was one). Dicts built
       alike (the middleware's literal, a JSON object of one shape) keep the id at the same entry:
       on CPython 3.11-3.12, whose dict layout this mirrors (Include/internal/pycore_dict.h), that
       entry is read first (a key identical or equal to the name), and the generic lookup (three
       calls, the hash table's index) runs only when it is not there. */
    #if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030D0000 && !defined(PYPY_VERSION) && !defined(Py_GIL_DISABLED)
    #define K50_DICT_PEEK 1
    typedef struct {
        Py_ssize_t refcnt;
        uint8_t log2_size, log2_index_bytes, kind;  /* kind 1: DICT_KEYS_UNICODE (str keys, combined) */
        uint32_t version;
        Py_ssize_t usable, nentries;
        char indices[];
    } k50_dict_keys;
    typedef struct { PyObject* key; PyObject* value; } k50_dict_entry;
    static Py_ssize_t k50_id_entry = 0;  /* where the last visit kept it: a hint, checked before use */

    static inline k50_dict_entry* k50_str_entries(PyObject* d) {
        PyDictObject* mp = (PyDictObject*)d;
        k50_dict_keys* k = (k50_dict_keys*)mp->ma_keys;
        if (mp->ma_values != NULL || k->kind != 1) return NULL;
        return (k50_dict_entry*)(k->indices + ((size_t)1 << k->log2_index_bytes));
    }
    static inline int k50_is_name(PyObject* key, PyObject* name) {
        return key == name || (key != NULL && ((PyASCIIObject*)key)->hash == ((PyASCIIObject*)name)->hash
                               && PyUnicode_Compare(key, name) == 0);
    }
    #endif

    static inline PyObject* k50_dict_str_item(PyObject* d, PyObject* name) {
    #ifdef K50_DICT_PEEK
        k50_dict_entry* e = k50_str_entries(d);
        Py_ssize_t i = k50_id_entry;
        Py_ssize_t n = e == NULL ? 0 : ((k50_dict_keys*)((PyDictObject*)d)->ma_keys)->nentries;
        if (i < n && e[i].value != NULL && k50_is_name(e[i].key, name)) return e[i].value;
        PyObject* v = PyDict_GetItemWithError(d, name);
        for (Py_ssize_t j = 0; v != NULL && j < n && j < 16; j++) {  /* learn where this shape keeps it */
            if (e[j].value == v && k50_is_name(e[j].key, name)) { k50_id_entry = j; break; }
        }
        return v;
    #else
        return PyDict_GetItemWithError(d, name);
    #endif
    }
    """
    PyObject* k50_dict_str_item(object d, object name) except? NULL


cdef extern from *:
    """
    /* Assigner.entry(): a METH_FASTCALL builtin bound to the assigner. The usual calls
       (visit[, now[, token]], now= and token= by keyword) go straight to the C-level assign;
       anything else (a keyword spelt at run time, a wrong call) to the Python-level method,
       which parses it in full and names what is wrong. */
    typedef PyObject* (*k50_assign_fn)(PyObject*, PyObject*, PyObject*, PyObject*);
    static k50_assign_fn k50_assign_impl = NULL;
    static PyObject* k50_name_visit = NULL;
    static PyObject* k50_name_now = NULL;
    static PyObject* k50_name_token = NULL;
    static PyObject* k50_name_assign = NULL;

    static PyObject* k50_assign_vector(PyObject* self, PyObject* const* args, Py_ssize_t nargs,
                                       PyObject* kwnames) {
        PyObject* a[3] = {NULL, Py_None, Py_None};
        Py_ssize_t nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
        if (nargs <= 3) {
            for (Py_ssize_t i = 0; i < nargs; i++) a[i] = args[i];
            for (Py_ssize_t j = 0; j < nkw; j++) {
                PyObject* name = PyTuple_GET_ITEM(kwnames, j);
                int at = name == k50_name_now ? 1 : name == k50_name_token ? 2 : name == k50_name_visit ? 0 : -1;
                if (at < nargs) goto general;  /* unknown, or given twice */
                a[at] = args[nargs + j];
            }
            if (a[0] != NULL) return k50_assign_impl(self, a[0], a[1], a[2]);
        }
    general:;
        PyObject* method = PyObject_GetAttr(self, k50_name_assign);
        if (method == NULL) return NULL;
        PyObject* out = PyObject_Vectorcall(method, args, nargs, kwnames);
        Py_DECREF(method);
        return out;
    }
    static PyMethodDef k50_assign_def = {"assign", (PyCFunction)(void(*)(void))k50_assign_vector,
                                         METH_FASTCALL | METH_KEYWORDS,
                                         "assign(visit, now=None, token=None): see Engine.assign"};
    static PyObject* k50_assign_entry(PyObject* self) { return PyCFunction_NewEx(&k50_assign_def, self, NULL); }
    """
    ctypedef object (*k50_assign_fn)(object, object, object, object)
    k50_assign_fn k50_assign_impl
    PyObject* k50_name_visit
    PyObject* k50_name_now
    PyObject* k50_name_token
    PyObject* k50_name_assign
    object k50_assign_entry(object self)


cdef object _assign_c(object self, object visit, object now, object token):
    return (<Assigner>self)._assign(visit, now, token)


cdef tuple _assign_names = tuple(sys.intern(n) for n in ("visit", "now", "token", "assign"))  # kept alive
k50_name_visit = <PyObject*>_assign_names[0]
k50_name_now = <PyObject*>_assign_names[1]
k50_name_token = <PyObject*>_assign_names[2]
k50_name_assign = <PyObject*>_assign_names[3]
k50_assign_impl = _assign_c

cdef double _MAX_MS = <double>((1ULL << 43) - 1)


cdef extern from *:
    """
    /* Returning visitors by id: an open-addressing table (linear probing, backward-shift
       deletion, at most half full), one 64-byte entry per visitor holding all a renewal needs.
       A dict of entry objects took three cache lines and two calls per lookup. */
    typedef struct {
        PyObject* key;      /* the visitor id, an exact str (owned); NULL: an empty place */
        PyObject* last;     /* the Assignment given last time (owned; an untracked copy) */
        Py_hash_t hash;
        Py_ssize_t slot;
        uint64_t gen, hold;
        int joined;         /* joined someone else's shared lease (see ReturnCache.seen) */
        int pad_[3];
    } k50_ret;

    typedef struct {
        k50_ret* at;
        size_t mask;        /* places - 1 (a power of two less one); at == NULL: no places yet */
        Py_ssize_t used;
        uint64_t version;   /* changes with every put, removal and clear: entries may have moved */
    } k50_rets;

    static inline Py_hash_t k50_str_hash(PyObject* s) {
        Py_hash_t h = ((PyASCIIObject*)s)->hash;  /* str caches its hash */
        return h != -1 ? h : PyObject_Hash(s);
    }

    /* Where the visitor ``key`` (an exact str) is, or -1. */
    static inline Py_ssize_t k50_rets_find(const k50_rets* t, PyObject* key, Py_hash_t h) {
        if (t->at == NULL) return -1;
        for (size_t i = (size_t)h & t->mask;; i = (i + 1) & t->mask) {
            PyObject* k = t->at[i].key;
            if (k == key) return (Py_ssize_t)i;
            if (k == NULL) return -1;
            if (t->at[i].hash == h && PyUnicode_Compare(k, key) == 0) return (Py_ssize_t)i;
        }
    }

    /* The place for ``key``: its entry, or the empty place it would take. */
    static inline size_t k50_rets_place(const k50_rets* t, PyObject* key, Py_hash_t h) {
        for (size_t i = (size_t)h & t->mask;; i = (i + 1) & t->mask) {
            PyObject* k = t->at[i].key;
            if (k == NULL || k == key || (t->at[i].hash == h && PyUnicode_Compare(k, key) == 0)) return i;
        }
    }

    static int k50_rets_resize(k50_rets* t, size_t places) {
        k50_ret* at = NULL;
        if (posix_memalign((void**)&at, 64, places * sizeof(k50_ret)) != 0) { PyErr_NoMemory(); return -1; }
        memset(at, 0, places * sizeof(k50_ret));
        k50_rets grown = {at, places - 1, 0, t->version + 1};
        for (size_t i = 0; t->at != NULL && i <= t->mask; i++) {
            if (t->at[i].key != NULL) {
                grown.at[k50_rets_place(&grown, t->at[i].key, t->at[i].hash)] = t->at[i];
                grown.used++;
            }
        }
        free(t->at);
        *t = grown;
        return 0;
    }

    /* Remember (or replace) the visitor's entry; new references to key and last are taken. */
    static int k50_rets_put(k50_rets* t, PyObject* key, Py_ssize_t slot, uint64_t gen, uint64_t hold,
                            PyObject* last, int joined) {
        Py_hash_t h = k50_str_hash(key);
        if (h == -1) return -1;
        if (t->at == NULL || (size_t)(t->used + 1) * 2 > t->mask + 1) {
            if (k50_rets_resize(t, t->at == NULL ? 1024 : (t->mask + 1) * 2) < 0) return -1;
        }
        k50_ret* e = &t->at[k50_rets_place(t, key, h)];
        PyObject* old_key = e->key;
        PyObject* old_last = e->last;
        Py_INCREF(key);
        Py_INCREF(last);
        e->key = key; e->hash = h; e->last = last;
        e->slot = slot; e->gen = gen; e->hold = hold; e->joined = joined;
        t->version++;
        if (old_key == NULL) t->used++;
        Py_XDECREF(old_key);  /* last: the entry is whole again before any object goes away */
        Py_XDECREF(old_last);
        return 0;
    }

    /* Take out the entry at i; later entries of its probe run move back into the gap. */
    static void k50_rets_remove(k50_rets* t, size_t i) {
        PyObject* key = t->at[i].key;
        PyObject* last = t->at[i].last;
        size_t gap = i, j = i;
        for (;;) {
            j = (j + 1) & t->mask;
            if (t->at[j].key == NULL) break;
            size_t home = (size_t)t->at[j].hash & t->mask;
            /* j may fill the gap unless its home lies cyclically in (gap, j] */
            int stays = gap <= j ? (gap < home && home <= j) : (gap < home || home <= j);
            if (!stays) {
                t->at[gap] = t->at[j];
                gap = j;
            }
        }
        memset(&t->at[gap], 0, sizeof(k50_ret));
        t->used--;
        t->version++;
        Py_DECREF(key);
        Py_DECREF(last);
    }

    /* The Assignment of entry ``at`` renewed to ``expires`` (see k50_renewed): in place when only
       the table refers to it (nothing is allocated that could run other code); else a fresh one,
       the old held meanwhile, kept if no put or removal moved the entries as it was made. */
    static PyObject* k50_ret_renewed(k50_rets* t, Py_ssize_t at, double expires, int shared) {
        PyObject* g = shared ? Py_True : Py_False;
        PyObject* last = t->at[at].last;
        if (Py_REFCNT(last) == 1) return k50_renewed(last, expires, g);
        uint64_t version = t->version;
        Py_INCREF(last);
        PyObject* made = k50_renewed(last, expires, g);
        /* stored only if nothing ran meanwhile that moved the entries or renewed this one (code
           a collection runs, another thread): else the table's reference may be gone already */
        if (made != NULL && t->version == version && t->at[at].last == last) {
            Py_INCREF(made);
            t->at[at].last = made;
            t->version++;
            Py_DECREF(last);  /* the table's reference */
        }
        Py_DECREF(last);
        return made;
    }

    static void k50_rets_clear(k50_rets* t) {
        k50_rets old = *t;
        t->at = NULL; t->mask = 0; t->used = 0; t->version++;
        for (size_t i = 0; old.at != NULL && i <= old.mask; i++) {
            Py_XDECREF(old.at[i].key);
            Py_XDECREF(old.at[i].last);
        }
        free(old.at);
    }
    """
    ctypedef struct k50_ret:
        PyObject* key
        PyObject* last
        Py_ssize_t slot
        uint64_t gen, hold
        int joined
    ctypedef struct k50_rets:
        k50_ret* at
        size_t mask
        Py_ssize_t used
        uint64_t version
    Py_hash_t k50_str_hash(PyObject* s) except? -1
    Py_ssize_t k50_rets_find(const k50_rets* t, PyObject* key, Py_hash_t h)
    int k50_rets_put(k50_rets* t, PyObject* key, Py_ssize_t slot, uint64_t gen, uint64_t hold, PyObject* last,
                     int joined) except -1
    void k50_rets_remove(k50_rets* t, size_t i)
    object k50_ret_renewed(k50_rets* t, Py_ssize_t at, double expires, bint shared)
    void k50_rets_clear(k50_rets* t)


@cython.final
cdef class ReturnCache:
    """Returning visitors' live leases by visitor id: the assign fast path.

    Holds per visitor (slot, gen, hold, the Assignment last given); ``renew``
    extends the lease in the table and returns that Assignment with the new
    expiry, or None (dropping the entry) when the lease has ended.
    """
    cdef SlotTable table
    cdef k50_rets rets
    cdef Py_ssize_t capacity
    cdef public object seen  # seen(visitor, slot, gen, now): a joiner's return (their activity is their own)

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
        vid = k50_dict_str_item(visit, "visitor_id")
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
    cdef ReturnCache cache
    cdef object full

    def __init__(self, ReturnCache cache, full):
        self.cache = cache
        self.full = full

    def entry(self):
        """``assign`` as a builtin bound to this object, its arguments read in C: what an engine
        binds as ``Engine.assign``. (Called once per page view, so the argument parsing shows:
        keywords are matched by identity to the interned names, as CPython's own functions do.)"""
        return k50_assign_entry(self)

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


cdef extern from *:
    """
    #include <time.h>
    /* The wall clock in milliseconds, as time.time() gives it, without a call into Python. */
    static inline double k50_wall_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
    }
    """
    double k50_wall_ms() nogil
    double PyFloat_AS_DOUBLE(object o)


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
