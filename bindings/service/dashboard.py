"""The dashboard at ``/dashboard``: calls per day by status, the top sources and campaigns, pool
usage over time with exhaustion and the recommended size, minutes against the plan's package.

Signed in with an API key (a form), it keeps an HttpOnly, SameSite=Strict session cookie: a random
id whose session lives in the store (sessions.py), so signing out ends it in every worker, it
expires after ``IDLE_SECONDS`` unused and at the latest ``SESSION_SECONDS`` after sign-in (the
service's clock), and a key taken out of the service ends its sessions; "sign out everywhere" ends
every session of the key;
the forms carry a CSRF token checked against a cookie of their own (double submit) and any Origin
they come with must be the service's own. The charts are Chart.js, vendored from npm with its
licence (``static/chartjs/``), served from here: no CDN. The page reads the same ``/v1/reports``
and ``/v1/pools/usage`` the API serves, with the session cookie.
"""
from __future__ import annotations

import calendar
import hashlib
import hmac
import html
import secrets
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from k50core.pricing import load_plans
from k50core.report.query import billed_minutes

from .errors import ApiError
from .limits import RateLimiter
from .reports import read_limited
from .sessions import close_session, open_session, session_key

STATIC = Path(__file__).resolve().parent / "static"
SESSION = "k50_dashboard"
CSRF = "k50_csrf"
SESSION_SECONDS = 12 * 3600
IDLE_SECONDS = 30 * 60  # a session nobody used this long ends (a cookie left on a shared machine)
ASSETS = {"app.js": ("dashboard.js", "text/javascript; charset=utf-8"),
          "chart.umd.min.js": ("chartjs/chart.umd.min.js", "text/javascript; charset=utf-8"),
          "chart.js-LICENSE.md": ("chartjs/LICENSE.md", "text/plain; charset=utf-8")}
CSP = ("default-src 'none'; script-src 'self'; connect-src 'self'; img-src 'self' data:; "
       "style-src 'self' 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")


class Dashboard:
    def __init__(self, svc: Any, secret: bytes) -> None:
        self.svc = svc
        self.key = hmac.new(secret, b"k50core dashboard sessions", hashlib.sha256).digest()
        self.logins = RateLimiter(10.0, 5)  # sign-in attempts a minute per address

    # -- the session --------------------------------------------------------------------------
    def _key_id(self, key: bytes) -> str:
        return hmac.new(self.key, b"key:" + key, hashlib.sha256).hexdigest()[:16]

    async def session_ok(self, request: Request) -> bool:
        """Whether the request's session cookie opens a live session (read from the store)."""
        value = request.cookies.get(SESSION)
        if not value:
            return False
        key_ids = {self._key_id(k) for k in self.svc.keys}
        found = await self.svc.store.run(session_key, self.svc.engine.store, value, key_ids, float(self.svc.now()),
                                         SESSION_SECONDS, IDLE_SECONDS)
        return found is not None

    def _secure(self, request: Request) -> bool:
        return self.svc.secure_cookie if self.svc.secure_cookie is not None else request.url.scheme == "https"

    def _same_origin(self, request: Request) -> None:
        origin = request.headers.get("origin")
        own = {f"{request.url.scheme}://{request.url.netloc}"}
        if self.svc.public_url:  # behind a proxy that ends TLS, the browser's origin is the public one
            public = urlsplit(self.svc.public_url)
            own.add(f"{public.scheme}://{public.netloc}".lower())
        if origin is not None and origin not in own:
            raise ApiError(403, "cross-site form refused", [("Origin", "not this service's origin")])

    def _csrf(self, request: Request) -> str:
        return request.cookies.get(CSRF) or secrets.token_urlsafe(24)

    async def _form(self, request: Request) -> dict:
        self._same_origin(request)
        body = await read_limited(request, 4096)
        try:
            form = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=10))
        except (UnicodeDecodeError, ValueError):
            raise ApiError(400, "bad form", [("body", "expected a short UTF-8 form")]) from None
        cookie = request.cookies.get(CSRF, "")
        if not cookie or not hmac.compare_digest(form.get("csrf", "").encode(), cookie.encode()):
            raise ApiError(403, "the form's CSRF token does not match", [("csrf", "reload the page and retry")])
        return form

    # -- pages --------------------------------------------------------------------------------
    def _page(self, request: Request, body: str, status: int = 200) -> Response:
        token = self._csrf(request)
        page = PAGE.replace("{body}", body).replace("{csrf}", html.escape(token))
        response = HTMLResponse(page, status_code=status, headers={
            "Content-Security-Policy": CSP, "X-Frame-Options": "DENY", "Cache-Control": "no-store",
            "Referrer-Policy": "same-origin", "X-Content-Type-Options": "nosniff"})
        response.set_cookie(CSRF, token, max_age=SESSION_SECONDS, httponly=True, samesite="strict",
                            secure=self._secure(request), path="/dashboard")
        return response

    async def index(self, request: Request) -> Response:
        if not await self.session_ok(request):
            return self._page(request, LOGIN.replace("{error}", ""))
        return self._page(request, BOARD)

    async def login(self, request: Request) -> Response:
        peer = request.client.host if request.client else None  # the client behind trusted proxies:
        client = self.svc.client_ip(peer, request.headers.getlist("x-forwarded-for")) or "?"  # not all as one
        if not self.logins.allow(client, time.time()):
            raise ApiError(429, "too many sign-in attempts; wait a minute", headers={"Retry-After": "60"})
        form = await self._form(request)
        given = form.get("key", "").encode("utf-8", "surrogateescape")
        match = None
        for k in self.svc.keys:  # every key compared, in constant time each
            if hmac.compare_digest(given, k):
                match = k
        if not given or match is None:
            return self._page(request, LOGIN.replace("{error}", '<p class="error">Not a valid API key.</p>'), 401)
        value = await self.svc.store.run(open_session, self.svc.engine.store, self._key_id(match),
                                         float(self.svc.now()), SESSION_SECONDS, IDLE_SECONDS)
        response = RedirectResponse("/dashboard", status_code=303)
        response.set_cookie(SESSION, value, max_age=SESSION_SECONDS, httponly=True,
                            samesite="strict", secure=self._secure(request), path="/")
        return response

    async def logout(self, request: Request) -> Response:
        """Ends the session in the store (every worker), or with ``everywhere`` every session of its key."""
        form = await self._form(request)
        await self.svc.store.run(close_session, self.svc.engine.store, request.cookies.get(SESSION),
                                 form.get("everywhere") == "1")
        response = RedirectResponse("/dashboard", status_code=303)
        response.delete_cookie(SESSION, path="/")
        return response

    async def plan(self, request: Request) -> Response:
        """The plan's minutes package and this month's billed minutes (for the minutes chart)."""
        if not await self.session_ok(request):
            self.svc.authorise(request)
        engine = self.svc.engine
        settings = engine.config.reports
        plans = load_plans(settings.get("plans_file"))
        package = settings.get("package")
        included = plans.provider.minutes_included
        if package in plans.provider.prepaid_packages:
            included = plans.provider.prepaid_packages[package].minutes
        now = float(self.svc.now())
        month = time.gmtime(now)
        since = float(calendar.timegm((month.tm_year, month.tm_mon, 1, 0, 0, 0)))  # the month so far (UTC)
        rows = await self.svc.store.run(engine.store.calls, since, float("inf"))
        used = sum(billed_minutes(float(r["duration_seconds"]), r["answered"]) for r in rows)
        return JSONResponse({"plan": settings.get("plan", "provider"), "package": package,
                             "minutes_included": included, "minutes_this_month": used, "month_since": since,
                             "currency": plans.currency})

    async def asset(self, request: Request) -> Response:
        name = request.path_params["name"]
        found = ASSETS.get(name)
        if found is None:
            raise ApiError(404, "not found")
        return Response((STATIC / found[0]).read_bytes(), media_type=found[1], headers={
            "Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"})


