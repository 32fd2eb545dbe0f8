"""Flask extension: ``K50Flask(app, engine)`` or ``ext = K50Flask(engine=engine); ext.init_app(app)``.

Before each page request the visitor gets an assignment (``flask.g.k50core_assignment``; reused
from ``environ["k50core.assignment"]`` when the WSGI middleware already ran). Templates get
``k50core_assignment``, ``k50core_number`` (the display form, or None) and ``k50core_tel`` (E.164,
for ``href="tel:…"``), so a page can render the number directly. With ``substitute=True`` (the
default) HTML responses that are not streamed or compressed also get the site's numbers swapped.
"""
from __future__ import annotations

from typing import Any

from flask import Flask, Response, g, request

from . import ENVIRON_KEY, Tracker, log, parse_cookies

__all__ = ["K50Flask", "current_assignment"]


def current_assignment() -> Any | None:
    """This request's Assignment (None: not tracked, excluded or the engine failed)."""
    return g.get("k50core_assignment")


class K50Flask:
    def __init__(self, app: Flask | None = None, engine: Any = None, *, substitute: bool = True,
                 tracker: Tracker | None = None, **options: Any) -> None:
        self.engine, self.substitute, self.options = engine, substitute, options
        self.tracker = tracker
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        if self.tracker is None:
            engine = self.engine if self.engine is not None else app.config.get("K50CORE_ENGINE")
            if engine is None:
                raise ValueError("K50Flask needs an engine (argument or app.config['K50CORE_ENGINE'])")
            self.tracker = Tracker(engine, **self.options)
        app.extensions["k50core"] = self
        app.before_request(self._before)
        app.after_request(self._after)
        app.context_processor(self._context)

    def _before(self) -> None:
        g.k50core_assignment, g.k50core_new_visitor = None, None
        environ = request.environ
        if ENVIRON_KEY in environ:  # the WSGI middleware already assigned (and sets the cookie)
            g.k50core_assignment = environ[ENVIRON_KEY]
            return
        t = self.tracker
        assert t is not None
        try:
            if not t.should_track(request.method, request.path, request.headers.get("Accept", "")):
                return
            cookies = parse_cookies(request.headers.get("Cookie"))
            vid, new = t.visitor(cookies)
            visit = t.visit(url=request.url, referrer=request.referrer, user_agent=request.headers.get("User-Agent"),
                            ip=t.client_ip(request.remote_addr, request.headers.getlist("X-Forwarded-For")),
                            cookies=cookies, visitor_id=vid)
        except Exception:
            log.exception("k50core: could not read the request")
            return
        g.k50core_visitor_id = vid
        g.k50core_new_visitor = vid if new else None
        g.k50core_assignment = t.assign(visit)

    def _context(self) -> dict[str, Any]:
        a = g.get("k50core_assignment")
        number = getattr(a, "number", None)
        return {"k50core_assignment": a, "k50core_number": getattr(a, "display", None) if number else None,
                "k50core_tel": number}

    def _after(self, response: Response) -> Response:
        t = self.tracker
        assert t is not None
        vid = g.get("k50core_new_visitor")
        if vid:
            response.headers.add("Set-Cookie", t.set_cookie_header(vid, request.is_secure))
        a = g.get("k50core_assignment")
        if (self.substitute and not response.is_streamed and not response.direct_passthrough
                and t.wants_body(response.headers.get("Content-Type"), response.headers.get("Content-Encoding"), a)):
            try:
                body = response.get_data()
                new = t.substitute_body(body, response.headers.get("Content-Type"), a)
                if new is not body:
                    response.set_data(new)  # fixes Content-Length
            except Exception:
                log.exception("k50core: substitution failed; the page keeps its own number")
        return response
