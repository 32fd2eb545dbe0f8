"""Split page URLs and referrers into the parts the rules look at.

A visit brings two URLs: the page it landed on and the referrer. Both come
from the browser (or from whoever calls the API) and can be anything, so the
functions here accept any object and never raise. What cannot be read comes
back as "absent": ``(None, None, {})`` from :func:`split_url`, ``None`` from
:func:`host_of`.

What is accepted
----------------
* ``scheme://authority/path?query#fragment`` for any scheme, e.g.
  ``https://example.com/p?x=1`` or ``android-app://com.google.android.gm/``
  (Android apps send such referrers; the package name is the host).
  For the web schemes (http, https, ws, wss, ftp) slashes after the colon are
  optional and backslashes count as slashes, as in browsers.
* ``//example.com/p`` (scheme-relative).
* ``example.com/path?x=1`` and ``localhost:8000/x`` (no scheme): the text up
  to the first ``/``, ``?`` or ``#`` is read as the host when it is a valid
  host name containing a dot (or ``localhost``, or a bracketed IPv6
  address), optionally with a port. Without a scheme, text with ``@`` before
  the path (``user@example.com``) is an e-mail address, not a URL: absent.
* ``/path?x=1`` and ``?x=1``: a URL without host; the host is ``None`` and the
  path and query are read as usual.
* Opaque URIs (``mailto:``, ``tel:``, ``javascript:``, ``data:``, ``about:``)
  and any other text are absent.

What comes back
---------------
* host: lowercase, without userinfo, port or trailing dots; percent-escapes
  decoded; ``xn--`` labels decoded to Unicode when they are valid punycode
  (kept as written otherwise); Unicode hosts in NFC. An IPv6 address is
  returned compressed and in brackets (``[::1]``), as browsers show it, so
  the host can be fed back to :func:`host_of` unchanged. A host with a
  character no host name can contain (space, ``<``, a replacement character
  from broken UTF-8, ...) or an invalid port (``http://a:b:c/``,
  ``http://[::1``) makes the whole URL absent. ``file:///x`` has no host.
* path: percent-decoded as UTF-8 with undecodable bytes replaced by U+FFFD,
  NUL characters removed; always starts with ``/`` (``"/"`` when empty).
* query: every parameter of the part between ``?`` and ``#``, split on ``&``;
  ``+`` is a space; keys and values percent-decoded like the path; NUL
  characters removed; the first value wins when a key repeats; parameters
  with an empty key are skipped; at most :data:`MAX_PARAMS` parameters are
  kept. Keys are case-sensitive (``UTM_SOURCE`` is not ``utm_source``).
  The fragment is ignored.

Input hygiene: ``bytes`` are decoded as UTF-8 with errors replaced; lone
surrogates in a ``str`` become U+FFFD; leading and trailing spaces and C0
control characters are stripped and tabs/newlines anywhere are removed (as
browsers do); input longer than :data:`MAX_FIELD` characters (or bytes) is
absent.
"""
from __future__ import annotations

import ipaddress
import unicodedata
from urllib.parse import unquote_to_bytes

__all__ = ["MAX_FIELD", "MAX_PARAMS", "split_url", "host_of", "normalize_host"]

MAX_FIELD = 16384  # any raw url/referrer longer than this is treated as absent
MAX_PARAMS = 200  # query parameters kept per URL

_ASCII_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_SCHEME_CHARS = frozenset(_ASCII_LETTERS + "0123456789+-.")
_SCHEME_START = frozenset(_ASCII_LETTERS)
_SPECIAL_SCHEMES = frozenset({"http", "https", "ws", "wss", "ftp"})
_HOST_ASCII = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-._")
_DIGITS = frozenset("0123456789")
_STRIP = "".join(chr(c) for c in range(0x21))  # C0 controls and space
_TAB_NL = {9: None, 10: None, 13: None}
_DOTS = {0x3002: ".", 0xFF0E: ".", 0xFF61: "."}  # IDNA full stops
_AUTH_END = ("/", "?", "#", "\\")
_PATH_END = ("?", "#")
_MAX_HOST = 253
_MAX_LABEL = 63

Split = tuple[str | None, str | None, dict[str, str]]


