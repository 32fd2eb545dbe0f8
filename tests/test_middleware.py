"""Host adapters (server-side substitution) with the real frameworks: a plain WSGI app (through
werkzeug's test client), a Starlette app (ASGI), Flask with the extension, Django with the
middleware, context processor and template tags; and properties of the substitution itself."""
from __future__ import annotations

import gzip
import json
import re

import pytest
from drain_support import CC, COUNTRIES, WORLD_NUMBERS
from hypothesis import HealthCheck, assume, given, settings as hsettings, strategies as st

from k50core import Engine
from k50core.bindings import middleware as mw
from k50core.bindings.middleware.asgi import K50ASGIMiddleware
from k50core.bindings.middleware.substitute import Substituter
from k50core.bindings.middleware.wsgi import K50Middleware

MW = mw.__name__  # the dotted name the middleware package is importable under here
SITE_NUMBER = "+74951234567"
POOL = [f"+749500000{i:02d}" for i in range(1, 6)]
CONFIG = {
    "site": {"default_number": "+7 (495) 123-45-67"},
    "pools": {"msk": {"type": "dynamic", "numbers": POOL, "default_number": "+78120000010",
                      "on_exhausted": "share"}},
    "rules": [{"name": "office", "when": {"query.office": "1"}, "exclude": True},
              {"name": "ads", "when": {"query.utm_source": "yandex"}, "pool": "msk"}],
    "bots": {"exclude": False},
}
PAGE = ("<html><head><title>Shop</title></head><body>\n"
        "<p>Call us: +7 (495) 123-45-67, in St Petersburg 8 (812) 000-00-10</p>\n"
        '<a class="phone" href="tel:84951234567">8 495 123 45 67</a>\n'
        "<div data-k50-noswap>Office: +7 (495) 123-45-67 <b>84951234567</b></div>\n"
        "</body></html>")
URL = "/landing?utm_source=yandex&utm_campaign=spring"


@pytest.fixture
def engine(tmp_path):
    e = Engine.from_config(CONFIG, store=str(tmp_path / "k50.db"))
    yield e
    e.close()


class BrokenEngine:
    """An engine whose assign fails: the page must come through intact."""

    def __init__(self, engine):
        self.config = engine.config

    def assign(self, *a, **kw):
        raise RuntimeError("engine down")


def written(number: str) -> dict:
    """The forms the test page writes, for ``number`` (E.164, +7 and a ten-digit national number)."""
    n = number[2:]
    return {"text": f"Call us: +7 ({n[:3]}) {n[3:6]}-{n[6:8]}-{n[8:]}",
            "spb": f"8 ({n[:3]}) {n[3:6]}-{n[6:8]}-{n[8:]}</p>",
            "tel": f'href="tel:8{n}"', "link": f">8 {n[:3]} {n[3:6]} {n[6:8]} {n[8:]}</a>"}


def assert_swapped(html: str, number: str) -> None:
    assert number in POOL
    for form in written(number).values():
        assert form in html, (form, html)
    assert "Office: +7 (495) 123-45-67 <b>84951234567</b>" in html  # data-k50-noswap kept
    assert "Call us: +7 (495) 123-45-67" not in html


def assert_cookie(set_cookie: str) -> str:
    m = re.search(r"k50_vid=([A-Za-z0-9_-]+)", set_cookie)
    assert m, set_cookie
    low = set_cookie.lower()
    assert "max-age=31536000" in low and "samesite=lax" in low and "path=/" in low
    return m.group(1)


# -- the substitution ---------------------------------------------------------------------------
SUB = Substituter([SITE_NUMBER, "+78120000010"])


@pytest.mark.parametrize("page, expected", [
    ("+7 (495) 123-45-67", "+7 (495) 000-00-01"),
    ("8 495 123 45 67", "8 495 000 00 01"),
    ("8 (495) 123-45-67", "8 (495) 000-00-01"),
    ("84951234567", "84950000001"),
    ("+74951234567", "+74950000001"),
    ("+7-495-123-45-67.", "+7-495-000-00-01."),
    ("8&nbsp;495&nbsp;123-45-67", "8&nbsp;495&nbsp;000-00-01"),
    ("tel 184951234567 is another number", "tel 184951234567 is another number"),
    ("+7 (495) 123-45-678", "+7 (495) 123-45-678"),
    ("+7 (495) 123-45-66", "+7 (495) 123-45-66"),
])
def test_text_forms(page, expected):
    assert SUB.text(page, "+74950000001") == expected


