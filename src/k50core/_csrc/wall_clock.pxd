cdef extern from "_csrc/wall_clock.h":
    double k50_wall_ms() nogil
