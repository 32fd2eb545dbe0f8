cdef extern from "_csrc/assignment.h":
    object k50_assignment(object cls, object a, object b, object c, object d, object e, object f, object g)
    # the last Assignment with a new expiry, in place when nothing but the caller refers to it (tricks.h)
    object k50_renewed(object last, double expires, object shared)
