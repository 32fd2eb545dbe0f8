cdef extern from "_csrc/prefetch.h":
    void k50_prefetch(const void* p) nogil
    void k50_prefetch_write(const void* p) nogil
    void k50_prefetch_object(const void* o) nogil