def _decode(text: str, plus: bool) -> str:
    """Percent-decoded text (``+`` as space in queries), without NULs."""
    if plus and "+" in text:
        text = text.replace("+", " ")
    if "%" in text:
        text = _unquote(text)
    if "\x00" in text:
        text = text.replace("\x00", "")
    return text


def split_url(url: object) -> Split:
    """Return ``(host, path, query)`` of *url*; ``(None, None, {})`` if absent.

    See the module docstring for the accepted forms and the normal form of
    each part. Never raises.
    """
    s = _prepare(url)
    if s is None:
        return None, None, {}
    parsed = _locate(s)
    if parsed is None:
        return None, None, {}
    host, pos = parsed
    end = _first(s, pos, _PATH_END)
    path = s[pos:end]
    if path:
        if "\\" in path:
            path = path.replace("\\", "/")
        path = _decode(path, plus=False)
    if not path:
        path = "/"
    query: dict[str, str] = {}
    if end < len(s) and s[end] == "?":
        frag = s.find("#", end + 1)
        _parse_query(s[end + 1 : frag if frag >= 0 else len(s)], query)
    return host, path, query


def host_of(url: object) -> str | None:
    """Return just the host of *url* (same rules as :func:`split_url`)."""
    s = _prepare(url)
    if s is None:
        return None
    parsed = _locate(s)
    return None if parsed is None else parsed[0]


def normalize_host(text: object) -> str | None:
    """Normalise a bare host name (``"WWW.Example.RU."``) or a URL to a host.

    Unlike :func:`host_of`, a bare single-label name (``"localhost"``,
    ``"intranet"``) is accepted. A port is dropped. ``None`` when *text* is
    not a host name. Never raises.
    """
    s = _prepare(text)
    if not s:
        return None
    if (_HOST_ASCII.issuperset(s) and s[-1] != "." and s[0] != "." and ".." not in s
            and "xn--" not in s):  # fast path: already normal
        return s if len(s) <= _MAX_HOST and _labels_ok(s) else None
    for c in "/?#@\\":
        if c in s:
            return host_of(s)
    if s.count(":") > 1 and s[0] != "[":  # a bare IPv6 address
        s = "[" + s + "]"
    return _authority(s)


# ---------------------------------------------------------------- internals


def _prepare(url: object) -> str | None:
    """Input hygiene: to a clean ``str``, or ``None`` if absent."""
    if isinstance(url, str):
        s = url
        if len(s) > MAX_FIELD:
            return None
    elif isinstance(url, (bytes, bytearray, memoryview)):
        try:
            raw = bytes(url)
        except Exception:  # a memoryview of an exotic format
            return None
        if len(raw) > MAX_FIELD:
            return None
        s = raw.decode("utf-8", "replace")
    else:
        return None
    if not s.isascii():
        try:
            s.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates; pairs are joined
            s = s.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    s = s.strip(_STRIP)
    if "\t" in s or "\n" in s or "\r" in s:
        s = s.translate(_TAB_NL)
    return s


def _unquote(s: str) -> str:
    """Percent-decode *s* as UTF-8 with undecodable bytes replaced: ``unquote(s, errors="replace")``.

    Through ``unquote_to_bytes`` and one decode of the whole rather than ``unquote``'s decode per run of
    escapes: the same text (a test compares them), in less time on the visitor path. *s* holds no
    lone surrogates (see :func:`_prepare`).
    """
    return unquote_to_bytes(s).decode("utf-8", "replace")


def _first(s: str, start: int, chars: tuple[str, ...]) -> int:
    """Index of the first of *chars* in ``s[start:]``, or ``len(s)``."""
    best = len(s)
    for c in chars:
        k = s.find(c, start, best)
        if k >= 0:
            best = k
    return best


