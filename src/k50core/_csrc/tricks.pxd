cdef extern from "_csrc/tricks.h":
    int K50_CPYTHON_TRICKS
