# What a new visitor's attributes become (included by _enrich.pyx): the summary its stored visit
# keeps and the dimensions its report counters count, compiled. The reference, and the oracle the
# tests hold this to, is k50core._engine_py.summary. Attributes come from enrichment as plain dicts
# of str; anything else (a mapping that is not a dict, a value that is not text) is handed to the
# reference's own expressions, so both builds answer alike for any input.

from k50core._engine_py.summary import (
    clean_value as _py_clean_value, ga_fields as _ga_fields, landing_parts as _landing_parts,
    visit_combo as _py_visit_combo, visit_summary as _py_visit_summary,
)

cdef dict _NO_PART = {}


cdef inline object _get(dict d, str key):
    """d.get(key) for a dict of the visit (a key of exact str: its hash cannot raise)."""
    cdef PyObject* p = PyDict_GetItem(d, key)
    return <object>p if p != NULL else None


cdef inline dict _sub(dict attrs, str key):
    """The visit's part ``key`` when it is a plain dict, else an empty one (the reference's _part)."""
    cdef PyObject* p = PyDict_GetItem(attrs, key)
    if p != NULL and type(<object>p) is dict:
        return <dict>p
    return _NO_PART


cdef inline bint _kept(object value) except -1:
    """The reference's ``value is not None and value != "" and value != {}``."""
    if value is None:
        return False
    if type(value) is str:
        return PyUnicode_GET_LENGTH(value) > 0
    return value != "" and value != {}


cdef inline object _text(object value):
    """``value if type(value) is str and value else clean_value(value)``: the dimension's text."""
    if type(value) is str:
        return value if PyUnicode_GET_LENGTH(value) > 0 else None
    if value is None:
        return None
    return _py_clean_value(value)


cdef inline object _utm(object value):
    return value if type(value) is str and PyUnicode_GET_LENGTH(value) > 0 else None


def visit_summary(attrs):
    """What a stored visit keeps of its attributes (see the reference)."""
    if type(attrs) is not dict:
        return _py_visit_summary(attrs)
    cdef dict a = <dict>attrs
    cdef dict out = {}
    cdef dict part
    cdef dict utm
    cdef object value, key
    value = _get(a, "source")
    if _kept(value):
        out["source"] = value
    value = _get(a, "traffic_type")
    if _kept(value):
        out["traffic_type"] = value
    part = _sub(a, "query")
    if part:
        utm = {}
        for key, value in part.items():
            if type(key) is str:
                if (<str>key).startswith("utm_"):
                    utm[key] = value
            elif isinstance(key, str) and key.startswith("utm_"):
                utm[key] = value
        if utm:
            out["utm"] = utm
    part = _sub(a, "landing")
    if part:
        value = (_get(part, "host") or "") + (_get(part, "path") or "")
        if value:
            out["landing"] = value
    value = _get(_sub(a, "referrer"), "host")
    if _kept(value):
        out["referrer"] = value
    part = _sub(a, "geo")
    if part:
        value = _get(part, "region")
        if _kept(value):
            out["region"] = value
        value = _get(part, "city")
        if _kept(value):
            out["city"] = value
        value = _get(part, "country")
        if _kept(value):
            out["country"] = value
    value = _get(_sub(a, "device"), "type")
    if _kept(value):
        out["device"] = value
    value = _get(a, "ip")
    if _kept(value):
        out["ip"] = value
    part = _sub(a, "cookie")
    if part:
        _ga_fields(part, out)
    return out


cdef tuple _landing_of(dict landing):
    """(host, path) of the landing page as the summary's host + path reads back (the reference's
    _landing)."""
    cdef object host = _get(landing, "host"), path = _get(landing, "path")
    cdef Py_ssize_t j
    cdef str h, p, joined
    if type(host) is str and type(path) is str and "/" not in <str>host:
        h, p = <str>host, <str>path
        j = p.find("/")
        if j < 0:
            joined = h + p
            return (joined if joined else None), None
        joined = h if j == 0 else h + p[:j]
        return (joined if joined else None), p[j:]
    return _landing_parts((host or "") + (path or ""))


def visit_combo(attrs, rule, pool, number):
    """The dimensions of a visit, in COMBO_ORDER (see the reference)."""
    if type(attrs) is not dict:
        return _py_visit_combo(attrs, rule, pool, number)
    cdef dict a = <dict>attrs
    cdef dict query = _sub(a, "query"), geo = _sub(a, "geo")
    cdef object landing = _get(a, "landing")
    cdef tuple at = _landing_of(<dict>landing) if type(landing) is dict else (None, None)
    cdef object device = _get(_sub(a, "device"), "type"), referrer = _get(_sub(a, "referrer"), "host")
    return (_text(_get(a, "source")), _text(_get(a, "traffic_type")),
            _utm(_get(query, "utm_source")), _utm(_get(query, "utm_medium")), _utm(_get(query, "utm_campaign")),
            rule, pool,
            _text(_get(geo, "region")), _text(device),
            at[1], at[0],
            _text(referrer), _text(_get(geo, "city")), _text(_get(geo, "country")),
            _utm(_get(query, "utm_content")), _utm(_get(query, "utm_term")),
            number)