def _locate(s: str) -> tuple[str | None, int] | None:
    """Find the host and where the path starts; ``None`` if unparseable."""
    if not s:
        return None
    first = s[0]
    if first in "/\\":
        if len(s) > 1 and s[1] in "/\\":  # //host/path
            return _host_then_path(s, 2, schemeless=False)
        return None, 0  # /path
    if first in "?#":
        return None, 0
    colon = s.find(":", 0, 64)
    if colon > 0 and first in _SCHEME_START and _SCHEME_CHARS.issuperset(s[1:colon]):
        scheme = s[:colon].lower()
        rest = colon + 1
        if scheme in _SPECIAL_SCHEMES:
            while rest < len(s) and s[rest] in "/\\":
                rest += 1
            found = _host_then_path(s, rest, schemeless=False)
            return None if found is None or found[0] is None else found
        if s.startswith("//", rest):
            return _host_then_path(s, rest + 2, schemeless=False)
        # "example.com:8080/x" reads like scheme "example.com"; a port tells.
        port_end = _first(s, rest, _AUTH_END)
        if rest < port_end <= rest + 5 and _DIGITS.issuperset(s[rest:port_end]):
            return _host_then_path(s, 0, schemeless=True)
        return None  # opaque: mailto:, tel:, javascript:, data:, ...
    return _host_then_path(s, 0, schemeless=True)


def _host_then_path(s: str, start: int, schemeless: bool) -> tuple[str | None, int] | None:
    end = _first(s, start, _AUTH_END)
    auth = s[start:end]
    if schemeless:
        if "@" in auth:
            return None
        host = _authority(auth)
        if host is None or not ("." in host or host == "localhost" or host[0] == "["):
            return None
        return host, end
    at = auth.rfind("@")
    if at >= 0:
        auth = auth[at + 1 :]
    if not auth:
        return None, end  # file:///x, http:///x
    host = _authority(auth)
    if host is None:
        return None
    return host, end


def _valid_port(port: str) -> bool:
    return not port or (len(port) <= 5 and _DIGITS.issuperset(port) and int(port) <= 65535)


def _authority(auth: str) -> str | None:
    """``host[:port]`` (no userinfo) to a normalised host; ``None`` if bad."""
    if not auth:
        return None
    if auth[0] == "[":
        close = auth.find("]")
        if close < 0:
            return None
        after = auth[close + 1 :]
        if after and (after[0] != ":" or not _valid_port(after[1:])):
            return None
        try:
            return "[" + ipaddress.IPv6Address(auth[1:close]).compressed + "]"
        except ValueError:
            return None
    colon = auth.rfind(":")
    if colon >= 0:
        if not _valid_port(auth[colon + 1 :]):
            return None
        auth = auth[:colon]
    return _norm_host(auth)


def _labels_ok(h: str) -> bool:
    if len(h) <= _MAX_LABEL:
        return True
    return all(len(label) <= _MAX_LABEL for label in h.split("."))


def _norm_host(h: str) -> str | None:
    if "%" in h:
        h = _unquote(h)
    h = h.lower()
    if h.isascii():
        if not _HOST_ASCII.issuperset(h):
            return None
    else:
        h = unicodedata.normalize("NFC", h.translate(_DOTS))
        if not _unicode_ok(h):
            return None
    h = h.rstrip(".")
    if not h or len(h) > _MAX_HOST or h[0] == "." or ".." in h or not _labels_ok(h):
        return None
    if "xn--" in h:
        h = _decode_idna(h)
    return h


def _unicode_ok(h: str) -> bool:
    """Every character may appear in a (lowercased, NFC) host name."""
    for c in h:
        if c.isascii():
            if c not in _HOST_ASCII:
                return False
        elif c == "\ufffd" or not c.isprintable() or c.isspace():
            return False
    return True


def _decode_idna(h: str) -> str:
    labels = h.split(".")
    for i, label in enumerate(labels):
        if label.startswith("xn--"):
            try:
                decoded = label.encode("ascii").decode("idna")
            except Exception:  # invalid punycode: keep the label as written
                continue
            # keep only what reads back unchanged (no unassigned characters)
            if (decoded and "." not in decoded and decoded == decoded.lower()
                    and unicodedata.normalize("NFC", decoded) == decoded and _unicode_ok(decoded)):
                labels[i] = decoded
    return ".".join(labels)


def _parse_query(qs: str, out: dict[str, str]) -> None:
    if not qs:
        return
    for part in qs.split("&"):
        if not part:
            continue
        key, _, value = part.partition("=")
        key = _decode(key, plus=True)
        if not key or key in out:
            continue
        if value:
            value = _decode(value, plus=True)
        out[key] = value
        if len(out) >= MAX_PARAMS:
            return
