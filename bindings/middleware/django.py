"""Django adapters (Django is imported only here).

settings.py::

    K50CORE = {"ENGINE": engine}          # an Engine, or a dotted path to one (or to a callable giving one)
    MIDDLEWARE = [..., "k50core.bindings.middleware.django.K50Middleware"]
    TEMPLATES = [{..., "OPTIONS": {
        "context_processors": [..., "k50core.bindings.middleware.django.k50core_number"],
        "libraries": {"k50core": "k50core.bindings.middleware.django"}}}]

The middleware assigns a number (``request.k50core_assignment``), sets the ``k50_vid`` cookie
for a new visitor and swaps the site's numbers in HTML responses (not streamed, not
compressed; ``K50CORE["SUBSTITUTE"] = False`` turns that off). The context processor gives
templates ``k50core_number`` (display form or None), ``k50core_tel`` (E.164) and
``k50core_assignment``; ``{% load k50core %}{% k50core_number "+7 (495) 123-45-67" %}`` renders
the assigned number or the given fallback, ``{% k50core_tel "+74951234567" %}`` its E.164 form.
Other ``K50CORE`` keys (``SECURE_COOKIE``, ``TRUSTED_PROXIES``) go to ``Tracker``.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import template
from django.conf import settings
from django.utils.module_loading import import_string

from . import Tracker, log, parse_cookies

__all__ = ["K50Middleware", "k50core_number", "register", "get_assignment"]

register = template.Library()
_trackers: dict[int, Tracker] = {}


def _settings() -> dict[str, Any]:
    return dict(getattr(settings, "K50CORE", {}) or {})


def tracker() -> Tracker:
    """The Tracker over the configured engine (one per engine object)."""
    conf = _settings()
    engine = conf.get("ENGINE")
    if isinstance(engine, str):
        engine = import_string(engine)
    if callable(engine) and not hasattr(engine, "assign"):
        engine = engine()
    if engine is None:
        raise ValueError("settings.K50CORE['ENGINE'] is not set")
    t = _trackers.get(id(engine))
    if t is None or t.engine is not engine:
        t = _trackers[id(engine)] = Tracker(engine, secure_cookie=conf.get("SECURE_COOKIE"),
                                            trusted_proxies=conf.get("TRUSTED_PROXIES", ()))
    return t


def get_assignment(request: Any) -> Any | None:
    """This request's Assignment, assigned on first use (None: not tracked, excluded, engine failed)."""
    if hasattr(request, "k50core_assignment"):
        return request.k50core_assignment
    request.k50core_assignment = None
    try:
        t = tracker()
        if not t.should_track(request.method or "GET", request.path, request.headers.get("Accept", "")):
            return None
        cookies = parse_cookies(request.headers.get("Cookie"))
        vid, new = t.visitor(cookies)
        forwarded = [request.META["HTTP_X_FORWARDED_FOR"]] if request.META.get("HTTP_X_FORWARDED_FOR") else []
        visit = t.visit(url=request.build_absolute_uri(), referrer=request.headers.get("Referer"),
                        user_agent=request.headers.get("User-Agent"),
                        ip=t.client_ip(request.META.get("REMOTE_ADDR"), forwarded), cookies=cookies, visitor_id=vid)
    except Exception:
        log.exception("k50core: could not read the request")
        return None
    request.k50core_visitor_id = vid
    request.k50core_new_visitor = vid if new else None
    request.k50core_assignment = t.assign(visit)
    return request.k50core_assignment


class K50Middleware:
    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        a = get_assignment(request)
        response = self.get_response(request)
        vid = getattr(request, "k50core_new_visitor", None)
        try:
            t = tracker()
        except Exception:
            log.exception("k50core: no engine")
            return response
        if vid:
            secure = request.is_secure() if t.secure_cookie is None else t.secure_cookie
            response.set_cookie("k50_vid", vid, max_age=365 * 24 * 3600, path="/", samesite="Lax", secure=secure)
        if (_settings().get("SUBSTITUTE", True) and not getattr(response, "streaming", False)
                and t.wants_body(response.get("Content-Type"), response.get("Content-Encoding"), a)):
            try:
                body = response.content
                new = t.substitute_body(body, response.get("Content-Type"), a)
                if new is not body:
                    response.content = new
                    if response.has_header("Content-Length"):
                        response["Content-Length"] = str(len(new))
            except Exception:
                log.exception("k50core: substitution failed; the page keeps its own number")
        return response


def k50core_number(request: Any) -> dict[str, Any]:
    """Context processor: ``k50core_number``, ``k50core_tel``, ``k50core_assignment``."""
    a = get_assignment(request)
    number = getattr(a, "number", None)
    return {"k50core_assignment": a, "k50core_number": getattr(a, "display", None) if number else None,
            "k50core_tel": number}


@register.simple_tag(takes_context=True, name="k50core_number")
def number_tag(context: Any, fallback: str = "") -> str:
    """The assigned number's display form, or ``fallback`` (the page's own number)."""
    request = getattr(context, "request", None) or context.get("request")
    a = get_assignment(request) if request is not None else None
    return (getattr(a, "display", None) if getattr(a, "number", None) else None) or fallback


@register.simple_tag(takes_context=True, name="k50core_tel")
def tel_tag(context: Any, fallback: str = "") -> str:
    """The assigned number in E.164 (for ``href="tel:…"``), or ``fallback``."""
    request = getattr(context, "request", None) or context.get("request")
    a = get_assignment(request) if request is not None else None
    return getattr(a, "number", None) or fallback
