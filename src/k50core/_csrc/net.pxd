# The C library's address parsing, for the IP conditions (_match) and GeoIP lookups (_geoip).
cdef extern from "arpa/inet.h" nogil:
    int inet_pton(int af, const char* src, void* dst)

cdef extern from "netinet/in.h" nogil:
    cdef struct in_addr:
        pass
    cdef struct in6_addr:
        pass
    cdef struct sockaddr_in:
        in_addr sin_addr
    cdef struct sockaddr_in6:
        in6_addr sin6_addr

cdef extern from "netdb.h" nogil:
    cdef struct sockaddr:
        pass
    cdef struct addrinfo:
        int ai_flags
        int ai_family
        int ai_socktype
        sockaddr* ai_addr
    int getaddrinfo(const char* node, const char* service, const addrinfo* hints, addrinfo** res)
    void freeaddrinfo(addrinfo* res)
    enum:
        AF_INET
        AF_INET6
        AF_UNSPEC
        SOCK_STREAM
        AI_NUMERICHOST