def test_html_links_noswap_and_raw_text():
    html = ('<a href="tel:+7 (495) 123-45-67" title="+74951234567">+7 (495) 123-45-67</a>'
            "<script>var phone = '+74951234567';</script><!-- +74951234567 -->"
            "<section data-k50-noswap><p><br>+74951234567</p><img src=x></section>+74951234567"
            "<a href='tel:84951234567' data-k50-noswap>84951234567</a>")
    out = SUB.html(html, "+74950000002")
    assert out == ('<a href="tel:+7 (495) 000-00-02" title="+74951234567">+7 (495) 000-00-02</a>'
                   "<script>var phone = '+74951234567';</script><!-- +74951234567 -->"
                   "<section data-k50-noswap><p><br>+74951234567</p><img src=x></section>+74950000002"
                   "<a href='tel:84951234567' data-k50-noswap>84951234567</a>")


def test_other_country_or_length_gets_the_numbers_own_format():
    out = SUB.html('<a href="tel:84951234567">8 (495) 123-45-67</a> +7 495 123 45 67', "+12025550123")
    assert out == '<a href="tel:+12025550123">(202) 555-0123</a> +1 202-555-0123'


@pytest.mark.parametrize("country", list(COUNTRIES))
def test_any_countrys_forms_keep_their_format(country):
    """Server-side, the written forms the snippet swaps in Chromium (tests/test_snippet.py): US, UK,
    DE (030/…, and a national number of another length), FR, KZ, BY (8 0xx), UA (+38 0xx)."""
    region, site, forms = COUNTRIES[country]
    sub = Substituter([n.strip() for n in site.split(",")], region=region)
    for number in WORLD_NUMBERS[country]:
        n = number[1 + len(CC[country]):]
        for written, becomes in forms:
            assert sub.text(written, number) == becomes(n), written
            assert sub.html(f'<a href="tel:{written}">{written}</a>', number) == \
                f'<a href="tel:{becomes(n)}">{becomes(n)}</a>'   # a tel: link too, in its own form


def test_site_numbers_from_config(engine):
    assert mw.site_numbers(engine.config) == [SITE_NUMBER, "+78120000010"]


_PIECES = st.sampled_from(list("0123456789 +-()<>/=\"'&;#abc:\n") + [
    "tel:", "&nbsp;", '<a href="', "<p>", "</p>", "8 495 ", "123", "45-67", "+7 (495) ", "<div data-k50-noswap>",
    "<script>", "</script>", "84951234568", "+7 (812) 123-45-67"])
_TEXT = st.lists(_PIECES, max_size=30).map("".join) | st.text(max_size=60)


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


@hsettings(max_examples=400, suppress_health_check=[HealthCheck.filter_too_much])
@given(_TEXT)
def test_text_without_a_site_number_is_never_changed(text):
    digits = _digits(text)
    assume("4951234567" not in digits and "8120000010" not in digits)
    assert SUB.text(text, "+74950000003") == text
    assert SUB.html(text, "+74950000003") == text


@hsettings(max_examples=200)
@given(_TEXT, _TEXT)
def test_a_site_number_between_other_text_is_swapped_and_nothing_else(before, after):
    assume("4951234567" not in _digits(before + after) and "8120000010" not in _digits(before + after))
    before, after = before + " ", " " + after
    assert SUB.text(before + "+7 (495) 123-45-67" + after, "+74950000003") == before + "+7 (495) 000-00-03" + after


