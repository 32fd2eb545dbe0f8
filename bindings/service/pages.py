"""What the service serves to browsers: the tracking snippet (``GET /snippet.js``) and, with
``--demo``, a demo site (``GET /``) whose page carries the snippet and the site's phone number.

The snippet is ``bindings/snippet/k50.js`` (installed as ``k50core/bindings/snippet/k50.js``);
its ETag carries the snippet's version and a hash of its text, so a new release is fetched
again once the short ``max-age`` ran out, and an unchanged one is answered ``304``.
"""
from __future__ import annotations

import gzip
import hashlib
import html
import re
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

SNIPPET_PATH = Path(__file__).resolve().parent.parent / "snippet" / "k50.js"
JS_TYPE = "text/javascript; charset=utf-8"  # RFC 9239
MAX_AGE = 3600  # seconds a browser may keep the snippet without asking again


class Snippet:
    """The snippet's bytes (and gzipped, for browsers that take it), version and ETag, read once."""

    def __init__(self, path: Path = SNIPPET_PATH) -> None:
        self.body = path.read_bytes()
        self.gzipped = gzip.compress(self.body, compresslevel=9, mtime=0)  # readable source, small on the wire
        found = re.search(rb'VERSION = "([^"]+)"', self.body)
        self.version = found.group(1).decode("ascii") if found else "0"
        self.etag = f'"k50-{self.version}-{hashlib.sha256(self.body).hexdigest()[:16]}"'

    async def endpoint(self, request: Request) -> Response:
        headers = {"ETag": self.etag, "Cache-Control": f"public, max-age={MAX_AGE}",
                   "X-K50-Snippet-Version": self.version, "X-Content-Type-Options": "nosniff",
                   "Access-Control-Allow-Origin": "*",  # public code: any site may load it
                   "Vary": "Accept-Encoding"}
        asked = request.headers.get("if-none-match", "")
        if any(tag.strip().removeprefix("W/") == self.etag for tag in asked.split(",")) or asked.strip() == "*":
            return Response(status_code=304, headers=headers)
        full = self.body
        if _takes_gzip(request.headers.get("accept-encoding", "")):
            full = self.gzipped
            headers["Content-Encoding"] = "gzip"
        response = Response(b"" if request.method == "HEAD" else full, media_type=JS_TYPE, headers=headers)
        if request.method == "HEAD":
            response.headers["Content-Length"] = str(len(full))
        return response


def _takes_gzip(accepted: str) -> bool:
    """Whether an Accept-Encoding header admits gzip (``gzip;q=0`` refuses it)."""
    for part in accepted.lower().split(","):
        name, _, params = part.strip().partition(";")
        if name.strip() in ("gzip", "*"):
            q = params.strip()
            return not (q.startswith("q=") and q[2:].strip() in ("0", "0.0", "0.00", "0.000"))
    return False


def _grouped(digits: str) -> str:
    """'74951234567' -> '8 495 123 45 67' (the other usual Russian way of writing it)."""
    return f"8 {digits[1:4]} {digits[4:7]} {digits[7:9]} {digits[9:11]}"


def demo_page(site_number: str | None, display: str | None, endpoint: str,
              heartbeat: int | None = None) -> str:
    """The demo site's page: the site's number in text (two forms, and split across two elements),
    in a tel: link, and once inside a ``data-k50-noswap`` element that the snippet must leave alone."""
    number = site_number or ""
    shown = html.escape(display or number)
    digits = re.sub(r"\D", "", number)
    other = html.escape(_grouped(digits)) if len(digits) == 11 else shown
    # a number written in pieces, as sites often do: the snippet swaps each piece in its element
    split = (f"<span>{html.escape(shown[:-10])}</span> <b>{html.escape(shown[-9:])}</b>"
             if re.fullmatch(r"\+7 \(\d{3}\) \d{3}-\d\d-\d\d", shown) else shown)
    beat = f' data-heartbeat="{int(heartbeat)}"' if heartbeat else ""
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>k50core demo shop</title>
<style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem}}
.phone{{font-size:1.5rem;font-weight:600}}.note{{color:#666}}</style>
</head>
<body>
<h1>Demo shop</h1>
<p>Call us: <span class="phone" id="phone">{shown}</span></p>
<p>Or tap: <a id="tel" href="tel:{html.escape(number)}">{shown}</a></p>
<p>Orders by phone {other}, every day.</p>
<p>Sales: <span id="split">{split}</span></p>
<p class="note" id="noswap" data-k50-noswap>Head office (never swapped): {shown}</p>
<p class="note">This page carries the k50core snippet: it asks <code>/v1/visit</code> for a tracking
number and writes it over the site's number above. Try
<a href="/?utm_source=yandex&amp;utm_medium=cpc&amp;utm_campaign=spring_sale">an ad campaign's link</a>
(the demo config gives it a dynamic number). <code>K50.number()</code> in the console shows it.</p>
<script src="/snippet.js" data-endpoint="{html.escape(endpoint)}"
        data-site-number="{html.escape(number)}"{beat} async></script>
</body>
</html>
"""


def page_routes(engine: Any, demo: bool = False, snippet: Snippet | None = None,
                heartbeat: int | None = None) -> list[Route]:
    """``/snippet.js`` always; ``/`` (the demo page) when ``demo`` is on. ``heartbeat`` sets the
    demo page's seconds between heartbeats (default: the snippet's own)."""
    snip = snippet or Snippet()
    routes = [Route("/snippet.js", snip.endpoint, methods=["GET", "HEAD"])]
    if demo:
        cfg = engine.config
        site = getattr(cfg, "default_number", None)
        shown = None
        if site:
            try:
                from k50core.config.phones import display
                shown = display(site, getattr(cfg, "display", "ru"))
            except Exception:  # an unusual number: shown as configured
                shown = site

        async def index(request: Request) -> Response:
            endpoint = str(request.base_url).rstrip("/")
            beat = heartbeat
            asked = request.query_params.get("k50_heartbeat")  # for trying the heartbeat out quickly
            if asked and asked.isdigit() and 0 < int(asked) <= 3600:
                beat = int(asked)
            return HTMLResponse(demo_page(site, shown, endpoint, beat),
                                headers={"Cache-Control": "no-store"})
        routes.append(Route("/", index, methods=["GET"]))
    return routes
