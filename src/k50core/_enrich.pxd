# Visit enrichment (k50core._enrich): what a Cython module can cimport. The classes are documented
# in _enrich.pyx.
from k50core._geoip cimport GeoIP


# A host as the classifier needs it: normalised, its registrable domain (once asked), its catalogue
# entry (or a referral named by it).
cdef class _Host:
    cdef object name
    cdef object site_       # None until asked: only a referrer compared with its landing needs it
    cdef tuple hit

    cdef object site(self)


# A landing URL, parsed once: the parts the attributes copy, and its query's part of the verdict.
cdef class _Url:
    cdef dict landing       # {"host", "path"} as present; None when neither
    cdef dict query         # None when empty
    cdef _Host lhost
    cdef int mode           # _FINAL, _FALLBACK or _REFERRER
    cdef tuple final        # the verdict with no referrer (_FINAL: with any)
    cdef object kind        # the traffic type whatever the referrer (_FALLBACK)


# A referrer, parsed once.
cdef class _Ref:
    cdef object host        # host_of(the referrer): what the attributes show
    cdef _Host info


cdef class Classifier:
    cdef readonly object catalogue
    cdef object py          # the reference, asked on the slow paths
    cdef dict hosts         # raw host -> _Host (None: not a host)
    cdef Py_ssize_t hosts_max
    cdef frozenset paid_set, marker_set
    cdef tuple paid_ids, marker_ids

    cdef object host(self, object raw)
    cdef int plan(self, _Url u, dict query) except -1
    cdef tuple resolve(self, _Url u, _Host ref)


cdef class Enricher:
    cdef readonly object geoip, catalogue
    cdef readonly Classifier classifier
    cdef GeoIP cgeo         # geoip when it is the compiled one, else None
    cdef dict urls, refs    # landing URL -> _Url, referrer -> _Ref
    cdef Py_ssize_t cache_size
    cdef _Url none_url
    cdef _Ref none_ref

    cdef _Url _new_url(self, object text)
    cdef _Url url(self, object text)
    cdef _Ref ref(self, object text)