# -- WSGI -------------------------------------------------------------------------------------------
def wsgi_app(environ, start_response):
    """A plain WSGI app: pages by path; the assignment it was given in a header."""
    a = environ.get("k50core.assignment")
    path = environ["PATH_INFO"]
    headers = [("X-Number", a.number if a is not None and a.number else "-")]
    if path == "/api":
        body = json.dumps({"phone": SITE_NUMBER, "display": "+7 (495) 123-45-67"}).encode()
        start_response("200 OK", headers + [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]
    if path == "/gzip":
        body = gzip.compress(PAGE.encode())
        start_response("200 OK", headers + [("Content-Type", "text/html; charset=utf-8"), ("Content-Encoding", "gzip"),
                                            ("Content-Length", str(len(body)))])
        return [body]
    if path == "/stream":
        def gen():
            start_response("200 OK", headers + [("Content-Type", "text/html")])
            yield PAGE[:40].encode()
            yield PAGE[40:].encode()
        return gen()
    body = PAGE.encode()
    start_response("200 OK", headers + [("Content-Type", "text/html; charset=utf-8"),
                                        ("Content-Length", str(len(body)))])
    return [body]


@pytest.fixture
def wsgi_client(engine):
    from werkzeug.test import Client
    return Client(K50Middleware(wsgi_app, engine, now=lambda: 1_700_000_000.0))


def test_wsgi_swaps_and_keeps_the_visitor(wsgi_client):
    r = wsgi_client.get(URL)
    number = r.headers["X-Number"]
    html = r.get_data(as_text=True)
    assert_swapped(html, number)
    assert int(r.headers["Content-Length"]) == len(r.get_data())
    vid = assert_cookie(r.headers["Set-Cookie"])
    r2 = wsgi_client.get(URL)
    assert r2.headers["X-Number"] == number and "Set-Cookie" not in r2.headers
    assert_swapped(r2.get_data(as_text=True), number)
    assert wsgi_client.get_cookie("k50_vid").value == vid


def test_wsgi_passes_json_gzip_and_streams_through(wsgi_client):
    r = wsgi_client.get("/api?utm_source=yandex")
    assert r.headers["X-Number"] in POOL
    assert json.loads(r.get_data()) == {"phone": SITE_NUMBER, "display": "+7 (495) 123-45-67"}
    r = wsgi_client.get("/gzip?utm_source=yandex")
    assert r.headers["Content-Encoding"] == "gzip" and gzip.decompress(r.get_data()) == PAGE.encode()
    r = wsgi_client.get("/stream?utm_source=yandex")
    assert r.get_data(as_text=True) == PAGE


def test_wsgi_excluded_visit_and_xhr_keep_the_page(wsgi_client):
    r = wsgi_client.get("/?utm_source=yandex&office=1")
    assert r.headers["X-Number"] == "-" and r.get_data(as_text=True) == PAGE
    r = wsgi_client.get(URL, headers={"Accept": "application/json"})  # not a page request: no number taken
    assert r.headers["X-Number"] == "-" and r.get_data(as_text=True) == PAGE


def test_wsgi_broken_engine_leaves_the_page(engine, caplog):
    from werkzeug.test import Client
    client = Client(K50Middleware(wsgi_app, BrokenEngine(engine)))
    r = client.get(URL)
    assert r.status_code == 200 and r.get_data(as_text=True) == PAGE and r.headers["X-Number"] == "-"
    assert "engine.assign failed" in caplog.text


# -- ASGI (Starlette) ---------------------------------------------------------------------------------
def starlette_app(engine):
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
    from starlette.routing import Route

    def num(request):
        a = request.state.k50core_assignment
        return {"X-Number": a.number if a is not None and a.number else "-"}

    async def page(request):
        return HTMLResponse(PAGE, headers=num(request))

    async def api(request):
        return JSONResponse({"phone": SITE_NUMBER}, headers=num(request))

    async def gz(request):
        return Response(gzip.compress(PAGE.encode()), media_type="text/html",
                        headers=dict(num(request), **{"Content-Encoding": "gzip"}))

    async def stream(request):
        async def gen():
            yield PAGE[:40]
            yield PAGE[40:]
        return StreamingResponse(gen(), media_type="text/html", headers=num(request))

    app = Starlette(routes=[Route("/landing", page), Route("/", page), Route("/api", api), Route("/gzip", gz),
                            Route("/stream", stream)])
    return K50ASGIMiddleware(app, engine)


def test_asgi_swaps_and_keeps_the_visitor(engine):
    from starlette.testclient import TestClient
    with TestClient(starlette_app(engine)) as client:
        r = client.get(URL)
        number = r.headers["x-number"]
        assert_swapped(r.text, number)
        assert int(r.headers["content-length"]) == len(r.content)
        vid = assert_cookie(r.headers["set-cookie"])
        r2 = client.get(URL)
        assert r2.headers["x-number"] == number and "set-cookie" not in r2.headers
        assert_swapped(r2.text, number)
        assert client.cookies["k50_vid"] == vid


def test_asgi_passes_json_gzip_and_streams_through(engine):
    from starlette.testclient import TestClient
    with TestClient(starlette_app(engine)) as client:
        r = client.get("/api?utm_source=yandex")
        assert r.headers["x-number"] in POOL and r.json() == {"phone": SITE_NUMBER}
        r = client.get("/gzip?utm_source=yandex")
        assert r.headers["content-encoding"] == "gzip" and r.text == PAGE  # httpx decompressed: untouched
        r = client.get("/stream?utm_source=yandex")
        assert r.headers["x-number"] in POOL and r.text == PAGE
    with TestClient(starlette_app(engine)) as client:  # a new visitor (a returning one keeps the number)
        r = client.get("/?utm_source=yandex&office=1")
        assert r.headers["x-number"] == "-" and r.text == PAGE


def test_asgi_broken_engine_leaves_the_page(engine, caplog):
    from starlette.testclient import TestClient
    with TestClient(starlette_app(BrokenEngine(engine))) as client:
        r = client.get(URL)
        assert r.status_code == 200 and r.text == PAGE and r.headers["x-number"] == "-"
    assert "engine.assign failed" in caplog.text


# -- Flask ----------------------------------------------------------------------------------------------
FLASK_TEMPLATE = PAGE.replace("</body>", '<span id="own">{{ k50core_number or "none" }}|{{ k50core_tel or "" }}</span>'
                                         "</body>")


def flask_app(engine, **options):
    import flask

    from k50core.bindings.middleware.flask import K50Flask, current_assignment

    app = flask.Flask(__name__)
    K50Flask(app, engine, **options)

    def num():
        a = current_assignment()
        return {"X-Number": a.number if a is not None and a.number else "-"}

    @app.get("/landing")
    @app.get("/")
    def page():
        return flask.render_template_string(FLASK_TEMPLATE), num()

    @app.get("/api")
    def api():
        return flask.jsonify(phone=SITE_NUMBER), num()

    @app.get("/gzip")
    def gz():
        return flask.Response(gzip.compress(PAGE.encode()), content_type="text/html",
                              headers=dict(num(), **{"Content-Encoding": "gzip"}))

    @app.get("/stream")
    def stream():
        return flask.Response(flask.stream_with_context(iter([PAGE[:40], PAGE[40:]])), content_type="text/html",
                              headers=num())
    return app


def test_flask_swaps_renders_and_keeps_the_visitor(engine):
    client = flask_app(engine).test_client()
    r = client.get(URL)
    number = r.headers["X-Number"]
    html = r.get_data(as_text=True)
    assert_swapped(html, number)
    n = number[2:]
    assert f'<span id="own">+7 ({n[:3]}) {n[3:6]}-{n[6:8]}-{n[8:]}|{number}</span>' in html  # rendered directly
    assert int(r.headers["Content-Length"]) == len(r.get_data())
    vid = assert_cookie(r.headers["Set-Cookie"])
    r2 = client.get(URL)
    assert r2.headers["X-Number"] == number and "Set-Cookie" not in r2.headers
    assert client.get_cookie("k50_vid").value == vid


def test_flask_passes_json_gzip_streams_and_exclusions_through(engine):
    client = flask_app(engine).test_client()
    r = client.get("/api?utm_source=yandex")
    assert r.headers["X-Number"] in POOL and r.get_json() == {"phone": SITE_NUMBER}
    r = client.get("/gzip?utm_source=yandex")
    assert r.headers["Content-Encoding"] == "gzip" and gzip.decompress(r.get_data()) == PAGE.encode()
    r = client.get("/stream?utm_source=yandex")
    assert r.get_data(as_text=True) == PAGE
    r = flask_app(engine).test_client().get("/?utm_source=yandex&office=1")
    assert r.headers["X-Number"] == "-" and 'id="own">none|<' in r.get_data(as_text=True)
    assert "Call us: +7 (495) 123-45-67" in r.get_data(as_text=True)


def test_flask_broken_engine_leaves_the_page(engine, caplog):
    r = flask_app(BrokenEngine(engine)).test_client().get(URL)
    assert r.status_code == 200 and r.headers["X-Number"] == "-"
    assert r.get_data(as_text=True) == FLASK_TEMPLATE.replace("{{ k50core_number or \"none\" }}|{{ k50core_tel or \"\" }}",
                                                              "none|")
    assert "engine.assign failed" in caplog.text


def test_flask_behind_the_wsgi_middleware_shares_one_assignment(engine):
    app = flask_app(engine, substitute=False)
    app.wsgi_app = K50Middleware(app.wsgi_app, engine)
    r = app.test_client().get(URL)
    number = r.headers["X-Number"]
    assert_swapped(r.get_data(as_text=True), number)
    assert r.headers.getlist("Set-Cookie").__len__() == 1


# -- Django ----------------------------------------------------------------------------------------------
DJANGO_TEMPLATE = PAGE.replace("</body>", '{% load k50core %}<span id="own">{{ k50core_number|default:"none" }}|'
                                          '{% k50core_number "fallback" %}|{% k50core_tel "+74951234567" %}</span>'
                                          "</body>")


def _django_views():
    from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
    from django.template import engines

    def num(request):
        a = getattr(request, "k50core_assignment", None)
        return a.number if a is not None and a.number else "-"

    def page(request):
        html = engines["django"].from_string(DJANGO_TEMPLATE).render({}, request)
        return HttpResponse(html, headers={"X-Number": num(request)})

    def api(request):
        return JsonResponse({"phone": SITE_NUMBER}, headers={"X-Number": num(request)})

    def gz(request):
        return HttpResponse(gzip.compress(PAGE.encode()), content_type="text/html",
                            headers={"Content-Encoding": "gzip", "X-Number": num(request)})

    def stream(request):
        return StreamingHttpResponse(iter([PAGE[:40], PAGE[40:]]), content_type="text/html")
    return page, api, gz, stream


urlpatterns: list = []


@pytest.fixture
def django_client(engine):
    import django
    from django.conf import settings
    if not settings.configured:
        settings.configure(
            DEBUG=False, SECRET_KEY="test", ROOT_URLCONF=__name__, ALLOWED_HOSTS=["*"], USE_TZ=True,
            INSTALLED_APPS=[], DATABASES={},
            MIDDLEWARE=[f"{MW}.django.K50Middleware"],
            TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates", "DIRS": [], "OPTIONS": {
                "context_processors": [f"{MW}.django.k50core_number"],
                "libraries": {"k50core": f"{MW}.django"}}}])
        django.setup()
    from django.test import Client, override_settings
    from django.urls import path
    page, api, gz, stream = _django_views()
    urlpatterns[:] = [path("", page), path("landing", page), path("api", api), path("gzip", gz),
                      path("stream", stream)]
    with override_settings(K50CORE={"ENGINE": engine}):
        yield Client()


