cdef extern from "_csrc/assignment.h":
    object k50_assignment(object cls, object a, object b, object c, object d, object e, object f, object g)
