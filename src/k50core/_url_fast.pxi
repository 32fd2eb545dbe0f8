# The common landing URL, split in C (included by _enrich.pyx).
#
# Most landing URLs are seen once: ad clicks carry a click id of their own (yclid, gclid), so the
# URL cache rarely helps and each such visit would pay k50core.enrich.url.split_url in Python. The
# usual shape is read here: printable ASCII, ``http://`` or ``https://`` then a plain host
# ([a-z0-9._-], dotted, no trailing dot, no ``xn--`` label, an optional port), a path and a query
# whose escapes decode as UTF-8. Anything else (other schemes, userinfo, IPv6, upper case or
# percent-escapes in the host, backslashes, spaces, non-ASCII) returns None and goes to the Python
# function, which is also what this one must agree with: tests/test_enrich_builds.py compares them.

from libc.stdlib cimport free, malloc

cdef Py_ssize_t MAX_PARAMS = _MAX_PARAMS
cdef Py_ssize_t MAX_HOST = 253
cdef Py_ssize_t MAX_LABEL = 63


cdef inline int _hexval(unsigned char c) noexcept nogil:
    if 48 <= c <= 57:
        return c - 48
    if 97 <= c <= 102:
        return c - 87
    if 65 <= c <= 70:
        return c - 55
    return -1


cdef object _decoded(const unsigned char* s, Py_ssize_t n, bint plus, unsigned char* buf):
    """s[:n] percent-decoded as UTF-8 (bad bytes replaced), ``+`` a space when ``plus``, NULs removed:
    k50core.enrich.url._decode for ASCII text. ``buf`` holds at least n bytes."""
    cdef Py_ssize_t i = 0, k = 0
    cdef int hi, lo
    cdef unsigned char c
    cdef bint nul = False, escaped = False
    while i < n:
        c = s[i]
        if c == 37 and i + 2 < n:  # '%' with two characters after it
            hi, lo = _hexval(s[i + 1]), _hexval(s[i + 2])
            if hi >= 0 and lo >= 0:
                c = <unsigned char>(hi * 16 + lo)
                nul = nul or c == 0
                escaped = True
                buf[k] = c
                k += 1
                i += 3
                continue
        elif c == 43 and plus:
            c = 32
        buf[k] = c
        k += 1
        i += 1
    text = PyUnicode_DecodeUTF8(<const char*>buf, k, "replace") if escaped else \
        PyUnicode_DecodeUTF8(<const char*>buf, k, NULL)
    return text.replace("\x00", "") if nul else text


cdef object _fast_host(const unsigned char* s, Py_ssize_t n):
    """A plain host (see above) as split_url returns it, or None (the Python function decides)."""
    cdef Py_ssize_t i, label = 0, dots = 0
    cdef unsigned char c
    if n == 0 or n > MAX_HOST or s[0] == 46 or s[n - 1] == 46:
        return None
    for i in range(n):
        c = s[i]
        if c == 46:
            if label == 0:
                return None  # ".."
            label = 0
            dots += 1
            continue
        if not (97 <= c <= 122 or 48 <= c <= 57 or c == 45 or c == 95):
            return None
        label += 1
        if label > MAX_LABEL:
            return None
        if label == 4 and c == 45 and s[i - 1] == 45 and s[i - 2] == 110 and s[i - 3] == 120:
            return None  # an "xn--" label: its punycode is the Python function's to read
    if dots == 0:
        return None  # "localhost" and single labels: rare, the Python function's
    return PyUnicode_DecodeUTF8(<const char*>s, n, NULL)


cdef object _split_fast(str url):
    """(host, path, query) of a URL of the usual shape, else None."""
    cdef Py_ssize_t n, i, start, auth_end, colon, path_end, q_end, p, amp, eq, port
    cdef const unsigned char* s
    cdef unsigned char c
    cdef unsigned char* buf
    cdef dict query
    if not PyUnicode_IS_ASCII(url):
        return None
    n = PyUnicode_GET_LENGTH(url)
    if n > MAX_FIELD or n < 9:
        return None
    s = <const unsigned char*>PyUnicode_DATA(url)
    for i in range(n):
        if s[i] <= 32 or s[i] >= 127 or s[i] == 92:  # controls, space, DEL, backslash
            return None
    if s[0] != 104 or s[1] != 116 or s[2] != 116 or s[3] != 112:  # "http"
        return None
    start = 4
    if s[start] == 115:  # "https"
        start += 1
    if start + 3 > n or s[start] != 58 or s[start + 1] != 47 or s[start + 2] != 47:  # "://"
        return None
    start += 3
    if start >= n or s[start] == 47:  # a third slash: the Python function's
        return None
    auth_end = start
    colon = -1
    while auth_end < n:
        c = s[auth_end]
        if c == 47 or c == 63 or c == 35:
            break
        if c == 58:
            if colon >= 0:
                return None
            colon = auth_end
        elif c == 64 or c == 91 or c == 37:  # userinfo, IPv6, escapes
            return None
        auth_end += 1
    if colon >= 0:
        if auth_end - colon - 1 > 5:
            return None
        port = 0
        for i in range(colon + 1, auth_end):
            if not 48 <= s[i] <= 57:
                return None
            port = port * 10 + (s[i] - 48)
        if port > 65535:
            return None
        host = _fast_host(s + start, colon - start)
    else:
        host = _fast_host(s + start, auth_end - start)
    if host is None:
        return None
    path_end = auth_end
    while path_end < n and s[path_end] != 63 and s[path_end] != 35:
        path_end += 1
    buf = <unsigned char*>malloc(n + 1)
    if buf == NULL:
        raise MemoryError()
    try:
        path = _decoded(s + auth_end, path_end - auth_end, False, buf) if path_end > auth_end else "/"
        if not path:
            path = "/"
        query = {}
        if path_end < n and s[path_end] == 63:
            q_end = path_end + 1
            while q_end < n and s[q_end] != 35:
                q_end += 1
            p = path_end + 1
            while p < q_end and PyDict_Size(query) < MAX_PARAMS:
                amp = p
                while amp < q_end and s[amp] != 38:
                    amp += 1
                if amp > p:
                    eq = p
                    while eq < amp and s[eq] != 61:
                        eq += 1
                    key = _decoded(s + p, eq - p, True, buf)
                    if key and key not in query:
                        query[key] = _decoded(s + eq + 1, amp - eq - 1, True, buf) if eq + 1 < amp else ""
                p = amp + 1
        return host, path, query
    finally:
        free(buf)


def split_url(url):
    """k50core.enrich.url.split_url, the usual shape read in C (the same answer for any input)."""
    if type(url) is str:
        got = _split_fast(<str>url)
        if got is not None:
            return got
    return _split_url(url)
