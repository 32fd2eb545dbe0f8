"""WSGI middleware: ``app = K50Middleware(app, engine)``.

Each page request gets an assignment (``environ["k50core.assignment"]``, None when the visit
was not tracked or the engine failed; ``environ["k50core.visitor_id"]``); a ``text/html``
response whose length is known (a Content-Length header, or a list / tuple body) is buffered
and its site numbers swapped, Content-Length fixed. Anything else — other types, a
Content-Encoding, a streamed body — passes through untouched.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any
from wsgiref.util import request_uri

from . import ENVIRON_KEY, Tracker, headers_get, headers_without, log, parse_cookies

__all__ = ["K50Middleware"]


class K50Middleware:
    """Wraps a WSGI app; keyword options are ``Tracker``'s."""

    def __init__(self, app: Callable[..., Iterable[bytes]], engine: Any = None, *, tracker: Tracker | None = None,
                 **options: Any) -> None:
        if tracker is None and engine is None:
            raise ValueError("K50Middleware needs an engine (or a tracker)")
        self.app = app
        self.tracker = tracker or Tracker(engine, **options)

    def begin(self, environ: dict) -> list[tuple]:
        """Assign a number for this request into environ; the headers to add to its response."""
        t = self.tracker
        environ.setdefault(ENVIRON_KEY, None)
        try:
            if not t.should_track(environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", ""),
                                  environ.get("HTTP_ACCEPT", "")):
                return []
            cookies = parse_cookies(environ.get("HTTP_COOKIE"))
            vid, new = t.visitor(cookies)
            forwarded = [environ["HTTP_X_FORWARDED_FOR"]] if environ.get("HTTP_X_FORWARDED_FOR") else []
            visit = t.visit(url=request_uri(environ, include_query=True), referrer=environ.get("HTTP_REFERER"),
                            user_agent=environ.get("HTTP_USER_AGENT"),
                            ip=t.client_ip(environ.get("REMOTE_ADDR"), forwarded), cookies=cookies, visitor_id=vid)
        except Exception:  # a malformed environ never breaks the page
            log.exception("k50core: could not read the request")
            return []
        environ["k50core.visitor_id"] = vid
        environ[ENVIRON_KEY] = t.assign(visit)
        https = environ.get("wsgi.url_scheme") == "https"
        return [("Set-Cookie", t.set_cookie_header(vid, https))] if new else []

    def __call__(self, environ: dict, start_response: Callable[..., Any]) -> Iterable[bytes]:
        extra = self.begin(environ)
        assignment = environ.get(ENVIRON_KEY)
        t = self.tracker
        state: dict = {}
        written: list[bytes] = []

        def capture(status: str, headers: list[tuple], exc_info: Any = None) -> Callable[[bytes], None]:
            if exc_info is not None and state.get("sent"):
                raise exc_info[1].with_traceback(exc_info[2])
            state.update(status=status, headers=list(headers), exc_info=exc_info)
            return written.append

        result = self.app(environ, capture)
        iterator: Iterator[bytes] = iter(result)
        first: list[bytes] = []
        try:
            while "status" not in state:  # a generator app calls start_response on its first chunk
                chunk = next(iterator, None)
                if chunk is None:
                    break
                first.append(chunk)
        except BaseException:
            _close(result)
            raise
        if "status" not in state:
            _close(result)
            raise RuntimeError("the WSGI app returned without calling start_response")
        headers = state["headers"]
        content_type = headers_get(headers, "Content-Type")
        length = headers_get(headers, "Content-Length")
        sized = length is not None or isinstance(result, (list, tuple))
        if sized and t.wants_body(content_type, headers_get(headers, "Content-Encoding"), assignment):
            try:
                body = b"".join(written + first + list(iterator))
            finally:
                _close(result)
            new = t.substitute_body(body, content_type, assignment)
            if new is not body:  # (a HEAD answer keeps the length of the body it did not send)
                headers = headers_without(headers, "Content-Length") + [("Content-Length", str(len(new)))]
            state["sent"] = True
            start_response(state["status"], headers + extra, state["exc_info"])
            return [new]
        state["sent"] = True
        write = start_response(state["status"], headers + extra, state["exc_info"])
        for chunk in written:  # the legacy write() callable's output, in order
            write(chunk)
        return _Passthrough(first, iterator, result)


class _Passthrough:
    """The app's body as it came (the chunks already read first), closed as the app's would be."""

    def __init__(self, first: list[bytes], rest: Iterator[bytes], result: Any) -> None:
        self.first, self.rest, self.result = first, rest, result

    def __iter__(self) -> Iterator[bytes]:
        yield from self.first
        yield from self.rest

    def close(self) -> None:
        _close(self.result)


def _close(result: Any) -> None:
    close = getattr(result, "close", None)
    if close is not None:
        close()
