cdef extern from "_csrc/records.h":
    object k50_named(object cls, tuple items)
    object k50_number_text(unsigned long long number)
    object k50_lease_text(unsigned long long slot, unsigned long long gen)