def dashboard_routes(svc: Any, route: Callable[..., Route], secret: bytes
                     ) -> tuple[list[Route], Callable[[Request], Awaitable[bool]]]:
    """(routes, session check) of the dashboard."""
    d = Dashboard(svc, secret)
    routes: list[Route] = [route("/dashboard", d.index, ["GET"]), route("/dashboard/login", d.login, ["POST"]),
                           route("/dashboard/logout", d.logout, ["POST"]), route("/dashboard/plan", d.plan, ["GET"]),
                           route("/dashboard/static/{name}", d.asset, ["GET"])]
    return routes, d.session_ok


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>k50core dashboard</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
header{background:#1d2330;color:#fff;padding:10px 20px;display:flex;justify-content:space-between;align-items:center}
header form{margin:0}
main{padding:16px 20px;display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:16px}
section{background:#fff;border-radius:8px;padding:12px 16px;box-shadow:0 1px 2px #0002}
h2{font-size:15px;margin:0 0 8px} table{border-collapse:collapse;width:100%} td,th{padding:3px 6px;text-align:right}
td:first-child,th:first-child,td:nth-child(2),th:nth-child(2){text-align:left} tr:nth-child(even){background:#f3f4f6}
.error{color:#b00020} .login{max-width:360px;margin:80px auto;background:#fff;padding:24px;border-radius:8px}
input{width:100%;padding:6px;margin:6px 0 12px;box-sizing:border-box} .note{color:#667;font-size:12px}
canvas{max-height:300px}
</style></head><body>{body}</body></html>"""

LOGIN = """<div class="login"><h2>k50core dashboard</h2>{error}
<form method="post" action="/dashboard/login"><input type="hidden" name="csrf" value="{csrf}">
<label>API key<input type="password" name="key" autocomplete="current-password" required autofocus></label>
<button type="submit">Sign in</button></form></div>"""

BOARD = """<header><b>k50core</b><span id="period" class="note"></span>
<form method="post" action="/dashboard/logout"><input type="hidden" name="csrf" value="{csrf}">
<label class="note"><input type="checkbox" name="everywhere" value="1" style="width:auto;margin:0 4px">
everywhere</label> <button type="submit">Sign out</button></form></header>
<main>
<section><h2>Calls per day, by status</h2><canvas id="calls-per-day"></canvas></section>
<section><h2>Minutes this month against the plan's package</h2><canvas id="minutes"></canvas>
<p id="minutes-note" class="note"></p></section>
<section><h2>Top sources and campaigns</h2><canvas id="top-sources"></canvas>
<table id="top-table"><thead><tr><th>source</th><th>campaign</th><th>visits</th><th>calls</th><th>conversion</th>
<th>deals</th><th>revenue</th><th>cost per call</th></tr></thead><tbody></tbody></table></section>
<section><h2>Pool usage</h2><div id="pools"></div></section>
</main>
<script src="/dashboard/static/chart.umd.min.js"></script>
<script src="/dashboard/static/app.js"></script>"""
