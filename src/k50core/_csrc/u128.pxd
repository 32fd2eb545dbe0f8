cdef extern from "_csrc/u128.h":
    # unsigned __int128 in C; Cython only passes the name through, so any integer type serves here
    ctypedef unsigned long long k50_u128
