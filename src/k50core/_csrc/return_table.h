/* The returning visitors' open-addressing table.
 * Declared for Cython in return_table.pxd. */
#ifndef K50_RETURN_TABLE_H
#define K50_RETURN_TABLE_H

#include <Python.h>
#include <stdint.h>
#include "tricks.h"
#include "assignment.h"  /* k50_renewed */

/* Returning visitors by id: an open-addressing table (linear probing, backward-shift
   deletion, at most half full), one 64-byte entry per visitor holding all a renewal needs:
   a lookup touches one cache line and calls nothing (a dict of entry objects touches three). */
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

#endif  /* K50_RETURN_TABLE_H */