def test_django_swaps_renders_and_keeps_the_visitor(django_client):
    r = django_client.get(URL)
    number = r.headers["X-Number"]
    html = r.content.decode()
    assert_swapped(html, number)
    n = number[2:]
    shown = f"+7 ({n[:3]}) {n[3:6]}-{n[6:8]}-{n[8:]}"
    assert f'<span id="own">{shown}|{shown}|{number}</span>' in html  # context processor and tags
    vid = assert_cookie(r.cookies["k50_vid"].output())
    r2 = django_client.get(URL)
    assert r2.headers["X-Number"] == number and "k50_vid" not in r2.cookies
    assert django_client.cookies["k50_vid"].value == vid


def test_django_passes_json_gzip_streams_and_exclusions_through(django_client, engine):
    r = django_client.get("/api?utm_source=yandex")
    assert r.headers["X-Number"] in POOL and r.json() == {"phone": SITE_NUMBER}
    r = django_client.get("/gzip?utm_source=yandex")
    assert r.headers["Content-Encoding"] == "gzip" and gzip.decompress(r.content) == PAGE.encode()
    r = django_client.get("/stream?utm_source=yandex")
    assert b"".join(r.streaming_content).decode() == PAGE
    from django.test import Client
    r = Client().get("/?utm_source=yandex&office=1")
    assert r.headers["X-Number"] == "-"
    assert '<span id="own">none|fallback|+74951234567</span>' in r.content.decode()
    assert "Call us: +7 (495) 123-45-67" in r.content.decode()


def test_django_broken_engine_leaves_the_page(django_client, engine, caplog):
    from django.test import override_settings
    with override_settings(K50CORE={"ENGINE": BrokenEngine(engine)}):
        r = django_client.get(URL)
    assert r.status_code == 200 and r.headers["X-Number"] == "-"
    assert "Call us: +7 (495) 123-45-67" in r.content.decode()
    assert '<span id="own">none|fallback|+74951234567</span>' in r.content.decode()
    assert "engine.assign failed" in caplog.text


def test_wsgi_head_keeps_the_content_length(wsgi_client):
    def head_app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/html"), ("Content-Length", "1234")])
        return [b""]
    from werkzeug.test import Client
    r = Client(K50Middleware(head_app, wsgi_client.application.tracker.engine)).head(URL)
    assert r.headers["Content-Length"] == "1234"
